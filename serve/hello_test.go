package serve

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

var update = flag.Bool("update", false, "rewrite testdata/hello at the repository root")

// helloDir is the tiny image that the README's first commands serve and pull.
const helloDir = "../testdata/hello"

// helloLayout returns the files of testdata/hello by path: an OCI index of two
// platforms (linux/amd64 and linux/arm64), each a manifest with a config and one
// uncompressed tar layer holding hello.txt, named latest by org.opencontainers.image.ref.name
// only (so it is served as repository hello, after the directory). Plain tar keeps the
// bytes independent of the compressor's version.
func helloLayout(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	add := func(mediaType string, b []byte) ocitypes.Descriptor {
		d := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		files["blobs/sha256/"+d.Digest.Encoded()] = b
		return d
	}
	addJSON := func(mediaType string, v any) ocitypes.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return add(mediaType, b)
	}
	var manifests []ocitypes.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		var layer bytes.Buffer
		tw := tar.NewWriter(&layer)
		text := []byte("Hello from an OCI layout served by ocipull (linux/" + arch + ").\n")
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "hello.txt", Mode: 0o644, Size: int64(len(text)), Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(text)
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		l := add(ocitypes.MediaTypeOCILayer, layer.Bytes())
		cfg := addJSON(ocitypes.MediaTypeOCIConfig, map[string]any{
			"architecture": arch, "os": "linux",
			"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{l.Digest}},
		})
		m := addJSON(ocitypes.MediaTypeOCIManifest, map[string]any{
			"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "config": cfg, "layers": []ocitypes.Descriptor{l},
			"annotations": map[string]string{"org.opencontainers.image.title": "hello"},
		})
		m.Platform = &ocitypes.Platform{OS: "linux", Architecture: arch}
		manifests = append(manifests, m)
	}
	idx := addJSON(ocitypes.MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": manifests,
	})
	idx.Annotations = map[string]string{"org.opencontainers.image.ref.name": "latest"}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": []ocitypes.Descriptor{idx}})
	if err != nil {
		t.Fatal(err)
	}
	files["index.json"] = append(b, '\n')
	return files
}

// TestHelloLayout checks testdata/hello against the bytes helloLayout makes; with
// -update it writes them.
func TestHelloLayout(t *testing.T) {
	want := helloLayout(t)
	if *update {
		if err := os.RemoveAll(helloDir); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			p := filepath.Join(helloDir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	err := filepath.WalkDir(helloDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(helloDir, p)
		rel = filepath.ToSlash(rel)
		got = append(got, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, want[rel]) {
			t.Errorf("%s differs from what helloLayout makes (go test ./serve -run TestHelloLayout -update)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		var names []string
		for n := range want {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Errorf("%s holds %q, want %q", helloDir, got, names)
	}

	h, err := New(helloDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.Repositories(); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("repositories %q, want [hello]", got)
	}
}
