package layout

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// tarEntry is one entry of a tar stream read back.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar reads a whole tar stream; err is what the reader said at the end (nil for a
// complete archive).
func readTar(t testing.TB, r io.Reader) (entries []tarEntry, err error) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return entries, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return entries, err
		}
		entries = append(entries, tarEntry{hdr: hdr, data: data})
	}
}

func entryNames(entries []tarEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
	}
	return names
}

func entryData(entries []tarEntry, name string) []byte {
	for _, e := range entries {
		if e.hdr.Name == name {
			return e.data
		}
	}
	return nil
}

// tarScenario writes three images (one under an index) and four names into dst.
func tarScenario(t *testing.T, dst destination) (blobs []testBlob) {
	t.Helper()
	a := newTestImage(t, "a", "linux", "amd64", false)
	b := newTestImage(t, "b", "linux", "amd64", false)
	c := newTestImage(t, "c", "linux", "arm64", false)
	idx := newTestIndex(t, b, c)
	for _, im := range []testImage{a, c, b} {
		blobs = append(blobs, im.blobs()...)
	}
	blobs = append(blobs, idx)
	for _, blob := range blobs {
		writeBlob(t, dst, blob)
	}
	for _, tg := range []struct {
		name string
		root ocitypes.Descriptor
	}{
		{"ubuntu:latest", a.manifest.desc},
		{"ghcr.io/org/app:v1", idx.desc},
		{"ubuntu@" + a.manifest.desc.Digest.String(), a.manifest.desc},
		{"localhost:5000/team/tool:2.0", a.manifest.desc},
	} {
		if err := dst.Tag(t.Context(), mustParse(t, tg.name), tg.root); err != nil {
			t.Fatalf("Tag(%s) = %v", tg.name, err)
		}
	}
	return blobs
}

func TestTarStream(t *testing.T) {
	var buf bytes.Buffer
	tw := NewTar(&buf, nil)
	blobs := tarScenario(t, tw)
	if err := tw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	entries, err := readTar(t, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("reading the tar back: %v", err)
	}
	want := []string{"blobs/", "blobs/sha256/"}
	for _, b := range blobs {
		want = append(want, "blobs/sha256/"+b.desc.Digest.Encoded())
	}
	want = append(want, "oci-layout", "index.json", "manifest.json", "repositories")
	if got := entryNames(entries); !slices.Equal(got, want) {
		t.Fatalf("entries = %q\nwant %q", got, want)
	}
	for i, b := range blobs {
		e := entries[i+2]
		if !bytes.Equal(e.data, b.data) || e.hdr.Size != b.desc.Size {
			t.Errorf("%s: %d bytes (header %d), want %d", e.hdr.Name, len(e.data), e.hdr.Size, b.desc.Size)
		}
	}
	for _, e := range entries {
		wantMode, wantType := int64(0o644), byte(tar.TypeReg)
		if e.hdr.Name[len(e.hdr.Name)-1] == '/' {
			wantMode, wantType = 0o755, tar.TypeDir
		}
		if e.hdr.Mode != wantMode || e.hdr.Typeflag != wantType || e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: mode %o type %c uid %d gid %d time %v; want mode %o type %c, owner 0, time 0",
				e.hdr.Name, e.hdr.Mode, e.hdr.Typeflag, e.hdr.Uid, e.hdr.Gid, e.hdr.ModTime, wantMode, wantType)
		}
	}
	if got := string(entryData(entries, "oci-layout")); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	golden(t, "tar-manifest.json", entryData(entries, "manifest.json"))
	golden(t, "tar-repositories.json", entryData(entries, "repositories"))
	golden(t, "tar-index.json", entryData(entries, "index.json"))

	// The same calls into a Dir give the same index.json.
	d := openDir(t, t.TempDir())
	tarScenario(t, d)
	dirIndex, _ := os.ReadFile(filepath.Join(d.Path(), "index.json"))
	if got := entryData(entries, "index.json"); !bytes.Equal(got, dirIndex) {
		t.Errorf("tar index.json differs from the Dir's:\n%s\n%s", got, dirIndex)
	}
}

func TestTarPlatform(t *testing.T) {
	tests := []struct {
		name     string
		platform *ocitypes.Platform
		want     string // seed of the image manifest.json describes for the index
	}{
		{"default", nil, "b"},
		{"arm64", &ocitypes.Platform{OS: "linux", Architecture: "arm64"}, "c"},
		{"absent", &ocitypes.Platform{OS: "linux", Architecture: "s390x"}, "b"},
	}
	b := newTestImage(t, "b", "linux", "amd64", false)
	c := newTestImage(t, "c", "linux", "arm64", false)
	want := map[string]testImage{"b": b, "c": c}
	idx := newTestIndex(t, b, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := NewTar(&buf, &TarOptions{Platform: tt.platform})
			for _, blob := range append(append(c.blobs(), b.blobs()...), idx) {
				writeBlob(t, tw, blob)
			}
			if err := tw.Tag(t.Context(), mustParse(t, "app:v1"), idx.desc); err != nil {
				t.Fatal(err)
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			entries, err := readTar(t, &buf)
			if err != nil {
				t.Fatal(err)
			}
			got := string(entryData(entries, "manifest.json"))
			wantConfig := `"Config":"blobs/sha256/` + want[tt.want].config.desc.Digest.Encoded() + `"`
			if !bytes.Contains([]byte(got), []byte(wantConfig)) {
				t.Errorf("manifest.json = %s, want the image %s (%s)", got, tt.want, wantConfig)
			}
		})
	}
}

// tarFailed checks that the stream of a failed Tar is not a valid archive.
func tarFailed(t *testing.T, out []byte) {
	t.Helper()
	if len(out) >= 1024 && bytes.Equal(out[len(out)-1024:], make([]byte, 1024)) {
		t.Errorf("the failed stream ends with a tar trailer")
	}
	entries, err := readTar(t, bytes.NewReader(out))
	if err == nil {
		t.Errorf("reading the failed stream back succeeded, want an error (entries %q)", entryNames(entries))
	}
	for _, name := range []string{"index.json", "manifest.json", "oci-layout"} {
		if entryData(entries, name) != nil {
			t.Errorf("the failed stream holds %s", name)
		}
	}
	externalReadersFail(t, out)
}

func TestTarFailures(t *testing.T) {
	good := newBlob("application/octet-stream", []byte("a good blob"))
	bad := newBlob("application/octet-stream", []byte("the right bytes"))
	tests := []struct {
		name  string
		write []byte
		end   func(w BlobWriter) error
		want  error
	}{
		{"digest mismatch", []byte("the wrong bytes"), BlobWriter.Commit, errdef.ErrDigestMismatch},
		{"short commit", []byte("the right"), BlobWriter.Commit, io.ErrUnexpectedEOF},
		{"closed half way", []byte("the right"), BlobWriter.Close, io.ErrUnexpectedEOF},
		{"closed uncommitted", []byte("the right bytes"), BlobWriter.Close, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := NewTar(&buf, nil)
			writeBlob(t, tw, good)
			w, err := tw.OpenBlob(t.Context(), bad.desc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(tt.write); err != nil {
				t.Fatal(err)
			}
			if err := tt.end(w); !errors.Is(err, tt.want) {
				t.Fatalf("end of blob = %v, want %v", err, tt.want)
			}
			if _, err := tw.OpenBlob(t.Context(), newBlob("x/y", []byte("next")).desc); !errors.Is(err, tt.want) {
				t.Errorf("OpenBlob after failure = %v, want %v", err, tt.want)
			}
			if err := tw.Tag(t.Context(), mustParse(t, "a:b"), good.desc); !errors.Is(err, tt.want) {
				t.Errorf("Tag after failure = %v, want %v", err, tt.want)
			}
			if err := tw.Close(); !errors.Is(err, tt.want) {
				t.Errorf("Close after failure = %v, want %v", err, tt.want)
			}
			tarFailed(t, buf.Bytes())
		})
	}
	t.Run("too long", func(t *testing.T) {
		var buf bytes.Buffer
		tw := NewTar(&buf, nil)
		w, _ := tw.OpenBlob(t.Context(), bad.desc)
		if _, err := w.Write([]byte("the right bytes!")); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Errorf("Write(too long) = %v, want %v", err, errdef.ErrDigestMismatch)
		}
		w.Close()
		if err := tw.Close(); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Errorf("Close() = %v, want %v", err, errdef.ErrDigestMismatch)
		}
		tarFailed(t, buf.Bytes())
	})
	t.Run("aligned digest mismatch", func(t *testing.T) {
		// A wrong blob of a whole number of blocks: nothing pads it, and the bytes
		// after it fall on a header boundary.
		var buf bytes.Buffer
		tw := NewTar(&buf, nil)
		writeBlob(t, tw, good)
		right := newBlob("application/octet-stream", bytes.Repeat([]byte("r"), 1024))
		w, _ := tw.OpenBlob(t.Context(), right.desc)
		w.Write(bytes.Repeat([]byte("w"), 1024))
		if err := w.Commit(); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Errorf("Commit() = %v, want %v", err, errdef.ErrDigestMismatch)
		}
		tw.Close()
		tarFailed(t, buf.Bytes())
	})
	t.Run("writer still open", func(t *testing.T) {
		var buf bytes.Buffer
		tw := NewTar(&buf, nil)
		w, _ := tw.OpenBlob(t.Context(), good.desc)
		w.Write(good.data[:3])
		if err := tw.Close(); err == nil {
			t.Errorf("Close() with an open writer = nil, want an error")
		}
		w.Close()
		tarFailed(t, buf.Bytes())
	})
}

func TestTarCloseBeforeWrite(t *testing.T) {
	var buf bytes.Buffer
	tw := NewTar(&buf, nil)
	b := newBlob("application/octet-stream", []byte("retried blob"))
	w, err := tw.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() before any Write = %v", err)
	}
	writeBlob(t, tw, b)
	if _, err := tw.OpenBlob(t.Context(), b.desc); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("OpenBlob(duplicate) = %v, want %v", err, errdef.ErrAlreadyExists)
	}
	if err := tw.Tag(t.Context(), mustParse(t, "a:b"), newTestImage(t, "a", "linux", "amd64", false).manifest.desc); !errors.Is(err, errdef.ErrBlobMissing) {
		t.Errorf("Tag(missing root) = %v, want %v", err, errdef.ErrBlobMissing)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	entries, err := readTar(t, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(entryNames(entries), func(s string) bool { return s != "blobs/sha256/"+b.desc.Digest.Encoded() })); n != 1 {
		t.Errorf("the blob has %d entries, want 1", n)
	}
}

func TestTarOpenBlobWaits(t *testing.T) {
	tw := NewTar(io.Discard, nil)
	a := newBlob("application/octet-stream", []byte("first"))
	b := newBlob("application/octet-stream", []byte("second"))
	wa, err := tw.OpenBlob(t.Context(), a.desc)
	if err != nil {
		t.Fatal(err)
	}

	// A canceled wait returns the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tw.OpenBlob(ctx, b.desc); !errors.Is(err, context.Canceled) {
		t.Errorf("OpenBlob(canceled) = %v, want %v", err, context.Canceled)
	}

	var mu sync.Mutex
	var events []string
	record := func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wb, err := tw.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Error(err)
			return
		}
		record("b opened")
		wb.Write(b.data)
		if err := wb.Commit(); err != nil {
			t.Error(err)
		}
	}()
	wa.Write(a.data)
	record("a committing")
	if err := wa.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done
	if want := []string{"a committing", "b opened"}; !slices.Equal(events, want) {
		t.Errorf("events = %q, want %q", events, want)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTarPipe(t *testing.T) {
	pr, pw := io.Pipe()
	type result struct {
		entries []tarEntry
		err     error
	}
	res := make(chan result, 1)
	go func() {
		entries, err := readTar(t, pr)
		io.Copy(io.Discard, pr)
		res <- result{entries, err}
	}()
	tw := NewTar(pw, nil)
	a := newTestImage(t, "a", "linux", "amd64", true)
	for _, b := range a.blobs() {
		writeBlob(t, tw, b)
	}
	if err := tw.Tag(t.Context(), mustParse(t, "app:v1"), a.manifest.desc); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-res
	if r.err != nil {
		t.Fatalf("reading from the pipe: %v", r.err)
	}
	if got := len(r.entries); got != 2+len(a.blobs())+4 {
		t.Errorf("%d entries, want %d: %q", got, 2+len(a.blobs())+4, entryNames(r.entries))
	}
}

func TestTarEmptyBlobAndClosed(t *testing.T) {
	var buf bytes.Buffer
	tw := NewTar(&buf, nil)
	empty := newBlob("application/octet-stream", nil)
	w, err := tw.OpenBlob(t.Context(), empty.desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(empty) = %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.OpenBlob(t.Context(), newBlob("x/y", []byte("late")).desc); !errors.Is(err, os.ErrClosed) {
		t.Errorf("OpenBlob after Close = %v, want %v", err, os.ErrClosed)
	}
	entries, err := readTar(t, &buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"blobs/", "blobs/sha256/", "blobs/sha256/" + empty.desc.Digest.Encoded(), "oci-layout", "index.json", "manifest.json"}
	if got := entryNames(entries); !slices.Equal(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
	if got := string(entryData(entries, "manifest.json")); got != "[]\n" {
		t.Errorf("manifest.json = %q, want []", got)
	}
}
