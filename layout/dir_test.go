package layout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

func openDir(t testing.TB, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path, &DirOptions{BufferSize: 64})
	if err != nil {
		t.Fatalf("OpenDir(%q) = %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenDirFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	d := openDir(t, path)
	if d.Path() != path {
		t.Errorf("Path() = %q, want %q", d.Path(), path)
	}
	for name, want := range map[string]string{
		"oci-layout": `{"imageLayoutVersion":"1.0.0"}`,
		"index.json": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` + "\n",
	} {
		got, err := os.ReadFile(filepath.Join(path, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(path, "blobs")); err != nil || !fi.IsDir() {
		t.Errorf("blobs/ = %v, %v; want a directory", fi, err)
	}
	if got := listFiles(t, path); !slices.Equal(got, []string{"index.json", "oci-layout"}) {
		t.Errorf("files = %q, want only index.json and oci-layout", got)
	}
	// An existing layout opens again, and an empty directory becomes one.
	openDir(t, path)
	openDir(t, t.TempDir())
}

func TestOpenDirInvalid(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"layout version", map[string]string{"oci-layout": `{"imageLayoutVersion":"2.0.0"}`}},
		{"layout not json", map[string]string{"oci-layout": `1.0.0`}},
		{"index not json", map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{`}},
		{"index schema version", map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":1,"manifests":[]}`}},
		{"index media type", map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`}},
		{"foreign directory", map[string]string{"notes.txt": "hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(path, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := OpenDir(path, nil); !errors.Is(err, errdef.ErrInvalidLayout) {
				t.Errorf("OpenDir() = %v, want %v", err, errdef.ErrInvalidLayout)
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		os.WriteFile(path, nil, 0o644)
		if _, err := OpenDir(path, nil); !errors.Is(err, errdef.ErrInvalidLayout) {
			t.Errorf("OpenDir() = %v, want %v", err, errdef.ErrInvalidLayout)
		}
	})
}

func TestDirBlobCommit(t *testing.T) {
	for _, size := range []int{0, 1, 63, 64, 65, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			d := openDir(t, t.TempDir())
			data := bytes.Repeat([]byte("x"), size)
			b := newBlob("application/octet-stream", data)
			w, err := d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			if w.Offset() != 0 {
				t.Errorf("Offset() = %d, want 0", w.Offset())
			}
			// Uneven writes cross the buffer boundary every way.
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 7+len(rest)%50)
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := w.Commit(); err != nil {
				t.Fatalf("Commit() = %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close() after Commit = %v", err)
			}
			got, err := os.ReadFile(d.BlobPath(b.desc.Digest))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("blob = %d bytes, %v; want %d bytes", len(got), err, size)
			}
			if p, _ := d.PartialDownloads(); len(p) != 0 {
				t.Errorf("PartialDownloads() = %q, want none", p)
			}
			if ents, _ := os.ReadDir(filepath.Join(d.Path(), ".ingest")); len(ents) != 0 {
				t.Errorf(".ingest holds %d entries after commit, want 0", len(ents))
			}
		})
	}
}

func TestDirBlobReadFrom(t *testing.T) {
	for _, size := range []int{0, 1, 64, 200} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			d := openDir(t, t.TempDir())
			data := bytes.Repeat([]byte("abc"), size)[:size]
			b := newBlob("application/octet-stream", data)
			w, err := d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// iotest-like small reads through ReadFrom.
			n, err := io.Copy(w, &chunkReader{data: data, chunk: 9})
			if err != nil || n != int64(size) {
				t.Fatalf("io.Copy() = %d, %v; want %d", n, err, size)
			}
			if err := w.Commit(); err != nil {
				t.Fatalf("Commit() = %v", err)
			}
			got, _ := os.ReadFile(d.BlobPath(b.desc.Digest))
			if !bytes.Equal(got, data) {
				t.Errorf("blob = %q, want %q", got, data)
			}
		})
	}
	t.Run("too long", func(t *testing.T) {
		d := openDir(t, t.TempDir())
		b := newBlob("application/octet-stream", []byte("0123456789"))
		w, err := d.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, strings.NewReader("0123456789!")); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Errorf("io.Copy(11 bytes) = %v, want %v", err, errdef.ErrDigestMismatch)
		}
		if err := w.Commit(); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Errorf("Commit() = %v, want %v", err, errdef.ErrDigestMismatch)
		}
		if p, _ := d.PartialDownloads(); len(p) != 0 {
			t.Errorf("PartialDownloads() = %q, want none", p)
		}
	})
}

// chunkReader returns data a few bytes per Read.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDirBlobFailures(t *testing.T) {
	good := []byte("the right bytes of this blob")
	tests := []struct {
		name        string
		write       []byte
		want        error
		keepPartial bool
	}{
		{"wrong bytes", []byte("the wrong bytes of this blob"), errdef.ErrDigestMismatch, false},
		{"short", good[:10], io.ErrUnexpectedEOF, true},
		{"long", append(append([]byte{}, good...), '!'), errdef.ErrDigestMismatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			b := newBlob("application/octet-stream", good)
			w, err := d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := w.Write(tt.write)
			err = w.Commit()
			if !errors.Is(err, tt.want) {
				t.Errorf("Commit() = %v, want %v (Write: %v)", err, tt.want, werr)
			}
			if files := listFiles(t, filepath.Join(d.Path(), "blobs")); len(files) != 0 {
				t.Errorf("blobs/ holds %q, want nothing", files)
			}
			p, _ := d.PartialDownloads()
			if got := len(p) == 1; got != tt.keepPartial {
				t.Errorf("PartialDownloads() = %q, want kept: %v", p, tt.keepPartial)
			}
			// A retry starts over (or continues the short prefix) and succeeds.
			w, err = d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			wantOffset := int64(0)
			if tt.keepPartial {
				wantOffset = int64(len(tt.write))
			}
			if w.Offset() != wantOffset {
				t.Errorf("retry Offset() = %d, want %d", w.Offset(), wantOffset)
			}
			w.Write(good[w.Offset():])
			if err := w.Commit(); err != nil {
				t.Errorf("retry Commit() = %v", err)
			}
		})
	}
}

func TestDirBlobAlreadyExists(t *testing.T) {
	d := openDir(t, t.TempDir())
	b := newBlob("application/octet-stream", []byte("present"))
	writeBlob(t, d, b)
	if _, err := d.OpenBlob(t.Context(), b.desc); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("OpenBlob(present) = %v, want %v", err, errdef.ErrAlreadyExists)
	}
	// A file of another size under the blob's name is not the blob: it is replaced.
	os.WriteFile(d.BlobPath(b.desc.Digest), []byte("trunc"), 0o644)
	writeBlob(t, d, b)
	if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, b.data) {
		t.Errorf("blob = %q, want %q", got, b.data)
	}
}

func TestDirBlobResume(t *testing.T) {
	d := openDir(t, t.TempDir())
	data := bytes.Repeat([]byte("0123456789"), 100)
	b := newBlob("application/octet-stream", data)
	half := len(data) / 2

	w, err := d.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:half])
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if p, _ := d.PartialDownloads(); len(p) != 1 || !strings.HasSuffix(p[0], b.desc.Digest.Encoded()+".partial") {
		t.Fatalf("PartialDownloads() = %q, want the blob's partial file", p)
	}

	// A new Dir value, as after a restart.
	d2 := openDir(t, d.Path())
	w, err = d2.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != int64(half) {
		t.Fatalf("Offset() = %d, want %d", w.Offset(), half)
	}
	w.Write(data[half:])
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, data) {
		t.Errorf("blob differs after resume")
	}
	if p, _ := d.PartialDownloads(); len(p) != 0 {
		t.Errorf("PartialDownloads() = %q, want none", p)
	}
}

func TestDirBlobResumeCorrupt(t *testing.T) {
	d := openDir(t, t.TempDir())
	data := bytes.Repeat([]byte("abcdefgh"), 50)
	b := newBlob("application/octet-stream", data)
	w, _ := d.OpenBlob(t.Context(), b.desc)
	w.Write(data[:100])
	w.Close()

	p, _ := d.PartialDownloads()
	if len(p) != 1 {
		t.Fatalf("PartialDownloads() = %q, want one", p)
	}
	partial, _ := os.ReadFile(p[0])
	partial[42] ^= 0xff
	os.WriteFile(p[0], partial, 0o644)

	w, err := d.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 100 {
		t.Fatalf("Offset() = %d, want 100", w.Offset())
	}
	w.Write(data[100:])
	if err := w.Commit(); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("Commit() = %v, want %v", err, errdef.ErrDigestMismatch)
	}
	if p, _ := d.PartialDownloads(); len(p) != 0 {
		t.Errorf("PartialDownloads() = %q, want none", p)
	}
	if _, err := os.Stat(d.BlobPath(b.desc.Digest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("blob stat = %v, want not exist", err)
	}
	w, _ = d.OpenBlob(t.Context(), b.desc)
	if w.Offset() != 0 {
		t.Errorf("retry Offset() = %d, want 0", w.Offset())
	}
	w.Write(data)
	if err := w.Commit(); err != nil {
		t.Errorf("retry Commit() = %v", err)
	}
}

func TestDirBlobPartialTooLong(t *testing.T) {
	d := openDir(t, t.TempDir())
	b := newBlob("application/octet-stream", []byte("short blob"))
	os.MkdirAll(filepath.Join(d.Path(), ".ingest"), 0o755)
	os.WriteFile(d.partialPath(b.desc.Digest), []byte("a partial file longer than the blob"), 0o644)
	w, err := d.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 {
		t.Errorf("Offset() = %d, want 0", w.Offset())
	}
	w.Write(b.data)
	if err := w.Commit(); err != nil {
		t.Errorf("Commit() = %v", err)
	}
}

func TestDirBlobBadDescriptor(t *testing.T) {
	d := openDir(t, t.TempDir())
	tests := []struct {
		name string
		desc ocitypes.Descriptor
		want error
	}{
		{"traversal", ocitypes.Descriptor{Digest: digest.Digest("sha256:../../" + strings.Repeat("a", 58)), Size: 1}, digest.ErrDigestInvalidFormat},
		{"unknown algorithm", ocitypes.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 1}, errdef.ErrUnsupported},
		{"short hex", ocitypes.Descriptor{Digest: "sha256:abc", Size: 1}, digest.ErrDigestInvalidLength},
		{"negative size", ocitypes.Descriptor{Digest: digest.FromString("x"), Size: -1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.OpenBlob(t.Context(), tt.desc)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("OpenBlob(%+v) = %v, want %v", tt.desc, err, tt.want)
			}
		})
	}
	if got := d.BlobPath("sha256:../../x"); got != "" {
		t.Errorf("BlobPath(invalid) = %q, want \"\"", got)
	}
}

func TestDirBlobSameDigest(t *testing.T) {
	d := openDir(t, t.TempDir())
	other := openDir(t, d.Path())
	data := bytes.Repeat([]byte("same digest "), 1000)
	b := newBlob("application/octet-stream", data)

	t.Run("waiter times out", func(t *testing.T) {
		w, err := d.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if _, err := other.OpenBlob(ctx, b.desc); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second OpenBlob = %v, want %v", err, context.DeadlineExceeded)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		committed, skipped := 0, 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dd := d
				if i%2 == 1 {
					dd = other
				}
				w, err := dd.OpenBlob(t.Context(), b.desc)
				if errors.Is(err, errdef.ErrAlreadyExists) {
					mu.Lock()
					skipped++
					mu.Unlock()
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				defer w.Close()
				// Write in pieces, giving up half way for some writers.
				rest := data[w.Offset():]
				for len(rest) > 0 {
					n := min(len(rest), 1000)
					if _, err := w.Write(rest[:n]); err != nil {
						t.Error(err)
						return
					}
					rest = rest[n:]
					if i < 3 && len(rest) < len(data)/2 {
						return // Close keeps the partial file for the next writer
					}
				}
				if err := w.Commit(); err != nil {
					t.Errorf("Commit() = %v", err)
					return
				}
				mu.Lock()
				committed++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if committed != 1 {
			t.Errorf("%d writers committed (%d skipped), want exactly 1", committed, skipped)
		}
		if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, data) {
			t.Errorf("blob corrupted by concurrent writers")
		}
	})
}

func TestDirClosed(t *testing.T) {
	d := openDir(t, t.TempDir())
	b := newBlob("application/octet-stream", []byte("x"))
	d.Close()
	if _, err := d.OpenBlob(t.Context(), b.desc); !errors.Is(err, os.ErrClosed) {
		t.Errorf("OpenBlob after Close = %v, want %v", err, os.ErrClosed)
	}
	if err := d.Tag(t.Context(), mustParse(t, "a:b"), b.desc); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Tag after Close = %v, want %v", err, os.ErrClosed)
	}
}

func TestOpenDirConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := OpenDir(path, nil); err != nil {
				t.Errorf("OpenDir() = %v", err)
			}
		}()
	}
	wg.Wait()
	if got := listFiles(t, path); !slices.Equal(got, []string{"index.json", "oci-layout"}) {
		t.Errorf("files = %q, want index.json and oci-layout", got)
	}
}
