package layout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// indexNames returns the AnnotationImageName of each index.json entry, in order.
func indexNames(t testing.TB, d *Dir) []string {
	t.Helper()
	idx, err := d.Index()
	if err != nil {
		t.Fatalf("Index() = %v", err)
	}
	var names []string
	for _, m := range idx.Manifests {
		names = append(names, m.Annotations[AnnotationImageName])
	}
	return names
}

func TestDirTag(t *testing.T) {
	d := openDir(t, t.TempDir())
	a := newTestImage(t, "a", "linux", "amd64", false)
	b := newTestImage(t, "b", "linux", "amd64", false)
	c := newTestImage(t, "c", "linux", "arm64", false)
	idx := newTestIndex(t, b, c)
	for _, im := range []testImage{a, b, c} {
		for _, blob := range im.blobs() {
			writeBlob(t, d, blob)
		}
	}
	writeBlob(t, d, idx)

	steps := []struct {
		name      string
		root      ocitypes.Descriptor
		wantNames []string
		wantTag   string
	}{
		{"ubuntu:latest", a.manifest.desc, []string{"docker.io/library/ubuntu:latest"}, "latest"},
		{"ghcr.io/org/app:v1", idx.desc, []string{"docker.io/library/ubuntu:latest", "ghcr.io/org/app:v1"}, "v1"},
		{"ubuntu@" + a.manifest.desc.Digest.String(), a.manifest.desc, []string{"docker.io/library/ubuntu:latest", "ghcr.io/org/app:v1", "docker.io/library/ubuntu@" + a.manifest.desc.Digest.String()}, ""},
		// Re-pulling a tag replaces its entry in place.
		{"ubuntu:latest", b.manifest.desc, []string{"docker.io/library/ubuntu:latest", "ghcr.io/org/app:v1", "docker.io/library/ubuntu@" + a.manifest.desc.Digest.String()}, "latest"},
	}
	for _, s := range steps {
		name := mustParse(t, s.name)
		if err := d.Tag(t.Context(), name, s.root); err != nil {
			t.Fatalf("Tag(%s) = %v", s.name, err)
		}
		if got := indexNames(t, d); !slices.Equal(got, s.wantNames) {
			t.Errorf("after Tag(%s): names = %q, want %q", s.name, got, s.wantNames)
		}
		ix, _ := d.Index()
		for _, m := range ix.Manifests {
			if m.Annotations[AnnotationImageName] != name.String() {
				continue
			}
			if m.Digest != s.root.Digest || m.MediaType != s.root.MediaType || m.Size != s.root.Size {
				t.Errorf("entry of %s = %+v, want root %+v", s.name, m, s.root)
			}
			tag, ok := m.Annotations[AnnotationRefName]
			if tag != s.wantTag || ok != (s.wantTag != "") {
				t.Errorf("entry of %s: ref.name = %q (present %v), want %q", s.name, tag, ok, s.wantTag)
			}
		}
	}
	got, err := os.ReadFile(filepath.Join(d.Path(), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "dir-index.json", got)
	if tmp, _ := filepath.Glob(filepath.Join(d.Path(), "*.tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %q", tmp)
	}
	if fi, err := os.Stat(filepath.Join(d.Path(), "index.json")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("index.json mode = %v, %v; want 0644", fi.Mode(), err)
	}
}

func TestDirTagErrors(t *testing.T) {
	d := openDir(t, t.TempDir())
	a := newTestImage(t, "a", "linux", "amd64", false)
	writeBlob(t, d, a.layers[0])
	name := mustParse(t, "ubuntu:latest")
	tests := []struct {
		name string
		root ocitypes.Descriptor
		want error
	}{
		{"root missing", a.manifest.desc, errdef.ErrBlobMissing},
		{"root is a layer", a.layers[0].desc, errdef.ErrInvalidManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.Tag(t.Context(), name, tt.root); !errors.Is(err, tt.want) {
				t.Errorf("Tag() = %v, want %v", err, tt.want)
			}
		})
	}
	if got := indexNames(t, d); len(got) != 0 {
		t.Errorf("index names = %q, want none", got)
	}
}

func TestDirTagConcurrent(t *testing.T) {
	path := t.TempDir()
	d1, d2 := openDir(t, path), openDir(t, path)
	a := newTestImage(t, "a", "linux", "amd64", false)
	writeBlob(t, d1, a.manifest)
	var want []string
	var wg sync.WaitGroup
	for i := range 8 {
		for j := range 4 {
			want = append(want, fmt.Sprintf("docker.io/library/img%d:t%d", i, j))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := d1
			if i%2 == 1 {
				d = d2
			}
			for j := range 4 {
				if err := d.Tag(t.Context(), mustParse(t, fmt.Sprintf("img%d:t%d", i, j)), a.manifest.desc); err != nil {
					t.Errorf("Tag() = %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got := indexNames(t, d1)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("index has %d names, want %d:\n%q", len(got), len(want), got)
	}
}

// TestDirTagProcesses tags from two other processes at once, into one layout.
func TestDirTagProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := t.TempDir()
	d := openDir(t, path)
	a := newTestImage(t, "a", "linux", "amd64", false)
	writeBlob(t, d, a.manifest)
	var cmds []*exec.Cmd
	for p := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "LAYOUT_HELPER_DIR="+path, "LAYOUT_HELPER_ID="+strconv.Itoa(p),
			"LAYOUT_HELPER_ROOT="+string(a.manifest.data))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i := range 10 {
		if err := d.Tag(t.Context(), mustParse(t, fmt.Sprintf("main:t%d", i)), a.manifest.desc); err != nil {
			t.Errorf("Tag() = %v", err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	if got := indexNames(t, d); len(got) != 30 {
		t.Errorf("index has %d names, want 30: %q", len(got), got)
	}
}

// TestDirBlobProcesses has another process hold the blob a pull wants: the pull waits
// for it, then finds the blob committed.
func TestDirBlobProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := openDir(t, t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "LAYOUT_HELPER_DIR="+d.Path(), "LAYOUT_HELPER_MODE=blob")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	// The helper says "holding" once it has the blob open and half written.
	buf := make([]byte, 7)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "holding" {
		t.Fatalf("helper said %q, %v", buf, err)
	}
	b := helperBlob()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.OpenBlob(ctx, b.desc); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("OpenBlob while another process holds it = %v, want %v", err, context.DeadlineExceeded)
	}
	stdin.Close() // the helper writes the rest and commits
	if _, err := d.OpenBlob(t.Context(), b.desc); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("OpenBlob after the other process committed = %v, want %v", err, errdef.ErrAlreadyExists)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper process: %v", err)
	}
	if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, b.data) {
		t.Errorf("blob differs")
	}
}

func helperBlob() testBlob {
	return newBlob("application/octet-stream", bytes.Repeat([]byte("held by another process\n"), 100))
}

// TestHelperProcess is the body of the processes TestDirTagProcesses and
// TestDirBlobProcesses start.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("LAYOUT_HELPER_DIR")
	if path == "" {
		return
	}
	d, err := OpenDir(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("LAYOUT_HELPER_MODE") == "blob" {
		b := helperBlob()
		w, err := d.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b.data[:len(b.data)/2])
		os.Stdout.WriteString("holding")
		io.Copy(io.Discard, os.Stdin)
		w.Write(b.data[len(b.data)/2:])
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		return
	}
	root := newBlob(ocitypes.MediaTypeOCIManifest, []byte(os.Getenv("LAYOUT_HELPER_ROOT"))).desc
	for i := range 10 {
		name := mustParse(t, fmt.Sprintf("proc%s:t%d", os.Getenv("LAYOUT_HELPER_ID"), i))
		if err := d.Tag(t.Context(), name, root); err != nil {
			t.Fatal(err)
		}
	}
}
