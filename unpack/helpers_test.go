package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// testTime is the modification time of every test entry.
var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// Entry constructors for test layers.
func dirE(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}
}

func fileE(name, body string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime, Uname: body}
}

func symE(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}
}

func linkE(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}
}

func whE(name string) *tar.Header { return fileE(name, "", 0o644) }

// layerTar writes the entries as a tar; a regular file's body is carried in its
// header's Uname (cleared before writing).
func layerTar(t testing.TB, entries ...*tar.Header) []byte {
	t.Helper()
	b, err := tarOf(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarOf is layerTar that returns the error of an entry archive/tar cannot encode.
func tarOf(entries ...*tar.Header) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := *h
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Uname = h.Uname, ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// testLayer is a layer of a test image: its uncompressed tar and how to store it.
type testLayer struct {
	tar       []byte
	mediaType string // default: OCI gzip
	diffID    digest.Digest
}

// compressAs compresses b as the layer media type mt says.
func compressAs(t testing.TB, mt string, b []byte) []byte {
	t.Helper()
	comp, err := compressionOf(mt)
	if err != nil {
		return b
	}
	var buf bytes.Buffer
	switch comp {
	case gzipped:
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case zstded:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		return b
	}
	return buf.Bytes()
}

// fakeSource serves blobs from memory, verifying as a registry source does.
type fakeSource struct {
	root  ocitypes.Descriptor
	blobs map[digest.Digest][]byte
	// served replaces the bytes served for a digest (a lying source).
	served map[digest.Digest][]byte
}

func newFakeSource() *fakeSource {
	return &fakeSource{blobs: map[digest.Digest][]byte{}, served: map[digest.Digest][]byte{}}
}

func (s *fakeSource) add(mediaType string, b []byte) ocitypes.Descriptor {
	d := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	s.blobs[d.Digest] = b
	return d
}

func (s *fakeSource) Resolve(context.Context) (ocitypes.Descriptor, error) { return s.root, nil }

func (s *fakeSource) Fetch(_ context.Context, d ocitypes.Descriptor) (io.ReadCloser, error) {
	b, ok := s.served[d.Digest]
	if !ok {
		b, ok = s.blobs[d.Digest]
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", d.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(&verifier{r: bytes.NewReader(b), d: d, v: d.Digest.Verifier()}), nil
}

// verifier checks size and digest as it reads, like the registry's reader.
type verifier struct {
	r *bytes.Reader
	d ocitypes.Descriptor
	v digest.Verifier
	n int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.v.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		switch {
		case v.n != v.d.Size:
			return n, fmt.Errorf("%s: %d bytes, want %d: %w", v.d.Digest, v.n, v.d.Size, io.ErrUnexpectedEOF)
		case !v.v.Verified():
			return n, fmt.Errorf("%s: %w", v.d.Digest, errdef.ErrDigestMismatch)
		}
	}
	return n, err
}

// testImage builds an image of layers into a fake source; edit, when set,
// changes the config before it is stored.
func testImage(t testing.TB, edit func(*ocitypes.Image), layers ...testLayer) (*fakeSource, []ocitypes.Descriptor) {
	t.Helper()
	s := newFakeSource()
	cfg := ocitypes.Image{
		Platform: v1.Platform{OS: "linux", Architecture: ocitypes.HostPlatform().Architecture},
		RootFS:   v1.RootFS{Type: "layers"},
		Config:   v1.ImageConfig{Cmd: []string{"/bin/sh"}},
	}
	var descs []ocitypes.Descriptor
	for _, l := range layers {
		mt := l.mediaType
		if mt == "" {
			mt = ocitypes.MediaTypeOCILayerGzip
		}
		diffID := l.diffID
		if diffID == "" {
			diffID = digest.FromBytes(l.tar)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		descs = append(descs, s.add(mt, compressAs(t, mt, l.tar)))
	}
	if edit != nil {
		edit(&cfg)
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := ocitypes.Manifest{
		MediaType: ocitypes.MediaTypeOCIManifest,
		Config:    s.add(ocitypes.MediaTypeOCIConfig, cb),
		Layers:    descs,
	}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s.root = s.add(ocitypes.MediaTypeOCIManifest, mb)
	return s, descs
}

// tree describes every path under dir, one line each: type, permissions, size
// and content or link target. Directories and files are compared by content, not
// times.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = describe(t, p, fi)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func describe(t testing.TB, p string, fi fs.FileInfo) string {
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		return fmt.Sprintf("dir %04o", mode.Perm())
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		return "symlink -> " + target
	case mode.IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("file %04o %q", mode.Perm(), b)
	}
	return "other " + mode.String()
}

// diffTrees reports the differences between two tree descriptions.
func diffTrees(got, want map[string]string) string {
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "  missing %s: want %s\n", k, w)
		case !wok:
			fmt.Fprintf(&b, "  extra   %s: %s\n", k, g)
		case g != w:
			fmt.Fprintf(&b, "  differs %s: got %s, want %s\n", k, g, w)
		}
	}
	return b.String()
}

// wrapInIndex makes s serve an index holding its image for linux and the host's
// architecture.
func wrapInIndex(t testing.TB, s *fakeSource) *fakeSource {
	t.Helper()
	m := s.root
	p := ocitypes.HostPlatform()
	m.Platform = &p
	idx := ocitypes.Index{MediaType: ocitypes.MediaTypeOCIIndex, Manifests: []ocitypes.Descriptor{m}}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	s.root = s.add(ocitypes.MediaTypeOCIIndex, b)
	return s
}
