package layout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// destination is what Dir and Tar have in common.
type destination interface {
	OpenBlob(ctx context.Context, d ocitypes.Descriptor) (BlobWriter, error)
	Tag(ctx context.Context, name ref.Reference, root ocitypes.Descriptor) error
}

// testBlob is a blob and its descriptor.
type testBlob struct {
	desc ocitypes.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) testBlob {
	return testBlob{desc: ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

func jsonBlob(t testing.TB, mediaType string, v any) testBlob {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return newBlob(mediaType, b)
}

// testImage is a small real image: gzip'd tar layers, an OCI config whose diff_ids are
// right, and an OCI manifest.
type testImage struct {
	layers   []testBlob
	diffIDs  []digest.Digest
	config   testBlob
	manifest testBlob
}

// blobs returns the blobs of the image in the order a pull commits them: layers,
// config, then the manifest.
func (im testImage) blobs() []testBlob {
	return append(append(append([]testBlob{}, im.layers...), im.config), im.manifest)
}

// newTestImage builds an image of two layers, each holding one file named after seed,
// gzip'd when gz is set (the golden files use plain tar layers, whose bytes do not
// depend on the compressor).
func newTestImage(t testing.TB, seed string, os, arch string, gz bool) testImage {
	t.Helper()
	var im testImage
	var diffIDs []digest.Digest
	for _, name := range []string{"etc/" + seed, "usr/" + seed} {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		content := []byte("content of " + name + " in " + seed + "\n")
		dir := filepath.Dir(name) + "/"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(content)
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
		if !gz {
			im.layers = append(im.layers, newBlob(ocitypes.MediaTypeOCILayer, raw.Bytes()))
			continue
		}
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(raw.Bytes())
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		im.layers = append(im.layers, newBlob(ocitypes.MediaTypeOCILayerGzip, zb.Bytes()))
	}
	img := ocitypes.Image{
		Platform: ocitypes.Platform{OS: os, Architecture: arch},
		Config:   v1.ImageConfig{Cmd: []string{"/bin/true"}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	im.diffIDs = diffIDs
	im.config = jsonBlob(t, ocitypes.MediaTypeOCIConfig, img)
	m := ocitypes.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocitypes.MediaTypeOCIManifest,
		Config:    im.config.desc,
	}
	for _, l := range im.layers {
		m.Layers = append(m.Layers, l.desc)
	}
	im.manifest = jsonBlob(t, ocitypes.MediaTypeOCIManifest, m)
	return im
}

// newTestIndex returns an OCI index of the images' manifests, with their platforms.
func newTestIndex(t testing.TB, images ...testImage) testBlob {
	t.Helper()
	idx := ocitypes.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocitypes.MediaTypeOCIIndex}
	for _, im := range images {
		var img ocitypes.Image
		if err := json.Unmarshal(im.config.data, &img); err != nil {
			t.Fatal(err)
		}
		d := im.manifest.desc
		p := img.Platform
		d.Platform = &p
		idx.Manifests = append(idx.Manifests, d)
	}
	return jsonBlob(t, ocitypes.MediaTypeOCIIndex, idx)
}

// writeBlob writes b whole into dst and commits it; ErrAlreadyExists counts as done.
func writeBlob(t testing.TB, dst destination, b testBlob) {
	t.Helper()
	w, err := dst.OpenBlob(t.Context(), b.desc)
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return
	}
	if err != nil {
		t.Fatalf("OpenBlob(%s) = %v", b.desc.Digest, err)
	}
	defer w.Close()
	if _, err := w.Write(b.data[w.Offset():]); err != nil {
		t.Fatalf("Write(%s) = %v", b.desc.Digest, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%s) = %v", b.desc.Digest, err)
	}
}

func mustParse(t testing.TB, s string) ref.Reference {
	t.Helper()
	r, err := ref.Parse(s)
	if err != nil {
		t.Fatalf("ref.Parse(%q) = %v", s, err)
	}
	return r
}

// golden compares got with testdata/name, rewriting the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// listFiles returns the regular files under root, relative, with forward slashes.
func listFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
