package ocitypes

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	digest "github.com/opencontainers/go-digest"
)

// digestOf names a synthetic index entry by the sha256 of name.
func digestOf(name string) digest.Digest { return digest.FromString(name) }

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in          string
		want        Platform
		errContains string
	}{
		{in: "linux/amd64", want: Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "Linux/ARM/v7", want: Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "linux/x86_64", want: Platform{OS: "linux", Architecture: "x86_64"}},
		{in: "windows/amd64", want: Platform{OS: "windows", Architecture: "amd64"}},
		{in: "linux/ppc64le", want: Platform{OS: "linux", Architecture: "ppc64le"}},
		{in: "", errContains: `invalid platform: "": want os/arch or os/arch/variant`},
		{in: "linux", errContains: "want os/arch"},
		{in: "linux/arm/v7/extra", errContains: "want os/arch"},
		{in: "/amd64", errContains: "empty os"},
		{in: "linux/", errContains: "empty architecture"},
		{in: "linux/arm64/", errContains: "empty variant"},
		{in: "linux/amd 64", errContains: `architecture "amd 64" holds a character outside [a-z0-9._-]`},
		{in: " linux/amd64", errContains: "os"},
		{in: "linux/amd64\n", errContains: "architecture"},
		{in: "linux:amd64", errContains: "want os/arch"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePlatform(tt.in)
			if tt.errContains != "" {
				if !errors.Is(err, errdef.ErrInvalidPlatform) || !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParsePlatform(%q) error = %v, want %v containing %q", tt.in, err, errdef.ErrInvalidPlatform, tt.errContains)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePlatform(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
			if s := FormatPlatform(got); s != strings.ToLower(tt.in) {
				t.Errorf("FormatPlatform(ParsePlatform(%q)) = %q", tt.in, s)
			}
		})
	}
}

func TestFormatPlatform(t *testing.T) {
	tests := []struct {
		p    Platform
		want string
	}{
		{Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
		{Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7"},
		{Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6893"}, "windows/amd64"},
	}
	for _, tt := range tests {
		if got := FormatPlatform(tt.p); got != tt.want {
			t.Errorf("FormatPlatform(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestNormalizePlatform(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/x86_64", "linux/amd64"},
		{"linux/x86-64", "linux/amd64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/arm64/8", "linux/arm64/v8"},
		{"linux/arm64/v8.0", "linux/arm64/v8"},
		{"linux/arm64/v9", "linux/arm64/v9"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/armv7l", "linux/arm/v7"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/6", "linux/arm/v6"},
		{"linux/arm/v5", "linux/arm/v5"},
		{"linux/i386", "linux/386"},
		{"linux/x86", "linux/386"},
		{"linux/386", "linux/386"},
		{"macos/arm64", "darwin/arm64/v8"},
		{"linux/s390x", "linux/s390x"},
		{"linux/riscv64", "linux/riscv64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePlatform(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatPlatform(NormalizePlatform(p)); got != tt.want {
				t.Errorf("NormalizePlatform(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	t.Run("case and os fields", func(t *testing.T) {
		in := Platform{OS: "Windows", Architecture: "AMD64", OSVersion: "10.0.17763.6893", OSFeatures: []string{"win32k"}}
		got := NormalizePlatform(in)
		want := Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6893", OSFeatures: []string{"win32k"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NormalizePlatform(%+v) = %+v, want %+v", in, got, want)
		}
		got.OSFeatures[0] = "changed"
		if in.OSFeatures[0] != "win32k" {
			t.Errorf("NormalizePlatform shares os.features with its argument")
		}
	})
}

func TestHostPlatform(t *testing.T) {
	p := HostPlatform()
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		t.Errorf("HostPlatform() = %+v, want linux/%s", p, runtime.GOARCH)
	}
	switch runtime.GOARCH {
	case "arm64":
		if p.Variant != "v8" {
			t.Errorf("HostPlatform() variant = %q, want v8", p.Variant)
		}
	case "arm":
		if p.Variant < "v5" || p.Variant > "v7" {
			t.Errorf("HostPlatform() variant = %q, want v5..v7", p.Variant)
		}
	}
	if !MatchPlatform(p, p) {
		t.Errorf("MatchPlatform(host, host) = false")
	}
	if !reflect.DeepEqual(NormalizePlatform(p), p) {
		t.Errorf("HostPlatform() = %+v is not normalised", p)
	}
}

func TestMatchPlatform(t *testing.T) {
	tests := []struct {
		want, have string
		match      bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/x86_64", true},
		{"linux/amd64", "linux/arm64", false},
		{"linux/amd64", "windows/amd64", false},
		{"linux/amd64", "linux/amd64/v2", false},
		{"linux/amd64/v2", "linux/amd64", true},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64/v3", "linux/amd64/v4", false},
		{"linux/amd64/v1", "linux/amd64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/aarch64", "linux/arm64/v8", true},
		{"linux/arm64", "linux/arm64/v9", false},
		{"linux/arm64/v9", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64/v8.2", false},
		{"linux/arm64/v8.2", "linux/arm64/v8.1", true},
		{"linux/arm64", "linux/arm/v7", false},
		{"linux/arm/v7", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v7", "linux/arm/v5", true},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm/v6", "linux/arm", false},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/armhf", "linux/arm/v6", true},
		{"linux/arm/v8", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/vfoo", false},
		{"linux/386", "linux/i386", true},
		{"linux/riscv64", "linux/riscv64/rva20u64", true},
		{"linux/riscv64/rva22u64", "linux/riscv64/rva20u64", false},
		{"linux/riscv64/rva22u64", "linux/riscv64", false},
		{"linux/s390x", "linux/s390x", true},
	}
	for _, tt := range tests {
		t.Run(tt.want+" "+tt.have, func(t *testing.T) {
			w, err := ParsePlatform(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ParsePlatform(tt.have)
			if err != nil {
				t.Fatal(err)
			}
			if got := MatchPlatform(w, h); got != tt.match {
				t.Errorf("MatchPlatform(%s, %s) = %v, want %v", tt.want, tt.have, got, tt.match)
			}
		})
	}
	t.Run("os.version and os.features", func(t *testing.T) {
		have := Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6893", OSFeatures: []string{"win32k"}}
		osTests := []struct {
			want  Platform
			match bool
		}{
			{Platform{OS: "windows", Architecture: "amd64"}, true},
			{Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6893"}, true},
			{Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763"}, true},
			{Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.1776"}, false},
			{Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}, false},
			{Platform{OS: "windows", Architecture: "amd64", OSFeatures: []string{"win32k"}}, true},
			{Platform{OS: "windows", Architecture: "amd64", OSFeatures: []string{"win32k", "other"}}, false},
		}
		for _, tt := range osTests {
			if got := MatchPlatform(tt.want, have); got != tt.match {
				t.Errorf("MatchPlatform(%+v, %+v) = %v, want %v", tt.want, have, got, tt.match)
			}
		}
	})
}

func TestSelectManifest(t *testing.T) {
	attest, err := ParseIndex(MediaTypeOCIIndex, fixture(t, "oci-index-attestations.json"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := ParseIndex(MediaTypeDockerManifestList, fixture(t, "docker-manifest-list.json"))
	if err != nil {
		t.Fatal(err)
	}
	plat := func(os, arch, variant string) *Platform {
		return &Platform{OS: os, Architecture: arch, Variant: variant}
	}
	desc := func(name string, p *Platform) Descriptor {
		return Descriptor{MediaType: MediaTypeOCIManifest, Digest: digestOf(name), Size: 1, Platform: p}
	}
	// Index entries without variants for arm64 (containers/image#898) and several arm levels.
	noVariant := Index{Manifests: []Descriptor{
		desc("amd64", plat("linux", "amd64", "")),
		desc("arm64", plat("linux", "arm64", "")),
		desc("armv5", plat("linux", "arm", "v5")),
		desc("armv6", plat("linux", "arm", "v6")),
	}}
	amd64Levels := Index{Manifests: []Descriptor{
		desc("v1", plat("linux", "amd64", "")),
		desc("v3", plat("linux", "amd64", "v3")),
		desc("v2", plat("linux", "amd64", "v2")),
	}}
	sameTwice := Index{Manifests: []Descriptor{
		desc("first", plat("linux", "amd64", "")),
		desc("second", plat("linux", "amd64", "")),
	}}
	onlyAttestations := Index{Manifests: []Descriptor{
		{MediaType: MediaTypeOCIManifest, Digest: digestOf("att"), Size: 1, Platform: plat("unknown", "unknown", ""),
			Annotations: map[string]string{AnnotationReferenceType: "attestation-manifest"}},
		{MediaType: MediaTypeOCIManifest, Digest: digestOf("att-amd64"), Size: 1, Platform: plat("linux", "amd64", ""),
			Annotations: map[string]string{AnnotationReferenceType: "attestation-manifest"}},
		desc("no-platform", nil),
	}}
	tests := []struct {
		name        string
		idx         Index
		want        string
		wantDigest  string // the digestOf name, for synthetic indexes
		wantPlat    string // the platform of the chosen entry, for fixtures
		errContains string
	}{
		{name: "amd64 from attestation index", idx: attest, want: "linux/amd64", wantPlat: "linux/amd64"},
		{name: "arm64 from attestation index", idx: attest, want: "linux/arm64", wantPlat: "linux/arm64/v8"},
		{name: "arm64/v8 from attestation index", idx: attest, want: "linux/arm64/v8", wantPlat: "linux/arm64/v8"},
		{name: "arm/v7 exact", idx: attest, want: "linux/arm/v7", wantPlat: "linux/arm/v7"},
		{name: "arm/v6 exact", idx: attest, want: "linux/arm/v6", wantPlat: "linux/arm/v6"},
		{name: "arm/v8 takes the highest compatible", idx: attest, want: "linux/arm/v8", wantPlat: "linux/arm/v7"},
		{name: "arm/v5 has no match", idx: attest, want: "linux/arm/v5",
			errContains: "no manifest for linux/arm/v5 in index; available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/386, linux/ppc64le, linux/riscv64, linux/s390x"},
		{name: "aarch64 alias", idx: list, want: "linux/aarch64", wantPlat: "linux/arm64/v8"},
		{name: "x86_64 alias", idx: list, want: "linux/x86_64", wantPlat: "linux/amd64"},
		{name: "arm/v6 falls back to v5", idx: list, want: "linux/arm/v6", wantPlat: "linux/arm/v5"},
		{name: "windows", idx: list, want: "windows/amd64", wantPlat: "windows/amd64"},
		{name: "unknown/unknown is never chosen", idx: attest, want: "unknown/unknown",
			errContains: "no manifest for unknown/unknown in index"},
		{name: "arm64/v8 matches an entry without variant", idx: noVariant, want: "linux/arm64/v8", wantDigest: "arm64"},
		{name: "arm64 matches an entry without variant", idx: noVariant, want: "linux/arm64", wantDigest: "arm64"},
		{name: "arm/v7 takes v6 over v5", idx: noVariant, want: "linux/arm/v7", wantDigest: "armv6"},
		{name: "amd64/v3 exact", idx: amd64Levels, want: "linux/amd64/v3", wantDigest: "v3"},
		{name: "amd64/v4 takes the highest", idx: amd64Levels, want: "linux/amd64/v4", wantDigest: "v3"},
		{name: "amd64 takes the baseline", idx: amd64Levels, want: "linux/amd64", wantDigest: "v1"},
		{name: "ties go to the first", idx: sameTwice, want: "linux/amd64", wantDigest: "first"},
		{name: "only attestations", idx: onlyAttestations, want: "linux/amd64",
			errContains: "no manifest for linux/amd64 in index; available: none"},
		{name: "s390x from a list", idx: Index{Manifests: []Descriptor{
			desc("a", plat("linux", "amd64", "")), desc("b", plat("linux", "arm64", "v8")), desc("c", plat("linux", "arm", "v7")),
			desc("d", plat("linux", "amd64", "")),
		}}, want: "linux/s390x",
			errContains: "no manifest for linux/s390x in index; available: linux/amd64, linux/arm64/v8, linux/arm/v7"},
		{name: "empty index", idx: Index{}, want: "linux/amd64", errContains: "available: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := ParsePlatform(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SelectManifest(tt.idx, want)
			if tt.errContains != "" {
				var nm *NoMatchingPlatformError
				if !errors.Is(err, errdef.ErrNoMatchingPlatform) || !errors.As(err, &nm) {
					t.Fatalf("SelectManifest(%s) error = %v, want %v", tt.want, err, errdef.ErrNoMatchingPlatform)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("SelectManifest(%s) error = %q, want it to contain %q", tt.want, err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectManifest(%s) error = %v", tt.want, err)
			}
			if tt.wantDigest != "" && got.Digest != digestOf(tt.wantDigest) {
				t.Errorf("SelectManifest(%s) = %s, want the entry %q", tt.want, got.Digest, tt.wantDigest)
			}
			if tt.wantPlat != "" && (got.Platform == nil || FormatPlatform(*got.Platform) != tt.wantPlat) {
				t.Errorf("SelectManifest(%s) = %+v, want platform %s", tt.want, got.Platform, tt.wantPlat)
			}
			if got.Annotations[AnnotationReferenceType] != "" {
				t.Errorf("SelectManifest(%s) chose an attestation: %+v", tt.want, got)
			}
		})
	}
}
