package unpack

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ocistream/ocistream/ocitypes"
)

// BenchmarkImage unpacks an image of 2 gzip layers of 32 MiB each, one file and
// 256 small files, from memory: the cost of decompressing, hashing twice and
// writing, without a network.
func BenchmarkImage(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	bigLayer := func(name string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := random(32 << 20)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write(body)
		tw.Close()
		return buf.Bytes()
	}
	var small bytes.Buffer
	tw := tar.NewWriter(&small)
	for i := range 256 {
		body := random(4 << 10)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "d" + strconv.Itoa(i%16) + "/f" + strconv.Itoa(i), Mode: 0o644, Size: int64(len(body))})
		tw.Write(body)
	}
	tw.Close()
	src, _ := testImage(b, nil,
		testLayer{tar: bigLayer("a")}, testLayer{tar: bigLayer("b")}, testLayer{tar: small.Bytes(), mediaType: ocitypes.MediaTypeOCILayerGzip})
	var total int64
	for _, l := range src.blobs {
		total += int64(len(l))
	}
	b.SetBytes(total)
	root := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Image(b.Context(), src, filepath.Join(root, strconv.Itoa(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
