package layout

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocistream/ocistream/errdef"
)

// FuzzDecodeIndex checks that index.json parsing never panics, fails only with
// ErrInvalidLayout, and that what it accepts encodes to a stable form.
func FuzzDecodeIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":null}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:zz","size":-1,"annotations":{"a":"b"}}]}`))
	if b, err := os.ReadFile(filepath.Join("testdata", "dir-index.json")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := decodeIndex(b)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidLayout) {
				t.Fatalf("decodeIndex(%q) = %v, want an error wrapping %v", b, err, errdef.ErrInvalidLayout)
			}
			return
		}
		enc, err := encodeIndex(idx)
		if err != nil {
			t.Fatalf("encodeIndex() = %v", err)
		}
		idx2, err := decodeIndex(enc)
		if err != nil {
			t.Fatalf("decodeIndex(encodeIndex(x)) = %v for %q", err, enc)
		}
		enc2, _ := encodeIndex(idx2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzCheckLayoutFile checks that oci-layout parsing never panics and fails only with
// ErrInvalidLayout.
func FuzzCheckLayoutFile(f *testing.F) {
	f.Add([]byte(`{"imageLayoutVersion":"1.0.0"}`))
	f.Add([]byte(`{"imageLayoutVersion":"1.1.0"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkLayoutFile(b); err != nil && !errors.Is(err, errdef.ErrInvalidLayout) {
			t.Fatalf("checkLayoutFile(%q) = %v, want an error wrapping %v", b, err, errdef.ErrInvalidLayout)
		}
	})
}
