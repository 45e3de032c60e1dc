package ocitypes

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha384 and sha512 for go-digest
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ocistream/ocistream/errdef"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The image-spec types, aliased so that values move freely between this package and
// any other code built on github.com/opencontainers/image-spec.
type (
	// Descriptor names content by media type, digest and size.
	Descriptor = v1.Descriptor
	// Manifest is an OCI image manifest or a Docker schema 2 manifest (same shape).
	Manifest = v1.Manifest
	// Index is an OCI image index or a Docker manifest list (same shape).
	Index = v1.Index
	// Image is an image configuration (the config blob of a container image).
	Image = v1.Image
	// Platform is the os/architecture/variant a manifest runs on.
	Platform = v1.Platform
)

// ParseManifest parses and validates an image manifest (OCI or Docker schema 2) served
// with the given Content-Type. The media type is decided as by [MediaTypeOf]; it must be
// an image manifest, not an index.
//
// Rules, beyond well-formed JSON (one object, no duplicate keys, unknown fields allowed):
//   - schemaVersion is present and 2;
//   - config is present and a valid descriptor (see [ValidateDescriptor]);
//   - the layers key is present (both specs make it REQUIRED); every layer is a valid
//     descriptor. An empty list (or null, which Go encoders write for an empty slice) is
//     accepted: the image-spec only says layers SHOULD hold one entry, artifacts may
//     carry none, and an image built FROM scratch with metadata only has none either;
//   - subject, when present, is a valid descriptor; artifactType, when present, is a
//     media type, and is present when config.mediaType is the empty type, as the
//     image-spec requires.
//
// Errors wrap [errdef.ErrInvalidManifest], [errdef.ErrUnsupported] (schema 1 or a
// non-manifest type) or [errdef.ErrSizeExceedsLimit], and name the offending field
// ("invalid manifest: layers[2]: digest ..."). The body is read three times (validate,
// scan keys, decode), which for a manifest near [MaxManifestSize] costs tens of
// milliseconds; the result holds no reference to body.
func ParseManifest(contentType string, body []byte) (Manifest, error) {
	p, err := probeManifest(body)
	if err != nil {
		return Manifest{}, err
	}
	mt, err := p.resolve(contentType)
	if err != nil {
		return Manifest{}, err
	}
	if !IsManifest(mt) {
		return Manifest{}, fmt.Errorf("%w: %s is an index, not an image manifest", errdef.ErrInvalidManifest, mt)
	}
	if err := checkSchemaVersion(p); err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", errdef.ErrInvalidManifest, err)
	}
	if !p.keys.has("config") {
		return Manifest{}, fmt.Errorf("%w: config is missing", errdef.ErrInvalidManifest)
	}
	if err := validateDescriptor(&m.Config); err != nil {
		return Manifest{}, fmt.Errorf("%w: config: %w", errdef.ErrInvalidManifest, err)
	}
	if !p.keys.has("layers") {
		return Manifest{}, fmt.Errorf("%w: layers is missing", errdef.ErrInvalidManifest)
	}
	for i := range m.Layers {
		if err := validateDescriptor(&m.Layers[i]); err != nil {
			return Manifest{}, fmt.Errorf("%w: layers[%d]: %w", errdef.ErrInvalidManifest, i, err)
		}
	}
	if m.Subject != nil {
		if err := validateDescriptor(m.Subject); err != nil {
			return Manifest{}, fmt.Errorf("%w: subject: %w", errdef.ErrInvalidManifest, err)
		}
	}
	if m.ArtifactType != "" && !validMediaType(m.ArtifactType) {
		return Manifest{}, fmt.Errorf("%w: artifactType %q is not a media type", errdef.ErrInvalidManifest, clip(m.ArtifactType))
	}
	if m.ArtifactType == "" && baseMediaType(m.Config.MediaType) == MediaTypeOCIEmpty {
		return Manifest{}, fmt.Errorf("%w: artifactType is missing although config.mediaType is %s",
			errdef.ErrInvalidManifest, MediaTypeOCIEmpty)
	}
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	return m, nil
}

// ParseIndex parses and validates an image index (OCI index or Docker manifest list)
// served with the given Content-Type. The media type is decided as by [MediaTypeOf]; it
// must be an index.
//
// Rules, beyond well-formed JSON: schemaVersion is present and 2; the manifests key is
// present (an empty list, or null as Go encoders write it for an empty referrers
// response, is accepted); every entry is a valid descriptor (see [ValidateDescriptor]),
// including its platform when it has one; subject and artifactType as for
// [ParseManifest]. Errors wrap the same sentinels as ParseManifest's.
func ParseIndex(contentType string, body []byte) (Index, error) {
	p, err := probeManifest(body)
	if err != nil {
		return Index{}, err
	}
	mt, err := p.resolve(contentType)
	if err != nil {
		return Index{}, err
	}
	if !IsIndex(mt) {
		return Index{}, fmt.Errorf("%w: %s is an image manifest, not an index", errdef.ErrInvalidManifest, mt)
	}
	if err := checkSchemaVersion(p); err != nil {
		return Index{}, err
	}
	var idx Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return Index{}, fmt.Errorf("%w: %w", errdef.ErrInvalidManifest, err)
	}
	if !p.keys.has("manifests") {
		return Index{}, fmt.Errorf("%w: manifests is missing", errdef.ErrInvalidManifest)
	}
	for i := range idx.Manifests {
		if err := validateDescriptor(&idx.Manifests[i]); err != nil {
			return Index{}, fmt.Errorf("%w: manifests[%d]: %w", errdef.ErrInvalidManifest, i, err)
		}
	}
	if idx.Subject != nil {
		if err := validateDescriptor(idx.Subject); err != nil {
			return Index{}, fmt.Errorf("%w: subject: %w", errdef.ErrInvalidManifest, err)
		}
	}
	if idx.ArtifactType != "" && !validMediaType(idx.ArtifactType) {
		return Index{}, fmt.Errorf("%w: artifactType %q is not a media type", errdef.ErrInvalidManifest, clip(idx.ArtifactType))
	}
	if len(idx.Annotations) == 0 {
		idx.Annotations = nil
	}
	return idx, nil
}

// checkSchemaVersion requires schemaVersion 2.
func checkSchemaVersion(p probe) error {
	switch {
	case !p.hasVersion:
		return fmt.Errorf("%w: schemaVersion is missing", errdef.ErrInvalidManifest)
	case p.schemaVersion != 2:
		return fmt.Errorf("%w: schemaVersion is %d, want 2", errdef.ErrInvalidManifest, p.schemaVersion)
	}
	return nil
}

// ParseImageConfig parses and validates an image configuration blob (media type
// [MediaTypeOCIConfig] or [MediaTypeDockerConfig]). Only image configs are meant to be
// parsed: the image-spec forbids parsing a config of a media type one does not know, so
// artifacts' configs never come here, and architecture and os (REQUIRED by the spec) must
// therefore be present. rootfs is REQUIRED by the spec too but is checked only when
// present, since some tools write configs without it: its type must be "layers" and each
// diff_id a valid digest. Platform fields must not contain "/" or white space.
//
// Errors wrap [errdef.ErrInvalidManifest] ("invalid manifest: image config: ...") or
// [errdef.ErrSizeExceedsLimit] for bodies over [MaxManifestSize].
func ParseImageConfig(body []byte) (Image, error) {
	if len(body) > MaxManifestSize {
		return Image{}, fmt.Errorf("image config of %d bytes is larger than the %d byte limit: %w",
			len(body), MaxManifestSize, errdef.ErrSizeExceedsLimit)
	}
	keys, err := checkObject(body)
	if err != nil {
		return Image{}, fmt.Errorf("%w: image config: %w", errdef.ErrInvalidManifest, err)
	}
	var img Image
	if err := json.Unmarshal(body, &img); err != nil {
		return Image{}, fmt.Errorf("%w: image config: %w", errdef.ErrInvalidManifest, err)
	}
	if err := validatePlatform(&img.Platform); err != nil {
		return Image{}, fmt.Errorf("%w: image config: %w", errdef.ErrInvalidManifest, err)
	}
	if keys.has("rootfs") {
		if img.RootFS.Type != "layers" {
			return Image{}, fmt.Errorf("%w: image config: rootfs.type is %q, want \"layers\"", errdef.ErrInvalidManifest, clip(img.RootFS.Type))
		}
		for i, d := range img.RootFS.DiffIDs {
			if err := d.Validate(); err != nil {
				return Image{}, fmt.Errorf("%w: image config: rootfs.diff_ids[%d]: digest %q: %w", errdef.ErrInvalidManifest, i, clip(d), err)
			}
		}
	}
	return img, nil
}

// ValidateDescriptor checks d the way the parsers check every descriptor they read:
//   - mediaType is present and a media type in RFC 6838 syntax (type/subtype, no
//     parameters); artifactType too when present;
//   - digest is valid for a registered algorithm (sha256, sha384, sha512);
//   - size is not negative;
//   - each of urls is an absolute http or https URL;
//   - data, when present, is exactly size bytes that match digest;
//   - platform, when present, has os and architecture, and no platform field holds "/"
//     or white space.
//
// Errors wrap [errdef.ErrInvalidManifest] and, for a bad digest, the go-digest error.
// The cost is a hash of data when d embeds any, and nothing more.
func ValidateDescriptor(d Descriptor) error {
	if err := validateDescriptor(&d); err != nil {
		return fmt.Errorf("%w: %w", errdef.ErrInvalidManifest, err)
	}
	return nil
}

// validateDescriptor checks *d and normalises its empty optional lists and maps to nil,
// so that what is parsed, encoded and parsed again compares equal.
func validateDescriptor(d *Descriptor) error {
	switch {
	case d.MediaType == "":
		return errors.New("mediaType is missing")
	case !validMediaType(d.MediaType):
		return fmt.Errorf("mediaType %q is not a media type", clip(d.MediaType))
	}
	if d.Digest == "" {
		return errors.New("digest is missing")
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", clip(d.Digest), err)
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d is negative", d.Size)
	}
	if d.ArtifactType != "" && !validMediaType(d.ArtifactType) {
		return fmt.Errorf("artifactType %q is not a media type", clip(d.ArtifactType))
	}
	for i, s := range d.URLs {
		if err := validateURL(s); err != nil {
			return fmt.Errorf("urls[%d]: %w", i, err)
		}
	}
	if len(d.Data) == 0 {
		d.Data = nil
	} else {
		if int64(len(d.Data)) != d.Size {
			return fmt.Errorf("data holds %d bytes, size says %d", len(d.Data), d.Size)
		}
		if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
			return fmt.Errorf("data digest %s does not match %s: %w", got, d.Digest, errdef.ErrDigestMismatch)
		}
	}
	if d.Platform != nil {
		if err := validatePlatform(d.Platform); err != nil {
			return fmt.Errorf("platform: %w", err)
		}
	}
	if len(d.URLs) == 0 {
		d.URLs = nil
	}
	if len(d.Annotations) == 0 {
		d.Annotations = nil
	}
	return nil
}

// validateURL requires an absolute http or https URL with a host.
func validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a url: %w", clip(s), err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return fmt.Errorf("%q is not an absolute http or https url", clip(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", clip(s))
	}
	return nil
}

// validatePlatform requires os and architecture, and that os, architecture, variant and
// the os features be free of "/" and white space (FormatPlatform would be ambiguous).
// It normalises empty os.features to nil.
func validatePlatform(p *Platform) error {
	switch {
	case p.OS == "":
		return errors.New("os is missing")
	case p.Architecture == "":
		return errors.New("architecture is missing")
	}
	for _, f := range []struct{ name, v string }{
		{"os", p.OS}, {"architecture", p.Architecture}, {"variant", p.Variant},
	} {
		if !platformWord(f.v, true) {
			return fmt.Errorf("%s %q holds a character outside [A-Za-z0-9._-]", f.name, clip(f.v))
		}
	}
	if strings.ContainsFunc(p.OSVersion, isSpaceOrControl) {
		return fmt.Errorf("os.version %q holds white space", clip(p.OSVersion))
	}
	for i, f := range p.OSFeatures {
		if f == "" || strings.ContainsFunc(f, isSpaceOrControl) {
			return fmt.Errorf("os.features[%d] %q is empty or holds white space", i, clip(f))
		}
	}
	if len(p.OSFeatures) == 0 {
		p.OSFeatures = nil
	}
	return nil
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

// platformWord reports whether s consists of [a-z0-9._-] (and upper case letters when
// upper is true). The empty string is accepted; callers check presence.
func platformWord(s string, upper bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		case upper && 'A' <= c && c <= 'Z':
		default:
			return false
		}
	}
	return true
}
