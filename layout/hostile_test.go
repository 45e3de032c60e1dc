//go:build unix

package layout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocistream/ocistream/errdef"
)

// plant makes the file at path something other than a fresh regular file: kind is
// "symlink" (to victim), "dangling", "hardlink" (to victim), "fifo" or "dir".
func plant(t *testing.T, kind, path, victim string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	switch kind {
	case "symlink":
		err = os.Symlink(victim, path)
	case "dangling":
		err = os.Symlink(filepath.Join(filepath.Dir(victim), "nothing-here"), path)
	case "hardlink":
		err = os.Link(victim, path)
	case "fifo":
		err = syscall.Mkfifo(path, 0o644)
	case "dir":
		err = os.Mkdir(path, 0o755)
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// noBlock runs f and fails the test if it has not returned within a minute: a FIFO
// opened for reading blocks until a writer comes, forever.
func noBlock(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked", what)
	}
}

// newVictim writes a file outside the layout that a planted link points to.
func newVictim(t *testing.T) (path string, content []byte) {
	t.Helper()
	content = []byte("a file outside the layout that no pull may touch")
	path = filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, content
}

func checkVictim(t *testing.T, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(content) {
		t.Errorf("the file outside the layout was changed: %q, %v", got, err)
	}
}

// TestOpenBlobRefusesPlantedPartial plants, where a blob's partial download or its
// lock file goes, what someone sharing the layout could: OpenBlob must refuse it with
// an error naming the path, without blocking, and touch nothing outside the layout.
func TestOpenBlobRefusesPlantedPartial(t *testing.T) {
	b := newBlob("application/octet-stream", []byte("the blob being pulled"))
	for _, file := range []string{"partial", "lock"} {
		for _, kind := range []string{"symlink", "dangling", "hardlink", "fifo", "dir"} {
			if file == "lock" && kind == "hardlink" {
				continue // a lock file is never written: a hard link to it is harmless
			}
			t.Run(file+"/"+kind, func(t *testing.T) {
				victim, content := newVictim(t)
				d := openDir(t, t.TempDir())
				path := d.partialPath(b.desc.Digest)
				if file == "lock" {
					path += lockSuffix
				}
				plant(t, kind, path, victim)
				var err error
				noBlock(t, "OpenBlob", func() {
					var w BlobWriter
					w, err = d.OpenBlob(t.Context(), b.desc)
					if err == nil {
						w.Write(b.data)
						w.Commit()
					}
				})
				var nr *NotRegularError
				if !errors.As(err, &nr) || !errors.Is(err, errdef.ErrInvalidLayout) {
					t.Fatalf("OpenBlob = %v, want a *NotRegularError", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
				checkVictim(t, victim, content)
			})
		}
	}
}

// TestLayoutRefusesLinkedDirectories replaces .ingest/ and blobs/sha256/ with links to
// a directory outside the layout: nothing may be written there.
func TestLayoutRefusesLinkedDirectories(t *testing.T) {
	b := newBlob("application/octet-stream", []byte("the blob being pulled"))
	for _, sub := range []string{ingestDir, filepath.Join(blobsDir, "sha256")} {
		t.Run(sub, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			outside := t.TempDir()
			os.RemoveAll(filepath.Join(d.Path(), sub))
			if err := os.Symlink(outside, filepath.Join(d.Path(), sub)); err != nil {
				t.Fatal(err)
			}
			w, err := d.OpenBlob(t.Context(), b.desc)
			if err == nil {
				w.Write(b.data)
				err = w.Commit()
			}
			if !errors.As(err, new(*NotRegularError)) {
				t.Errorf("pull through a linked %s = %v, want a *NotRegularError", sub, err)
			}
			if entries, _ := os.ReadDir(outside); len(entries) > 0 {
				t.Errorf("files written outside the layout: %v", entries)
			}
		})
	}
}

// TestBlobSymlinkIsReplaced plants in blobs/ a link of the right size to a file
// outside: it is not taken for the blob, and the pull replaces it with the verified
// file. Tag does not take a linked root for present either.
func TestBlobSymlinkIsReplaced(t *testing.T) {
	victim, content := newVictim(t)
	b := newBlob("application/octet-stream", content) // same size as the victim
	b.desc.Digest = newBlob("", []byte(strings.Repeat("x", len(content)))).desc.Digest
	b.data = []byte(strings.Repeat("x", len(content)))
	d := openDir(t, t.TempDir())
	plant(t, "symlink", d.BlobPath(b.desc.Digest), victim)
	if ok, _ := d.Exists(t.Context(), b.desc); ok {
		t.Error("Exists took a symbolic link for the blob")
	}
	im := newTestImage(t, "app", "linux", "amd64", false)
	for _, blob := range im.blobs() {
		writeBlob(t, d, blob)
	}
	root := d.BlobPath(im.manifest.desc.Digest)
	os.Remove(root)
	plant(t, "symlink", root, d.BlobPath(im.config.desc.Digest))
	if err := d.Tag(t.Context(), mustParse(t, "a:b"), im.manifest.desc); !errors.Is(err, errdef.ErrBlobMissing) {
		t.Errorf("Tag with a linked root = %v, want ErrBlobMissing", err)
	}
	writeBlob(t, d, b)
	fi, err := os.Lstat(d.BlobPath(b.desc.Digest))
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("blobs/ holds %v, %v; want the verified regular file", fi, err)
	}
	checkVictim(t, victim, content)
}

// TestOpenDirRefusesSpecialFiles makes index.json and oci-layout a FIFO or a link:
// OpenDir fails at once, naming the file.
func TestOpenDirRefusesSpecialFiles(t *testing.T) {
	for _, name := range []string{indexFile, layoutFile} {
		for _, kind := range []string{"fifo", "symlink"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				victim, _ := newVictim(t)
				dir := t.TempDir()
				openDir(t, dir)
				os.Remove(filepath.Join(dir, name))
				plant(t, kind, filepath.Join(dir, name), victim)
				var err error
				noBlock(t, "OpenDir", func() { _, err = OpenDir(dir, nil) })
				if !errors.As(err, new(*NotRegularError)) || !strings.Contains(err.Error(), name) {
					t.Errorf("OpenDir = %v, want a *NotRegularError naming %s", err, name)
				}
			})
		}
	}
}

// TestVerifyPlantedFiles seeds a layout with a FIFO, a link to a file outside and a
// hard link where blobs belong, and special files in .ingest/: Verify reports the
// first two and the special partials as not-regular, never blocks, and takes a hard
// linked blob for what it is, a regular file.
func TestVerifyPlantedFiles(t *testing.T) {
	f := newVerifyFixture(t)
	victim, _ := newVictim(t)
	layer0 := f.img.layers[0].desc.Digest
	layer1 := f.img.layers[1].desc.Digest
	// A link to a copy of the right bytes outside the layout: content checks pass.
	outside := filepath.Join(t.TempDir(), "copy")
	os.WriteFile(outside, f.img.layers[0].data, 0o644)
	os.Remove(f.d.BlobPath(layer0))
	plant(t, "symlink", f.d.BlobPath(layer0), outside)
	os.Remove(f.d.BlobPath(layer1))
	plant(t, "fifo", f.d.BlobPath(layer1), "")
	// The config hard-linked elsewhere: legitimate (deduplicating tools do it).
	if err := os.Link(f.d.BlobPath(f.img.config.desc.Digest), filepath.Join(t.TempDir(), "dedup")); err != nil {
		t.Fatal(err)
	}
	plant(t, "fifo", filepath.Join(f.d.Path(), ingestDir, "sha256-"+strings.Repeat("a", 64)+partialSuffix), "")
	plant(t, "symlink", filepath.Join(f.d.Path(), ingestDir, "sha256-"+strings.Repeat("b", 64)+partialSuffix), victim)

	var rep *VerifyReport
	var err error
	noBlock(t, "Verify", func() { rep, err = Verify(t.Context(), f.d.Path(), nil) })
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range rep.Problems {
		lines = append(lines, p.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"not-regular " + layer0.String() + " blobs/sha256/" + layer0.Encoded() + ": a symbolic link to \"" + outside + "\"",
		"not-regular " + layer1.String() + " blobs/sha256/" + layer1.Encoded() + ": a FIFO",
		"not-regular .ingest/sha256-" + strings.Repeat("a", 64) + ".partial: a FIFO",
		"not-regular .ingest/sha256-" + strings.Repeat("b", 64) + ".partial: a symbolic link",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if rep.OK() {
		t.Error("a layout with a linked blob verifies OK")
	}
	if n := len(rep.Problems); n != 4 {
		t.Errorf("%d problems, want 4 (the hard link is fine):\n%s", n, got)
	}
}

// TestTagRemovesStaleIndexTemps leaves the temporary file of a Tag killed before its
// rename: the next Tag removes it.
func TestTagRemovesStaleIndexTemps(t *testing.T) {
	d := openDir(t, t.TempDir())
	stale := filepath.Join(d.Path(), "index.json.123456.tmp")
	if err := os.WriteFile(stale, []byte(`{"schemaVersion":2`), 0o644); err != nil {
		t.Fatal(err)
	}
	im := newTestImage(t, "app", "linux", "amd64", false)
	for _, b := range im.blobs() {
		writeBlob(t, d, b)
	}
	if err := d.Tag(t.Context(), mustParse(t, "a:b"), im.manifest.desc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale %s is still there (%v)", filepath.Base(stale), err)
	}
}

// TestLinkedBlobDirectory makes blobs/sha256 a link to a directory outside holding
// the right blobs: the layout does not take them for its own, and Verify reports them.
func TestLinkedBlobDirectory(t *testing.T) {
	f := newVerifyFixture(t)
	algDir := filepath.Join(f.d.Path(), blobsDir, "sha256")
	outside := filepath.Join(t.TempDir(), "sha256")
	if err := os.Rename(algDir, outside); err != nil {
		t.Fatal(err)
	}
	plant(t, "symlink", algDir, outside)
	if ok, _ := f.d.Exists(t.Context(), f.img.config.desc); ok {
		t.Error("Exists took a blob under a linked directory for the layout's")
	}
	rep, err := Verify(t.Context(), f.d.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Errorf("a layout whose blobs/sha256 is a link verifies OK: %v", rep.Problems)
	}
}
