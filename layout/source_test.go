package layout

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/ocistream/ocistream/errdef"
)

func TestSourceFetch(t *testing.T) {
	f := newReaderFixture(t)
	sources := map[string]func() (*Source, error){
		"dir": func() (*Source, error) { return OpenSource(f.dir, "2") },
		"tar": func() (*Source, error) { return OpenArchiveSource(f.tar, "example.com/app:2") },
	}
	for kind, open := range sources {
		t.Run(kind, func(t *testing.T) {
			s, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			root, err := s.Resolve(t.Context())
			if err != nil || root.Digest != f.two.manifest.desc.Digest {
				t.Fatalf("Resolve() = %v, %v; want %s", root.Digest, err, f.two.manifest.desc.Digest)
			}
			for _, b := range f.two.blobs() {
				rc, err := s.Fetch(t.Context(), b.desc)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, b.data) {
					t.Errorf("Fetch(%s) read %d bytes, %v", b.desc.Digest, len(got), err)
				}
			}
			layer := f.two.layers[0]
			rc, err := s.FetchRange(t.Context(), layer.desc, 3, 10)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, layer.data[3:13]) {
				t.Errorf("FetchRange(3, 10) = %x, %v; want %x", got, err, layer.data[3:13])
			}
			if _, err := s.FetchRange(t.Context(), layer.desc, 5, layer.desc.Size); err == nil {
				t.Error("FetchRange past the end succeeded")
			}
		})
	}
	if _, err := OpenSource(f.dir, "9"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("OpenSource of an unknown tag = %v, want ErrNotFound", err)
	}
}

func TestSourceFetchDamaged(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(path string, data []byte)
		fetch  error // of Fetch's reader or Fetch itself
		ranged error // of FetchRange of the whole blob
	}{
		{"flipped byte", func(p string, b []byte) {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, errdef.ErrDigestMismatch, nil},
		{"truncated", func(p string, b []byte) { os.Truncate(p, int64(len(b)-1)) }, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF},
		{"missing", func(p string, b []byte) { os.Remove(p) }, errdef.ErrBlobMissing, errdef.ErrBlobMissing},
		{"symlink", func(p string, b []byte) {
			os.Remove(p)
			os.Symlink("/etc/hostname", p)
		}, errdef.ErrInvalidLayout, errdef.ErrInvalidLayout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newReaderFixture(t)
			layer := f.one.layers[1]
			d := openDir(t, f.dir)
			tt.damage(d.BlobPath(layer.desc.Digest), layer.data)
			s, err := OpenSource(f.dir, "1")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			readAll := func(rc io.ReadCloser, err error) error {
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.ReadAll(rc)
				return err
			}
			if err := readAll(s.Fetch(t.Context(), layer.desc)); !errors.Is(err, tt.fetch) {
				t.Errorf("Fetch = %v, want %v", err, tt.fetch)
			}
			err = readAll(s.FetchRange(t.Context(), layer.desc, 0, layer.desc.Size))
			if (tt.ranged == nil && err != nil) || !errors.Is(err, tt.ranged) {
				t.Errorf("FetchRange = %v, want %v", err, tt.ranged)
			}
		})
	}
}
