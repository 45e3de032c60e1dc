package layout

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzOpenArchive opens arbitrary bytes as a layout tar: it must never panic, and a
// tar it accepts must serve each blob named in its index.json within the file's size.
func FuzzOpenArchive(f *testing.F) {
	blob := []byte("blob")
	name := "blobs/sha256/" + digest.FromBytes(blob).Encoded()
	index := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
		digest.FromBytes(blob).String() + `","size":4,"annotations":{"org.opencontainers.image.ref.name":"x"}}]}`)
	good := tarOf(f, tarFile{name: layoutFile, body: ociLayoutJSON}, tarFile{name: indexFile, body: index},
		tarFile{name: "blobs/", typ: tar.TypeDir}, tarFile{name: name, body: blob})
	f.Add(good)
	f.Add(good[:len(good)-1024])
	f.Add(tarOf(f, tarFile{name: "../x", body: blob}))
	f.Add(tarOf(f, tarFile{name: name, body: blob}, tarFile{name: name, body: blob}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenArchive(p)
		if err != nil {
			return
		}
		defer r.Close()
		for _, im := range r.Images() {
			e, err := r.OpenBlob(im.Descriptor.Digest)
			if err != nil {
				continue
			}
			fi, _ := e.Stat()
			n, err := io.Copy(io.Discard, e)
			if err != nil || n != fi.Size() || n > int64(len(data)) {
				t.Errorf("blob %s: read %d of %d bytes from a %d byte file: %v", im.Descriptor.Digest, n, fi.Size(), len(data), err)
			}
			e.Close()
		}
		r.Image("x")
	})
}
