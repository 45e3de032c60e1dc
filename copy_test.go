package ocistream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// mapSource is a Source over blobs in memory that serves no byte ranges, as a plain
// Source would: the pipeline must verify what it reads and skip what a destination
// already holds without Range.
type mapSource struct {
	root    ocitypes.Descriptor
	blobs   map[digest.Digest][]byte
	corrupt map[digest.Digest]bool // served with their last byte flipped
	fetches map[digest.Digest]int
}

func newMapSource() *mapSource {
	return &mapSource{blobs: map[digest.Digest][]byte{}, corrupt: map[digest.Digest]bool{}, fetches: map[digest.Digest]int{}}
}

func (s *mapSource) add(mediaType string, b []byte) ocitypes.Descriptor {
	d := digest.FromBytes(b)
	s.blobs[d] = b
	return ocitypes.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (s *mapSource) addJSON(mediaType string, v any) ocitypes.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return s.add(mediaType, b)
}

// image adds a one-layer image for p and returns its manifest's descriptor.
func (s *mapSource) image(p ocitypes.Platform, layer string) ocitypes.Descriptor {
	l := s.add(ocitypes.MediaTypeOCILayer, []byte(layer))
	cfg := s.addJSON(ocitypes.MediaTypeOCIConfig, map[string]any{
		"architecture": p.Architecture, "os": p.OS,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{l.Digest}},
	})
	m := s.addJSON(ocitypes.MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "config": cfg, "layers": []ocitypes.Descriptor{l},
	})
	m.Platform = &p
	return m
}

func (s *mapSource) Resolve(context.Context) (ocitypes.Descriptor, error) { return s.root, nil }

func (s *mapSource) Fetch(_ context.Context, d ocitypes.Descriptor) (io.ReadCloser, error) {
	b, ok := s.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ocistream.ErrNotFound)
	}
	s.fetches[d.Digest]++
	if s.corrupt[d.Digest] {
		b = append(bytes.Clone(b[:len(b)-1]), b[len(b)-1]^1)
	}
	return io.NopCloser(&verifying{r: bytes.NewReader(b), d: d, h: digest.Canonical.Digester()}), nil
}

// verifying checks the digest at EOF, as the Source contract asks of Fetch.
type verifying struct {
	r io.Reader
	d ocitypes.Descriptor
	h digest.Digester
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Hash().Write(p[:n])
	if err == io.EOF && v.h.Digest() != v.d.Digest {
		return n, fmt.Errorf("blob %s: %w", v.d.Digest, ocistream.ErrDigestMismatch)
	}
	return n, err
}

func twoPlatformSource() *mapSource {
	s := newMapSource()
	amd := s.image(ocitypes.Platform{OS: "linux", Architecture: "amd64"}, "amd64 layer")
	arm := s.image(ocitypes.Platform{OS: "linux", Architecture: "arm64"}, "arm64 layer")
	s.root = s.addJSON(ocitypes.MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": []ocitypes.Descriptor{amd, arm},
	})
	return s
}

func TestCopy(t *testing.T) {
	name, err := ref.Parse("example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	arm64 := ocitypes.Platform{OS: "linux", Architecture: "arm64"}
	for _, tc := range []struct {
		what     string
		platform *ocitypes.Platform
		// blobs is how many blobs the layout holds after the copy.
		blobs int
		index bool // the tagged root is the index
	}{
		{"every platform, digest preserved", nil, 7, true},
		{"one platform", &arm64, 3, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			src := twoPlatformSource()
			dir := t.TempDir()
			dst, err := layout.OpenDir(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			root, err := ocistream.Copy(t.Context(), src, dst, &ocistream.CopyOptions{Name: name, Platform: tc.platform})
			if err != nil {
				t.Fatal(err)
			}
			if got := ocitypes.IsIndex(root.MediaType); got != tc.index {
				t.Errorf("root %s: index = %v, want %v", root.MediaType, got, tc.index)
			}
			if tc.index && root.Digest != src.root.Digest {
				t.Errorf("root digest %s, want the source's %s", root.Digest, src.root.Digest)
			}
			report, err := layout.Verify(t.Context(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !report.OK() {
				t.Errorf("layout does not verify: %+v", report.Problems)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != tc.blobs {
				t.Errorf("%d blobs in the layout, want %d", len(entries), tc.blobs)
			}
			// A rerun fetches nothing but the manifests it walks.
			before := maps.Clone(src.fetches)
			if _, err := ocistream.Copy(t.Context(), src, dst, &ocistream.CopyOptions{Name: name, Platform: tc.platform}); err != nil {
				t.Fatal(err)
			}
			for dg, n := range src.fetches {
				if n != before[dg] && !isManifest(src, dg) {
					t.Errorf("rerun fetched blob %s again", dg)
				}
			}
		})
	}
}

func isManifest(s *mapSource, dg digest.Digest) bool {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	return json.Unmarshal(s.blobs[dg], &probe) == nil && (ocitypes.IsManifest(probe.MediaType) || ocitypes.IsIndex(probe.MediaType))
}

// A wrong byte from the source never reaches the destination, and nothing is tagged.
func TestCopyRefusesWrongBytes(t *testing.T) {
	src := twoPlatformSource()
	for dg, b := range src.blobs {
		if string(b) == "arm64 layer" {
			src.corrupt[dg] = true
		}
	}
	dir := t.TempDir()
	dst, err := layout.OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	name, _ := ref.Parse("example.com/app:v1")
	_, err = ocistream.Copy(t.Context(), src, dst, &ocistream.CopyOptions{Name: name})
	if !errors.Is(err, ocistream.ErrDigestMismatch) {
		t.Fatalf("Copy = %v, want a digest mismatch", err)
	}
	idx, err := dst.Index()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 0 {
		t.Errorf("index.json names %d images after a failed copy", len(idx.Manifests))
	}
	for dg := range src.corrupt {
		if _, err := os.Lstat(dst.BlobPath(dg)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the corrupt blob %s reached blobs/ (%v)", dg, err)
		}
	}
}

// A source that names no image needs CopyOptions.Name.
func TestCopyNeedsAName(t *testing.T) {
	dst, err := layout.OpenDir(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := ocistream.Copy(t.Context(), twoPlatformSource(), dst, nil); err == nil {
		t.Fatal("Copy without a name succeeded")
	}
}

// Copy an image from one place to another: here from a source in memory into an OCI
// layout directory, every platform of its index, under the source's digest.
func ExampleCopy() {
	src := twoPlatformSource()
	dir, err := os.MkdirTemp("", "copy-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	dst, err := layout.OpenDir(dir, nil)
	if err != nil {
		panic(err)
	}
	defer dst.Close()
	name, err := ref.Parse("example.com/app:v1")
	if err != nil {
		panic(err)
	}
	root, err := ocistream.Copy(context.Background(), src, dst, &ocistream.CopyOptions{Name: name})
	if err != nil {
		panic(err)
	}
	fmt.Println(root.MediaType, root.Digest == src.root.Digest)
	// Output: application/vnd.oci.image.index.v1+json true
}
