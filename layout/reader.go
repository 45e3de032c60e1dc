package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// Entry is an open file of a layout read with [OpenReader] or [OpenArchive]: a blob,
// index.json or oci-layout. It reads sequentially, seeks, and reads at offsets from
// several goroutines at once; Stat reports its size. For a layout directory it is the
// *os.File itself, so that an HTTP server copies it with sendfile. The caller must
// Close it.
type Entry interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (fs.FileInfo, error)
}

// store is what a read-only layout is stored in: a directory or a tar file. Names are
// slash-separated paths relative to the layout's root ("index.json",
// "blobs/sha256/<hex>").
type store interface {
	// open opens the regular file name. A name that is not there is an error
	// wrapping fs.ErrNotExist; one that is not a regular file (a symlink, a FIFO, a
	// directory) wraps errdef.ErrInvalidLayout.
	open(name string) (Entry, error)
	close() error
}

// Image is an entry of a layout's index.json: a root manifest or index and the names
// the layout gives it.
type Image struct {
	// Tag is the org.opencontainers.image.ref.name annotation ("latest"), "" when
	// absent. Skopeo's oci: and oci-archive: transports write only this one.
	Tag string
	// Name is the io.containerd.image.name annotation, the full name
	// ("docker.io/library/alpine:3.20"), "" when absent.
	Name string
	// Descriptor is the index.json entry, annotations included.
	Descriptor ocitypes.Descriptor
}

// String names the image as error messages list it: "3.20 (docker.io/library/alpine:3.20)",
// "latest", or its digest when it has no name.
func (im Image) String() string {
	switch {
	case im.Tag != "" && im.Name != "":
		return im.Tag + " (" + im.Name + ")"
	case im.Name != "":
		return im.Name
	case im.Tag != "":
		return im.Tag
	}
	return string(im.Descriptor.Digest)
}

// Reader is an OCI image layout opened read-only: a directory ([OpenReader]) or a tar
// file ([OpenArchive]). Nothing is ever created or modified. Index.json and oci-layout
// are checked when it is opened; blobs are opened on demand and not verified here (a
// [Source] verifies what it serves; see also [Verify]). A Reader is safe for concurrent
// use.
type Reader struct {
	path  string
	store store
	dir   bool

	mu   sync.Mutex // serialises Reload
	snap atomic.Pointer[readerSnapshot]
}

// readerSnapshot is one reading of index.json.
type readerSnapshot struct {
	index  ocitypes.Index
	images []Image
	stat   fs.FileInfo // of the index.json read; nil for an archive
}

// OpenReader opens the layout directory at path read-only. It checks oci-layout and
// index.json (errors wrap errdef.ErrInvalidLayout) and reads no blob. Every later read
// goes through an [os.Root] on path: no name leaves the directory, no symlink is
// followed (a blob that is a symlink is refused, as is anything but a regular file),
// and a FIFO planted as a blob cannot block a read. It holds one file descriptor until
// Close.
func OpenReader(path string) (*Reader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open layout %s: %w: not a directory", path, errdef.ErrInvalidLayout)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	r := &Reader{path: path, store: &dirStore{root: root}, dir: true}
	if err := r.load(); err != nil {
		root.Close()
		return nil, err
	}
	return r, nil
}

// load checks oci-layout and reads index.json into the first snapshot.
func (r *Reader) load() error {
	b, _, err := r.readSmall(layoutFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open layout %s: %w: no oci-layout file", r.path, errdef.ErrInvalidLayout)
	}
	if err != nil {
		return fmt.Errorf("open layout %s: %w", r.path, err)
	}
	if err := checkLayoutFile(b); err != nil {
		return fmt.Errorf("open layout %s: %w", r.path, err)
	}
	s, err := r.readIndex()
	if err != nil {
		return fmt.Errorf("open layout %s: %w", r.path, err)
	}
	r.snap.Store(s)
	return nil
}

// readSmall reads the whole of a metadata file (oci-layout, index.json), refusing one
// larger than ocitypes.MaxManifestSize.
func (r *Reader) readSmall(name string) ([]byte, fs.FileInfo, error) {
	e, err := r.store.open(name)
	if err != nil {
		return nil, nil, err
	}
	defer e.Close()
	fi, err := e.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() > ocitypes.MaxManifestSize {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes, more than %d", name, errdef.ErrSizeExceedsLimit, fi.Size(), ocitypes.MaxManifestSize)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(e, b); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, fi, nil
}

// readIndex reads and checks index.json.
func (r *Reader) readIndex() (*readerSnapshot, error) {
	b, fi, err := r.readSmall(indexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no index.json", errdef.ErrInvalidLayout)
	}
	if err != nil {
		return nil, err
	}
	idx, err := decodeIndex(b)
	if err != nil {
		return nil, err
	}
	images := make([]Image, len(idx.Manifests))
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return nil, fmt.Errorf("index.json: %w: manifests[%d]: %v", errdef.ErrInvalidLayout, i, err)
		}
		images[i] = Image{Tag: d.Annotations[AnnotationRefName], Name: d.Annotations[AnnotationImageName], Descriptor: d}
	}
	s := &readerSnapshot{index: idx, images: images}
	if r.dir {
		s.stat = fi
	}
	return s, nil
}

// Path returns the path the layout was opened from.
func (r *Reader) Path() string { return r.path }

// Index returns index.json as last read (see [Reader.Reload]). The caller must not
// modify it.
func (r *Reader) Index() ocitypes.Index { return r.snap.Load().index }

// Images returns the entries of index.json as last read, in order, with their names.
// The caller must not modify the slice.
func (r *Reader) Images() []Image { return r.snap.Load().images }

// Image selects one image of the layout by refName: an entry whose tag
// (org.opencontainers.image.ref.name) or full name (io.containerd.image.name, compared
// after normalising, so "alpine:3.20" matches "docker.io/library/alpine:3.20") is
// refName. An empty refName selects the only image of a layout that holds one. No
// match, or several that name different manifests, is an error listing the images
// the layout holds; no match wraps errdef.ErrNotFound.
func (r *Reader) Image(refName string) (Image, error) {
	images := r.Images()
	var found []Image
	if refName == "" {
		found = images
	} else {
		want := ""
		if n, err := ref.Parse(refName); err == nil {
			want = n.String()
		}
		for _, im := range images {
			if im.Tag == refName || im.Name == refName || (want != "" && im.Name != "" && normalName(im.Name) == want) {
				found = append(found, im)
			}
		}
	}
	distinct := found[:0:0]
	for _, im := range found {
		if !containsDigest(distinct, im.Descriptor.Digest) {
			distinct = append(distinct, im)
		}
	}
	switch {
	case len(distinct) == 1:
		return distinct[0], nil
	case len(images) == 0:
		return Image{}, fmt.Errorf("layout %s: %w: it holds no image", r.path, errdef.ErrNotFound)
	case refName == "":
		return Image{}, fmt.Errorf("layout %s holds %d images, name one: %s", r.path, len(images), listImages(images))
	case len(distinct) == 0:
		return Image{}, fmt.Errorf("layout %s: image %q %w; it holds %s", r.path, refName, errdef.ErrNotFound, listImages(images))
	}
	return Image{}, fmt.Errorf("layout %s: %q names %d different images: %s", r.path, refName, len(distinct), listImages(distinct))
}

// normalName returns the canonical form of a full image name, or "" when it does not
// parse.
func normalName(s string) string {
	n, err := ref.Parse(s)
	if err != nil {
		return ""
	}
	return n.String()
}

func containsDigest(images []Image, dg digest.Digest) bool {
	for _, im := range images {
		if im.Descriptor.Digest == dg {
			return true
		}
	}
	return false
}

// listImages prints images for an error message, at most ten of them.
func listImages(images []Image) string {
	const most = 10
	parts := make([]string, 0, min(len(images), most))
	for i, im := range images {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(images)-most))
			break
		}
		parts = append(parts, im.String())
	}
	return strings.Join(parts, ", ")
}

// Reload reads index.json again if it changed since it was last read (another
// modification time, size or file: writers replace it by a rename), and reports whether
// it did. It costs one lstat when nothing changed. A new index.json that does not parse
// is an error, and the previous reading stays in use. An archive never changes: Reload
// returns false.
func (r *Reader) Reload() (bool, error) {
	if !r.dir {
		return false, nil
	}
	root := r.store.(*dirStore).root
	if fi, err := root.Lstat(indexFile); err == nil && sameStat(r.snap.Load().stat, fi) {
		return false, nil // the common case, without the lock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if fi, err := root.Lstat(indexFile); err == nil && sameStat(old.stat, fi) {
		return false, nil // another Reload read it meanwhile
	}
	s, err := r.readIndex()
	if err != nil {
		return false, fmt.Errorf("reload layout %s: %w", r.path, err)
	}
	if sameStat(old.stat, s.stat) {
		return false, nil
	}
	r.snap.Store(s)
	return true, nil
}

// sameStat reports whether a and b describe the same, unchanged file.
func sameStat(a, b fs.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// OpenBlob opens the blob dg (blobs/<alg>/<encoded>). A digest that is not valid is
// refused before any file is touched. A blob not in the layout is an error wrapping
// errdef.ErrBlobMissing and errdef.ErrNotFound; one that is not a regular file wraps
// errdef.ErrInvalidLayout. The size is not checked against any descriptor: the
// caller compares Stat's size with what it expects.
func (r *Reader) OpenBlob(dg digest.Digest) (Entry, error) {
	if err := dg.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", dg, err)
	}
	e, err := r.store.open(blobName(dg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w (%w)", dg, errdef.ErrBlobMissing, errdef.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", dg, err)
	}
	return e, nil
}

// Close releases the layout's file descriptor. Entries already open stay readable.
func (r *Reader) Close() error { return r.store.close() }

// dirStore is a layout directory, every file opened through an os.Root.
type dirStore struct {
	root *os.Root
}

// open opens the regular file name without following a symlink in any of its
// components and without blocking on a FIFO: each component is checked with lstat,
// the file is opened with O_NONBLOCK, and the opened file must be the regular file
// that lstat saw (so a file swapped for a symlink in between is refused).
func (s *dirStore) open(name string) (Entry, error) {
	var fi fs.FileInfo
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		var err error
		fi, err = s.root.Lstat(name[:i])
		if err != nil {
			return nil, err
		}
		if i < len(name) && !fi.IsDir() {
			return nil, fmt.Errorf("%s: %w: %s is not a directory", name, errdef.ErrInvalidLayout, name[:i])
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file (%s)", name, errdef.ErrInvalidLayout, fileKind(fi.Mode()))
	}
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	got, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !got.Mode().IsRegular() || !os.SameFile(fi, got) {
		f.Close()
		return nil, fmt.Errorf("%s: %w: replaced while being opened", name, errdef.ErrInvalidLayout)
	}
	return f, nil
}

func (s *dirStore) close() error { return s.root.Close() }

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}
