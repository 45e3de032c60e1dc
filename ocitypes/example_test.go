package ocitypes_test

import (
	"errors"
	"fmt"

	"github.com/ocistream/ocistream/ocitypes"
)

func ExampleSelectManifest() {
	index := []byte(`{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024,
     "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "platform": {"os": "linux", "architecture": "arm64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 840,
     "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"os": "unknown", "architecture": "unknown"}}
  ]
}`)
	idx, err := ocitypes.ParseIndex(ocitypes.MediaTypeOCIIndex, index)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"linux/arm64/v8", "linux/arm/v7", "linux/s390x"} {
		want, err := ocitypes.ParsePlatform(s)
		if err != nil {
			fmt.Println(err)
			return
		}
		d, err := ocitypes.SelectManifest(idx, want)
		var noMatch *ocitypes.NoMatchingPlatformError
		switch {
		case errors.As(err, &noMatch):
			fmt.Println(err)
		case err != nil:
			fmt.Println("unexpected:", err)
		default:
			fmt.Printf("%s -> %s %s\n", s, ocitypes.FormatPlatform(*d.Platform), d.Digest.Encoded()[:8])
		}
	}
	// Output:
	// linux/arm64/v8 -> linux/arm64 22222222
	// linux/arm/v7 -> linux/arm/v6 33333333
	// no manifest for linux/s390x in index; available: linux/amd64, linux/arm64, linux/arm/v6
}

func ExampleParseManifest() {
	body := []byte(`{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 1472,
    "digest": "sha256:74cc54e27dc41bb10dc4b2226072d469509f2f22f1a3ce74f4a59661a1d44602"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 2813316,
      "digest": "sha256:f18232174bc91741fdf3da96d85011092101a032a93a388b79e99e69c2d5c870"
    }
  ]
}`)
	m, err := ocitypes.ParseManifest("application/vnd.docker.distribution.manifest.v2+json", body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range m.Layers {
		fmt.Println(l.MediaType, l.Size, l.Digest.Encoded()[:12])
	}

	// The same body served as an OCI manifest is refused: its mediaType contradicts.
	_, err = ocitypes.ParseManifest(ocitypes.MediaTypeOCIManifest, body)
	fmt.Println(err)

	// A schema 1 manifest is refused as unsupported.
	_, err = ocitypes.ParseManifest("application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1}`))
	fmt.Println(err)
	// Output:
	// application/vnd.docker.image.rootfs.diff.tar.gzip 2813316 f18232174bc9
	// invalid manifest: mediaType "application/vnd.docker.distribution.manifest.v2+json" in the body contradicts content-type "application/vnd.oci.image.manifest.v1+json"
	// unsupported: docker image manifest schema 1 (content-type application/vnd.docker.distribution.manifest.v1+prettyjws) is not supported; the image must be rebuilt or pushed again as docker schema 2 or oci
}

func ExampleParsePlatform() {
	p, err := ocitypes.ParsePlatform("linux/aarch64")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ocitypes.FormatPlatform(p), "normalises to", ocitypes.FormatPlatform(ocitypes.NormalizePlatform(p)))
	_, err = ocitypes.ParsePlatform("linux")
	fmt.Println(err)
	// Output:
	// linux/aarch64 normalises to linux/arm64/v8
	// invalid platform: "linux": want os/arch or os/arch/variant
}

func ExampleMediaTypeOf() {
	// A static file server answers application/octet-stream; the body's keys decide.
	mt, err := ocitypes.MediaTypeOf("application/octet-stream", []byte(`{"schemaVersion":2,"manifests":[]}`))
	fmt.Println(mt, err)
	// Output:
	// application/vnd.oci.image.index.v1+json <nil>
}

func ExampleParseErrorEnvelope() {
	errs, ok := ocitypes.ParseErrorEnvelope([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}`))
	fmt.Println(ok, errs[0].Code, string(errs[0].Detail), errs[0].Error())
	_, ok = ocitypes.ParseErrorEnvelope([]byte("Not Authorized"))
	fmt.Println(ok)
	// Output:
	// true MANIFEST_UNKNOWN {"Tag":"nope"} manifest unknown
	// false
}
