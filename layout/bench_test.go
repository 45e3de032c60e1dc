package layout

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ocistream/ocistream/ocitypes"
)

// benchBlob returns a blob of random bytes.
func benchBlob(size int) testBlob {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return newBlob(ocitypes.MediaTypeOCILayerGzip, data)
}

// BenchmarkDirBlobWriter writes a 64 MiB blob into a Dir and commits it: through Write
// in 32 KiB pieces (what io.Copy does with a plain writer) or through ReadFrom, with
// and without fsync.
func BenchmarkDirBlobWriter(b *testing.B) {
	blob := benchBlob(64 << 20)
	for _, sync := range []bool{true, false} {
		for _, mode := range []string{"write32k", "readfrom"} {
			b.Run(fmt.Sprintf("sync=%v/%s", sync, mode), func(b *testing.B) {
				d, err := OpenDir(b.TempDir(), &DirOptions{NoSync: !sync})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(blob.desc.Size)
				b.ReportAllocs()
				for b.Loop() {
					w, err := d.OpenBlob(b.Context(), blob.desc)
					if err != nil {
						b.Fatal(err)
					}
					if mode == "readfrom" {
						_, err = io.Copy(w, bytes.NewReader(blob.data))
					} else {
						for p := blob.data; len(p) > 0 && err == nil; p = p[min(len(p), 32<<10):] {
							_, err = w.Write(p[:min(len(p), 32<<10)])
						}
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := w.Commit(); err != nil {
						b.Fatal(err)
					}
					os.Remove(d.BlobPath(blob.desc.Digest))
				}
			})
		}
	}
}

// BenchmarkTarWriter writes a 64 MiB blob as a tar entry to io.Discard, in 32 KiB pieces.
func BenchmarkTarWriter(b *testing.B) {
	blob := benchBlob(64 << 20)
	b.SetBytes(blob.desc.Size)
	b.ReportAllocs()
	for b.Loop() {
		t := NewTar(io.Discard, nil)
		w, err := t.OpenBlob(b.Context(), blob.desc)
		if err != nil {
			b.Fatal(err)
		}
		for p := blob.data; len(p) > 0 && err == nil; p = p[min(len(p), 32<<10):] {
			_, err = w.Write(p[:min(len(p), 32<<10)])
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := t.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
