package ocitypes

import (
	"encoding/json"
	"fmt"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func BenchmarkParseManifest(b *testing.B) {
	small := fixture(b, "oci-manifest.json")
	// A manifest close to MaxManifestSize: about 18,000 layers.
	m := Manifest{MediaType: MediaTypeOCIManifest, Config: Descriptor{MediaType: MediaTypeOCIConfig, Digest: digest.FromString("c"), Size: 1}}
	m.SchemaVersion = 2
	for i := 0; ; i++ {
		m.Layers = append(m.Layers, Descriptor{MediaType: MediaTypeOCILayerGzip, Digest: digest.FromString(fmt.Sprint(i)), Size: int64(i)})
		if i%1000 == 0 {
			if body, _ := json.Marshal(m); len(body) > MaxManifestSize-300_000 {
				break
			}
		}
	}
	large, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body []byte
	}{{"fixture", small}, {"near-limit", large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseManifest(MediaTypeOCIManifest, bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
