// Package ocitypes holds the OCI image-spec and distribution-spec types ocistream reads
// from registries, and strict parsers for them.
//
// The image types (Descriptor, Manifest, Index, Image, Platform) are aliases of
// github.com/opencontainers/image-spec/specs-go/v1, so they interoperate with the rest of
// the ecosystem. What this package adds is validation at parse time: [ParseManifest],
// [ParseIndex] and [ParseImageConfig] refuse bodies over [MaxManifestSize], anything but
// a single JSON object, duplicate keys, a wrong schemaVersion, a mediaType that
// contradicts the Content-Type, Docker schema 1, and any descriptor with a bad media
// type, digest, size or URL. Errors wrap the sentinels of the root package
// (ErrInvalidManifest, ErrUnsupported, ErrSizeExceedsLimit) and say which field failed.
// Unknown fields are allowed, for forward compatibility.
//
// The platform helpers parse --platform values, normalise architecture names and
// variants the way containerd does, and pick the manifest of an index for a platform
// with variant fallback ([SelectManifest]).
//
// The distribution helpers parse tag lists, catalogs and error envelopes as real
// registries send them.
package ocitypes
