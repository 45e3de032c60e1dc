package ocitypes

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ocistream/ocistream/errdef"
)

// OCI image-spec media types (image-spec v1.1 media-types.md).
const (
	MediaTypeOCIManifest                  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex                     = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig                    = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayer                     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCILayerGzip                 = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerZstd                 = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeOCILayerNondistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCILayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCILayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
	// MediaTypeOCIEmpty is the empty JSON blob "{}" used as the config of artifacts that
	// have none; see [v1.DescriptorEmptyJSON].
	MediaTypeOCIEmpty = "application/vnd.oci.empty.v1+json"
	// MediaTypeOCILayoutHeader is the media type of an image layout's oci-layout file.
	MediaTypeOCILayoutHeader = "application/vnd.oci.layout.header.v1+json"
)

// Docker image media types (distribution manifest-v2-2.md).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeDockerForeignLayer is a layer that may be fetched from the descriptor's
	// urls and must never be pushed (Windows base layers).
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	// MediaTypeDockerSchema1 and MediaTypeDockerSchema1Signed are the deprecated Docker
	// image manifest schema 1. They are recognised only to be refused with a clear error.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// mediaTypeDockerForeignLayerTar is the uncompressed foreign layer type some tools
// (containerd) also recognise.
const mediaTypeDockerForeignLayerTar = "application/vnd.docker.image.rootfs.foreign.diff.tar"

// ManifestAccept are the Accept values a client sends when it fetches a manifest: the
// OCI index and manifest, the Docker manifest list and schema 2 manifest. Schema 1 is
// left out on purpose; a registry that has nothing else answers with it anyway and
// [MediaTypeOf] refuses it. Leaving out the list types would let some registries answer
// a tag with the linux/amd64 child instead of the index. Callers must not modify it.
var ManifestAccept = []string{
	MediaTypeOCIIndex,
	MediaTypeOCIManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}

// MaxManifestSize is the largest manifest, index or image config body the parsers
// accept: 4 MiB. The reference registry (distribution) refuses to store a larger
// manifest (maxManifestBodySize = 4 MiB), and the distribution-spec asks clients and
// registries to support manifests of "at least 4 megabytes", so a larger body is either
// not a manifest or would not have been accepted by a conforming registry. Callers
// should read at most MaxManifestSize+1 bytes of a response so the limit is detected.
const MaxManifestSize = 4 << 20

// IsIndex reports whether mediaType is an image index: the OCI index or the Docker
// manifest list. Parameters and letter case are ignored. It does not allocate for
// lower-case input.
func IsIndex(mediaType string) bool {
	switch baseMediaType(mediaType) {
	case MediaTypeOCIIndex, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// IsManifest reports whether mediaType is an image manifest (OCI manifest or Docker
// schema 2), not an index. Parameters and letter case are ignored.
func IsManifest(mediaType string) bool {
	switch baseMediaType(mediaType) {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		return true
	}
	return false
}

// IsForeignLayer reports whether mediaType is a layer that registries may not hold:
// a Docker foreign layer or one of the deprecated OCI non-distributable layer types.
// Such layers are fetched from the descriptor's urls when they are not in the registry.
func IsForeignLayer(mediaType string) bool {
	switch baseMediaType(mediaType) {
	case MediaTypeDockerForeignLayer, mediaTypeDockerForeignLayerTar,
		MediaTypeOCILayerNondistributable, MediaTypeOCILayerNondistributableGzip,
		MediaTypeOCILayerNondistributableZstd:
		return true
	}
	return false
}

// isSchema1 reports whether mediaType is one of the Docker schema 1 manifest types.
func isSchema1(mediaType string) bool {
	switch baseMediaType(mediaType) {
	case MediaTypeDockerSchema1, MediaTypeDockerSchema1Signed:
		return true
	}
	return false
}

// baseMediaType returns mediaType without parameters and surrounding space, in lower
// case (media types are case-insensitive, RFC 6838).
func baseMediaType(mediaType string) string {
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = mediaType[:i]
	}
	return strings.ToLower(strings.TrimSpace(mediaType))
}

// isGenericContentType reports whether a Content-Type says nothing about which manifest
// a body is: absent, or a generic JSON, text or binary type (a static file server or a
// misconfigured proxy).
func isGenericContentType(ct string) bool {
	switch ct {
	case "", "application/json", "text/json", "application/octet-stream", "binary/octet-stream", "text/plain":
		return true
	}
	return false
}

// validMediaType reports whether s is a media type in RFC 6838 restricted-name syntax,
// type "/" subtype, without parameters (the image-spec descriptor schema).
func validMediaType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

func restrictedName(s string) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("!#$&^_.+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// probe holds the top-level fields that identify a manifest body.
type probe struct {
	keys          keySet
	mediaType     string // the body's mediaType field as written, "" when absent
	schemaVersion int    // 0 when absent
	hasVersion    bool
}

// probeManifest checks the size and JSON shape of body and reads the fields that
// identify it.
func probeManifest(body []byte) (probe, error) {
	if len(body) > MaxManifestSize {
		return probe{}, fmt.Errorf("manifest of %d bytes is larger than the %d byte limit: %w",
			len(body), MaxManifestSize, errdef.ErrSizeExceedsLimit)
	}
	keys, err := checkObject(body)
	if err != nil {
		return probe{}, fmt.Errorf("%w: %w", errdef.ErrInvalidManifest, err)
	}
	p := probe{keys: keys}
	if raw := keys.raw("mediaType"); raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p.mediaType); err != nil {
			return probe{}, fmt.Errorf("%w: mediaType is %s, not a string", errdef.ErrInvalidManifest, clip(raw))
		}
	}
	if raw := keys.raw("schemaVersion"); raw != nil && string(raw) != "null" {
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return probe{}, fmt.Errorf("%w: schemaVersion is %s, not an integer", errdef.ErrInvalidManifest, clip(raw))
		}
		p.schemaVersion, p.hasVersion = v, true
	}
	return p, nil
}

// errSchema1 is the error for a Docker schema 1 manifest.
func errSchema1(what string) error {
	return fmt.Errorf("%w: docker image manifest schema 1 (%s) is not supported; "+
		"the image must be rebuilt or pushed again as docker schema 2 or oci", errdef.ErrUnsupported, what)
}

// MediaTypeOf returns the media type of a manifest body served with the given
// Content-Type header value. Parameters of the Content-Type are ignored (as the
// distribution-spec asks) and the result is lower case.
//
// When contentType names a type, a mediaType field in the body must agree with it. When
// contentType is absent or generic (application/json, application/octet-stream,
// text/plain) the body's mediaType field decides, and failing that its keys, the way
// OCI bodies without mediaType are told apart: "manifests" means an OCI index, "config"
// an OCI manifest. A body that carries the keys of both kinds is refused as ambiguous.
//
// Docker schema 1 (schemaVersion 1 or a v1 media type) fails with
// [errdef.ErrUnsupported], as does any type that is neither an index nor an image
// manifest; malformed bodies fail with [errdef.ErrInvalidManifest] and bodies larger than
// [MaxManifestSize] with [errdef.ErrSizeExceedsLimit]. The body is validated and scanned,
// not decoded.
func MediaTypeOf(contentType string, body []byte) (string, error) {
	p, err := probeManifest(body)
	if err != nil {
		return "", err
	}
	return p.resolve(contentType)
}

// resolve implements [MediaTypeOf] on a probed body.
func (p probe) resolve(contentType string) (string, error) {
	ct := baseMediaType(contentType)
	field := baseMediaType(p.mediaType)
	switch {
	case isSchema1(ct):
		return "", errSchema1("content-type " + ct)
	case isSchema1(field):
		return "", errSchema1("mediaType " + field)
	case p.hasVersion && p.schemaVersion == 1:
		return "", errSchema1("schemaVersion 1")
	}
	var mt string
	switch {
	case !isGenericContentType(ct):
		if field != "" && field != ct {
			return "", fmt.Errorf("%w: mediaType %q in the body contradicts content-type %q",
				errdef.ErrInvalidManifest, clip(p.mediaType), clip(ct))
		}
		mt = ct
	case field != "":
		mt = field
	case p.keys.has("manifests"):
		mt = MediaTypeOCIIndex
	case p.keys.has("config"):
		mt = MediaTypeOCIManifest
	default:
		return "", fmt.Errorf("%w: cannot tell the media type: content-type %q, no mediaType field, "+
			"no manifests or config key", errdef.ErrInvalidManifest, clip(ct))
	}
	switch {
	case IsIndex(mt):
		for _, k := range []string{"config", "layers"} {
			if p.keys.has(k) {
				return "", fmt.Errorf("%w: ambiguous body: an index (%s) with a %q key", errdef.ErrInvalidManifest, mt, k)
			}
		}
	case IsManifest(mt):
		if p.keys.has("manifests") {
			return "", fmt.Errorf("%w: ambiguous body: an image manifest (%s) with a \"manifests\" key", errdef.ErrInvalidManifest, mt)
		}
	default:
		return "", fmt.Errorf("%w: media type %q is neither an image manifest nor an index", errdef.ErrUnsupported, clip(mt))
	}
	return mt, nil
}

// AnnotationAbsentBlobs, on a manifest or index descriptor in an image layout's
// index.json, lists (comma-separated) the digests of blobs the image references but the
// layout deliberately does not hold: foreign, non-distributable layers left out of a
// pull. Tools verifying the layout report them as absent, not as missing.
const AnnotationAbsentBlobs = "io.ocistream.absent-blobs"
