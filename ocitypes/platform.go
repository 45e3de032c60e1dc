package ocitypes

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/ocistream/ocistream/errdef"
)

// ParsePlatform parses "os/arch" or "os/arch/variant" (as in --platform linux/arm64/v8)
// into a Platform, in lower case. Each part must be non-empty and consist of
// [a-z0-9._-]; the value is not normalised (see [NormalizePlatform]), so
// [FormatPlatform] gives the lower-cased input back. Errors wrap
// [errdef.ErrInvalidPlatform].
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("%w: %q: want os/arch or os/arch/variant", errdef.ErrInvalidPlatform, clip(s))
	}
	for i, part := range parts {
		name := [...]string{"os", "architecture", "variant"}[i]
		switch {
		case part == "":
			return Platform{}, fmt.Errorf("%w: %q: empty %s", errdef.ErrInvalidPlatform, clip(s), name)
		case !platformWord(part, false):
			return Platform{}, fmt.Errorf("%w: %q: %s %q holds a character outside [a-z0-9._-]",
				errdef.ErrInvalidPlatform, clip(s), name, clip(part))
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FormatPlatform returns p as "os/arch" or "os/arch/variant", as written in p (not
// normalised); os.version and os.features are left out.
func FormatPlatform(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// NormalizePlatform returns p with os, architecture and variant in the canonical form
// used for matching, the way containerd normalises them: lower case; "macos" is
// "darwin"; the architectures x86_64 and x86-64 are amd64, aarch64 is arm64, i386, i686
// and x86 are 386, armhf is arm/v7, armel is arm/v6, armv7l and armv6l are arm/v7 and
// arm/v6. Variants written as a bare number get their "v". The default variants are
// made explicit: arm64 without a variant (or "v8.0") is arm64/v8 and arm without a
// variant is arm/v7; amd64/v1 is amd64 without a variant, its baseline. os.version and
// os.features are kept as they are (os.features copied).
func NormalizePlatform(p Platform) Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	if variant != "" && variant[0] >= '0' && variant[0] <= '9' {
		variant = "v" + variant
	}
	switch arch {
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "i386", "i686", "x86", "386":
		arch, variant = "386", ""
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "" || variant == "v8.0" {
			variant = "v8"
		}
	case "armhf", "armv7l":
		arch, variant = "arm", "v7"
	case "armel", "armv6l":
		arch, variant = "arm", "v6"
	case "arm":
		if variant == "" {
			variant = "v7"
		}
	}
	p.Architecture, p.Variant = arch, variant
	if p.OSFeatures != nil {
		p.OSFeatures = slices.Clone(p.OSFeatures)
	}
	return p
}

var hostPlatform = sync.OnceValue(func() Platform {
	p := Platform{OS: "linux", Architecture: runtime.GOARCH}
	setting := func(key string) string {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == key {
					return s.Value
				}
			}
		}
		return ""
	}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		// GOARM is "5", "6" or "7", possibly followed by ",softfloat" or ",hardfloat".
		if v := setting("GOARM"); v != "" && v[0] >= '5' && v[0] <= '7' {
			p.Variant = "v" + v[:1]
		}
	case "amd64":
		// A binary built for GOAMD64=v3 runs only on a v3 machine, so it is a safe
		// lower bound of the host's level.
		if v := setting("GOAMD64"); v == "v2" || v == "v3" || v == "v4" {
			p.Variant = v
		}
	}
	return p
})

// HostPlatform returns the platform whose images this machine runs: always os linux,
// since container images are linux images even on macOS and Windows hosts (they run in
// a Linux VM), runtime.GOARCH as architecture, and the default variant: v8 on arm64,
// the GOARM the binary was built with on arm (v7 when unknown), and the GOAMD64 level
// on amd64 when above the baseline. It is computed once.
func HostPlatform() Platform {
	return hostPlatform()
}

// orderedArch reports whether a normalised architecture has ordered variants.
func orderedArch(arch string) bool {
	return arch == "amd64" || arch == "arm" || arch == "arm64"
}

// variantLevel returns the ordering of a normalised variant of a normalised
// architecture, as major*1000+minor, and false when the architecture has no ordered
// variants or the variant is not one of them. A machine of a level runs code for every
// lower level of the same architecture: amd64 "" (v1) < v2 < v3 < v4; arm v5 < v6 < v7
// < v8; arm64 v8 < v8.1 < ... < v9 < v9.1 ...
func variantLevel(arch, variant string) (int, bool) {
	if !orderedArch(arch) {
		return 0, false
	}
	if arch == "amd64" && variant == "" {
		return 1000, true
	}
	rest, ok := strings.CutPrefix(variant, "v")
	if !ok {
		return 0, false
	}
	majorS, minorS, hasMinor := strings.Cut(rest, ".")
	major, ok := smallNumber(majorS)
	if !ok {
		return 0, false
	}
	minor := 0
	if hasMinor {
		if minor, ok = smallNumber(minorS); !ok {
			return 0, false
		}
	}
	switch arch {
	case "amd64":
		ok = major >= 2 && major <= 4 && !hasMinor
	case "arm":
		ok = major >= 5 && major <= 8 && !hasMinor
	case "arm64":
		ok = major >= 8
	}
	return major*1000 + minor, ok
}

// smallNumber parses one or two decimal digits.
func smallNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// variantCompatible reports whether code for variant have runs on variant want of the
// same normalised architecture.
func variantCompatible(arch, want, have string) bool {
	if want == have {
		return true
	}
	wl, okW := variantLevel(arch, want)
	hl, okH := variantLevel(arch, have)
	if okW && okH {
		return hl <= wl
	}
	// An architecture without ordered variants: asking for no variant accepts any.
	return want == "" && !orderedArch(arch)
}

// MatchPlatform reports whether an image for have runs on want. Both are normalised
// first (see [NormalizePlatform]); os and architecture must then be equal and the
// variants compatible: arm/v7 runs v7, v6 and v5 images, arm64 (v8) runs arm64 images
// with or without the v8 variant, amd64/v3 runs v3, v2 and baseline images; for other
// architectures the variants must be equal, or want has none. os.version and
// os.features count only when want sets them: have's os.version must then equal want's
// or extend it ("10.0.17763" matches "10.0.17763.1879"), and have must list every one of
// want's os.features.
func MatchPlatform(want, have Platform) bool {
	w, h := NormalizePlatform(want), NormalizePlatform(have)
	if w.OS != h.OS || w.Architecture != h.Architecture {
		return false
	}
	if !variantCompatible(w.Architecture, w.Variant, h.Variant) {
		return false
	}
	if w.OSVersion != "" && h.OSVersion != w.OSVersion && !strings.HasPrefix(h.OSVersion, w.OSVersion+".") {
		return false
	}
	for _, f := range w.OSFeatures {
		if !slices.Contains(h.OSFeatures, f) {
			return false
		}
	}
	return true
}

// AnnotationReferenceType is the annotation BuildKit sets on index entries that are not
// runnable images; the value "attestation-manifest" marks provenance and SBOM
// attestations, whose platform is unknown/unknown.
const AnnotationReferenceType = "vnd.docker.reference.type"

// NoMatchingPlatformError is the error of [SelectManifest] when no entry of an index runs
// on the wanted platform. It matches [errdef.ErrNoMatchingPlatform] with errors.Is.
type NoMatchingPlatformError struct {
	Want      Platform   // the platform asked for
	Available []Platform // the runnable platforms the index offers, in index order
}

// Error returns "no manifest for os/arch in index; available: os/arch, ...".
func (e *NoMatchingPlatformError) Error() string {
	var b strings.Builder
	b.WriteString("no manifest for ")
	b.WriteString(FormatPlatform(e.Want))
	b.WriteString(" in index; available: ")
	if len(e.Available) == 0 {
		b.WriteString("none")
	}
	for i, p := range e.Available {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(FormatPlatform(p))
	}
	return b.String()
}

// Unwrap returns [errdef.ErrNoMatchingPlatform].
func (e *NoMatchingPlatformError) Unwrap() error { return errdef.ErrNoMatchingPlatform }

// runnable reports whether an index entry describes an image for a platform: it has a
// platform that is not unknown, and it is not an attestation.
func runnable(d *Descriptor) bool {
	if d.Platform == nil || d.Annotations[AnnotationReferenceType] == "attestation-manifest" {
		return false
	}
	return !strings.EqualFold(d.Platform.OS, "unknown") && !strings.EqualFold(d.Platform.Architecture, "unknown")
}

// SelectManifest returns the entry of idx to pull for want. Among the entries that
// [MatchPlatform] accepts, an entry with exactly the wanted variant (after
// normalisation) wins, then the one with the highest compatible variant; ties go to the
// first in index order. Entries without a platform, with an unknown os or architecture,
// or marked as attestations are skipped. When nothing matches, the error is a
// [*NoMatchingPlatformError] (wrapping [errdef.ErrNoMatchingPlatform]) that lists what
// the index offers. The cost is linear in the number of entries.
func SelectManifest(idx Index, want Platform) (Descriptor, error) {
	w := NormalizePlatform(want)
	best, bestScore := -1, -1
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if !runnable(d) || !MatchPlatform(want, *d.Platform) {
			continue
		}
		h := NormalizePlatform(*d.Platform)
		score := 0
		if h.Variant == w.Variant {
			score = 1 << 30
		} else if l, ok := variantLevel(h.Architecture, h.Variant); ok {
			score = l
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best >= 0 {
		return idx.Manifests[best], nil
	}
	e := &NoMatchingPlatformError{Want: want}
	seen := map[string]bool{}
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if !runnable(d) {
			continue
		}
		if s := FormatPlatform(*d.Platform); !seen[s] {
			seen[s] = true
			e.Available = append(e.Available, *d.Platform)
		}
	}
	return Descriptor{}, e
}
