package layout

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	"github.com/opencontainers/go-digest"
)

// readerFixture is a layout holding two tagged images, as a directory and as a tar.
type readerFixture struct {
	dir, tar string
	one, two testImage
}

func newReaderFixture(t *testing.T) readerFixture {
	t.Helper()
	f := readerFixture{
		dir: filepath.Join(t.TempDir(), "layout"),
		tar: filepath.Join(t.TempDir(), "layout.tar"),
		one: newTestImage(t, "one", "linux", "amd64", true),
		two: newTestImage(t, "two", "linux", "arm64", true),
	}
	d := openDir(t, f.dir)
	file, err := os.Create(f.tar)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tw := NewTar(file, nil)
	for _, dst := range []destination{d, tw} {
		for _, im := range []struct {
			img  testImage
			name string
		}{{f.one, "example.com/app:1"}, {f.two, "example.com/app:2"}} {
			for _, b := range im.img.blobs() {
				writeBlob(t, dst, b)
			}
			if err := dst.Tag(t.Context(), mustParse(t, im.name), im.img.manifest.desc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// openers opens a fixture both ways.
func (f readerFixture) openers() map[string]func() (*Reader, error) {
	return map[string]func() (*Reader, error){
		"dir": func() (*Reader, error) { return OpenReader(f.dir) },
		"tar": func() (*Reader, error) { return OpenArchive(f.tar) },
	}
}

func TestReaderImages(t *testing.T) {
	f := newReaderFixture(t)
	for kind, open := range f.openers() {
		t.Run(kind, func(t *testing.T) {
			r, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := len(r.Images()); got != 2 {
				t.Fatalf("Images() has %d entries, want 2", got)
			}
			for _, tt := range []struct {
				refName string
				want    digest.Digest
				err     string
			}{
				{refName: "1", want: f.one.manifest.desc.Digest},
				{refName: "example.com/app:2", want: f.two.manifest.desc.Digest},
				{refName: "example.com/app:1", want: f.one.manifest.desc.Digest},
				{refName: "", err: "holds 2 images, name one: 1 (example.com/app:1), 2 (example.com/app:2)"},
				{refName: "3", err: `image "3" not found; it holds 1 (example.com/app:1), 2 (example.com/app:2)`},
			} {
				im, err := r.Image(tt.refName)
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Errorf("Image(%q) = %v, want an error containing %q", tt.refName, err, tt.err)
					}
					continue
				}
				if err != nil || im.Descriptor.Digest != tt.want {
					t.Errorf("Image(%q) = %v, %v; want %s", tt.refName, im.Descriptor.Digest, err, tt.want)
				}
			}
			for _, b := range f.one.blobs() {
				e, err := r.OpenBlob(b.desc.Digest)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(e)
				e.Close()
				if err != nil || !bytes.Equal(got, b.data) {
					t.Errorf("blob %s: read %d bytes, %v; want its %d bytes", b.desc.Digest, len(got), err, len(b.data))
				}
			}
			_, err = r.OpenBlob(digest.FromString("absent"))
			if !errors.Is(err, errdef.ErrBlobMissing) || !errors.Is(err, errdef.ErrNotFound) {
				t.Errorf("OpenBlob(absent) = %v, want ErrBlobMissing and ErrNotFound", err)
			}
			if _, err := r.OpenBlob("sha256:../../index.json"); err == nil {
				t.Error("OpenBlob of an invalid digest succeeded")
			}
		})
	}
}

func TestOpenReaderHostile(t *testing.T) {
	for _, tt := range []struct {
		name  string
		plant func(t *testing.T, dir string, victim string) // victim: the path of a blob
		want  error
	}{
		{"symlink blob", func(t *testing.T, dir, victim string) {
			other := filepath.Join(t.TempDir(), "elsewhere")
			os.Rename(victim, other)
			if err := os.Symlink(other, victim); err != nil {
				t.Fatal(err)
			}
		}, errdef.ErrInvalidLayout},
		{"symlink inside the layout", func(t *testing.T, dir, victim string) {
			os.Rename(victim, filepath.Join(dir, "moved"))
			if err := os.Symlink("../../moved", victim); err != nil {
				t.Fatal(err)
			}
		}, errdef.ErrInvalidLayout},
		{"fifo blob", func(t *testing.T, dir, victim string) {
			os.Remove(victim)
			if err := mkfifo(victim); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}, errdef.ErrInvalidLayout},
		{"directory blob", func(t *testing.T, dir, victim string) {
			os.Remove(victim)
			os.Mkdir(victim, 0o755)
		}, errdef.ErrInvalidLayout},
		{"symlinked blobs/sha256", func(t *testing.T, dir, victim string) {
			sub := filepath.Dir(victim)
			other := filepath.Join(t.TempDir(), "sha256")
			if err := os.Rename(sub, other); err != nil {
				t.Fatal(err)
			}
			os.Symlink(other, sub)
		}, errdef.ErrInvalidLayout},
		{"missing blob", func(t *testing.T, dir, victim string) { os.Remove(victim) }, errdef.ErrBlobMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "l")
			im := newTestImage(t, "x", "linux", "amd64", true)
			d := openDir(t, dir)
			for _, b := range im.blobs() {
				writeBlob(t, d, b)
			}
			if err := d.Tag(t.Context(), mustParse(t, "example.com/x:1"), im.manifest.desc); err != nil {
				t.Fatal(err)
			}
			layer := im.layers[0].desc.Digest
			tt.plant(t, dir, d.BlobPath(layer))
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			e, err := r.OpenBlob(layer)
			if err == nil {
				e.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("OpenBlob = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenReaderNotALayout(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	badIndex := t.TempDir()
	os.WriteFile(filepath.Join(badIndex, layoutFile), ociLayoutJSON, 0o644)
	os.WriteFile(filepath.Join(badIndex, indexFile), []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:nothex","size":1}]}`), 0o644)
	linkedIndex := t.TempDir()
	os.WriteFile(filepath.Join(linkedIndex, layoutFile), ociLayoutJSON, 0o644)
	os.WriteFile(filepath.Join(t.TempDir(), "i"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
	os.Symlink("/etc/hostname", filepath.Join(linkedIndex, indexFile))
	for _, tt := range []struct {
		name, path, want string
	}{
		{"empty directory", empty, "no oci-layout file"},
		{"a file", file, "not a directory"},
		{"bad index", badIndex, "manifests[0]"},
		{"symlinked index", linkedIndex, "not a regular file (a symlink)"},
		{"absent", filepath.Join(empty, "nothing"), "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenReader(tt.path)
			if err == nil {
				r.Close()
				t.Fatal("OpenReader succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenReader = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestReaderReload(t *testing.T) {
	f := newReaderFixture(t)
	r, err := OpenReader(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("Reload() of an unchanged layout = %v, %v", changed, err)
	}
	d := openDir(t, f.dir)
	if err := d.Tag(t.Context(), mustParse(t, "example.com/app:3"), f.one.manifest.desc); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("Reload() after a Tag = %v, %v; want true", changed, err)
	}
	if _, err := r.Image("3"); err != nil {
		t.Errorf("Image(3) after Reload = %v", err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, indexFile), []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); changed || !errors.Is(err, errdef.ErrInvalidLayout) {
		t.Errorf("Reload() of a broken index.json = %v, %v; want ErrInvalidLayout", changed, err)
	}
	if len(r.Images()) != 3 {
		t.Errorf("after a failed Reload, %d images, want the 3 read before", len(r.Images()))
	}
}

// tarOf builds a tar of entries; an entry whose body is nil is a directory.
type tarFile struct {
	name string
	typ  byte
	body []byte
}

func tarOf(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: 0o644, Size: int64(len(f.body))}
		switch f.typ {
		case 0:
			h.Typeflag = tar.TypeReg
		case tar.TypeDir:
			h.Size = 0
		case tar.TypeSymlink:
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenArchiveHostile(t *testing.T) {
	index := []byte(`{"schemaVersion":2,"manifests":[]}`)
	blob := bytes.Repeat([]byte("blob"), 1000)
	blobName := "blobs/sha256/" + digest.FromBytes(blob).Encoded()
	base := []tarFile{{name: layoutFile, body: ociLayoutJSON}, {name: indexFile, body: index}}
	with := func(extra ...tarFile) []tarFile { return append(append([]tarFile{}, base...), extra...) }
	good := tarOf(t, with(tarFile{name: "blobs/", typ: tar.TypeDir}, tarFile{name: "./" + blobName, body: blob})...)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"dot-dot", tarOf(t, with(tarFile{name: "../evil", body: blob})...), `"../evil" is not a valid name`},
		{"dot-dot inside blobs", tarOf(t, with(tarFile{name: "blobs/sha256/../../x", body: blob})...), "is not a valid name"},
		{"absolute", tarOf(t, with(tarFile{name: "/etc/passwd", body: blob})...), "is not a valid name"},
		{"duplicate", tarOf(t, with(tarFile{name: blobName, body: blob}, tarFile{name: "./" + blobName, body: blob})...), "appears twice"},
		{"duplicate index", tarOf(t, with(tarFile{name: indexFile, body: index})...), "appears twice"},
		{"symlink", tarOf(t, with(tarFile{name: blobName, typ: tar.TypeSymlink})...), "is not a regular file"},
		{"outside blobs", tarOf(t, with(tarFile{name: "etc/passwd", body: blob})...), "is outside blobs/"},
		{"not a digest", tarOf(t, with(tarFile{name: "blobs/sha256/abc", body: blob})...), "is not named by a valid digest"},
		{"no index", tarOf(t, tarFile{name: layoutFile, body: ociLayoutJSON}), "no index.json"},
		{"no oci-layout", tarOf(t, tarFile{name: indexFile, body: index}), "no oci-layout file"},
		{"truncated in a blob", good[:len(good)-1024-1000], "runs past the end"},
		{"truncated at an entry", good[:len(good)-1024], "no end-of-archive marker"},
		{"not a tar", []byte("hello, this is not a tar file at all"), "read tar"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.tar")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := OpenArchive(p)
			if err == nil {
				r.Close()
				t.Fatal("OpenArchive succeeded")
			}
			if !errors.Is(err, errdef.ErrInvalidLayout) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenArchive = %v, want ErrInvalidLayout saying %q", err, tt.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "good.tar")
	os.WriteFile(p, good, 0o644)
	r, err := OpenArchive(p)
	if err != nil {
		t.Fatalf("OpenArchive(good) = %v", err)
	}
	defer r.Close()
	e, err := r.OpenBlob(digest.FromBytes(blob))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := e.Stat()
	if got, _ := io.ReadAll(e); !bytes.Equal(got, blob) || fi.Size() != int64(len(blob)) {
		t.Errorf("blob read back as %q of size %d", got, fi.Size())
	}
	if _, err := r.OpenBlob(digest.FromString("other")); !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errdef.ErrBlobMissing) {
		t.Errorf("OpenBlob(absent) = %v", err)
	}
}
