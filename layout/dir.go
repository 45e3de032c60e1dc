package layout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

const (
	blobsDir      = "blobs"
	ingestDir     = ".ingest"
	indexFile     = "index.json"
	layoutFile    = "oci-layout"
	indexLockFile = ".index.lock"
	partialSuffix = ".partial"
	lockSuffix    = ".lock"

	// DefaultBufferSize is the write buffer of a directory blob writer: writes reach
	// the file in chunks of this size.
	DefaultBufferSize = 256 << 10
)

// DirOptions tunes a [Dir]. The zero value (or nil) is the safe default.
type DirOptions struct {
	// NoSync skips the fsync of each blob before its rename and of the directories
	// after it. Faster, but a power loss may then leave a truncated blob or index.json
	// under its final name. A crash of the process alone loses nothing either way.
	NoSync bool
	// BufferSize is the size of each blob writer's write buffer, DefaultBufferSize
	// when zero. A writer allocates at most min(BufferSize, blob size).
	BufferSize int
}

// Dir is an OCI image layout directory (image-spec image-layout.md) being written:
// oci-layout, index.json and blobs/<alg>/<encoded>. A blob reaches its final path only
// after its size and digest were verified (written to a partial file under .ingest/,
// fsynced, then renamed), index.json is replaced atomically, and a download interrupted
// by a crash or a signal is resumed from its partial file by the next OpenBlob of the
// same digest, in this process or another.
//
// A Dir is safe for concurrent use by several goroutines, and several processes may
// write into the same directory at once: blobs of the same digest and index.json
// updates are serialised by lock files.
type Dir struct {
	path   string
	opts   DirOptions
	closed atomic.Bool
	bufs   sync.Pool // *[]byte of opts.BufferSize
}

// OpenDir opens the image layout at path, creating it when path does not exist or is
// an empty directory: the directory, oci-layout ({"imageLayoutVersion":"1.0.0"}),
// blobs/ and an empty index.json. An existing layout is checked: oci-layout must say
// version 1.0.0 and index.json must parse as an image index, else the error wraps
// errdef.ErrInvalidLayout. So does a non-empty directory without an oci-layout file,
// which is refused rather than filled with blobs. OpenDir reads two small files and
// takes the index lock only when it creates index.json.
func OpenDir(path string, opts *DirOptions) (*Dir, error) {
	d := &Dir{path: path}
	if opts != nil {
		d.opts = *opts
	}
	if d.opts.BufferSize <= 0 {
		d.opts.BufferSize = DefaultBufferSize
	}
	d.bufs.New = func() any {
		b := make([]byte, d.opts.BufferSize)
		return &b
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("create layout: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("open layout: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("open layout %s: %w: not a directory", path, errdef.ErrInvalidLayout)
	}

	b, err := readRegular(filepath.Join(path, layoutFile), 4<<10)
	switch {
	case err == nil:
		if err := checkLayoutFile(b); err != nil {
			return nil, fmt.Errorf("open layout %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("open layout: %w", err)
		}
		created := false // by another writer, since the ReadFile above
		for _, e := range entries {
			if e.Name() == layoutFile {
				created = true
			} else if !ownName(e.Name()) {
				return nil, fmt.Errorf("open layout %s: %w: directory is not empty and has no oci-layout file", path, errdef.ErrInvalidLayout)
			}
		}
		if created {
			b, err := readRegular(filepath.Join(path, layoutFile), 4<<10)
			if err != nil {
				return nil, fmt.Errorf("open layout: %w", err)
			}
			if err := checkLayoutFile(b); err != nil {
				return nil, fmt.Errorf("open layout %s: %w", path, err)
			}
		} else if err := d.writeFileAtomic(layoutFile, ociLayoutJSON); err != nil {
			return nil, fmt.Errorf("create layout: %w", err)
		}
	default:
		return nil, fmt.Errorf("open layout: %w", err)
	}

	if err := ensureDir(filepath.Join(path, blobsDir)); err != nil {
		return nil, fmt.Errorf("create layout: %w", err)
	}
	b, err = readIndexFile(filepath.Join(path, indexFile))
	switch {
	case err == nil:
		if _, err := decodeIndex(b); err != nil {
			return nil, fmt.Errorf("open layout %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := d.createIndex(); err != nil {
			return nil, fmt.Errorf("create layout: %w", err)
		}
	default:
		return nil, fmt.Errorf("open layout: %w", err)
	}
	return d, nil
}

// createIndex writes an empty index.json unless another writer created one meanwhile.
func (d *Dir) createIndex() error {
	lock, err := acquireLock(context.Background(), filepath.Join(d.path, indexLockFile))
	if err != nil {
		return err
	}
	defer lock.release()
	d.removeStaleIndexTemps()
	if _, err := os.Lstat(filepath.Join(d.path, indexFile)); err == nil {
		return nil
	}
	b, err := encodeIndex(emptyIndex())
	if err != nil {
		return err
	}
	return d.writeFileAtomic(indexFile, b)
}

// Path returns the directory of the layout, as given to OpenDir.
func (d *Dir) Path() string { return d.path }

// Close marks the Dir closed: later OpenBlob and Tag calls fail. Writers already open
// stay usable until their own Commit or Close. Close holds no resources and never fails.
func (d *Dir) Close() error {
	d.closed.Store(true)
	return nil
}

// BlobPath returns the path of the blob dg inside the layout (blobs/<alg>/<encoded>),
// whether or not it exists. It returns "" for a digest that is not valid, so that no
// digest can name a path outside blobs/.
func (d *Dir) BlobPath(dg digest.Digest) string {
	if dg.Validate() != nil {
		return ""
	}
	return filepath.Join(d.path, blobsDir, string(dg.Algorithm()), dg.Encoded())
}

// partialPath returns the path of the partial download of dg, under .ingest/.
func (d *Dir) partialPath(dg digest.Digest) string {
	return filepath.Join(d.path, ingestDir, string(dg.Algorithm())+"-"+dg.Encoded()+partialSuffix)
}

// Index reads and parses index.json. Its cost is one small file read; it takes no lock,
// as index.json is only ever replaced whole by a rename.
func (d *Dir) Index() (ocitypes.Index, error) {
	b, err := readIndexFile(filepath.Join(d.path, indexFile))
	if err != nil {
		return ocitypes.Index{}, fmt.Errorf("read index.json: %w", err)
	}
	return decodeIndex(b)
}

// PartialDownloads returns the paths of the partial downloads left under .ingest/ by
// interrupted pulls, sorted. A pull of the same blob resumes from them; removing them
// only costs downloading those bytes again.
func (d *Dir) PartialDownloads() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(d.path, ingestDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list partial downloads: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), partialSuffix) {
			out = append(out, filepath.Join(d.path, ingestDir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Tag records name as the image whose root manifest or index is root, in index.json:
// an entry with the root descriptor, AnnotationRefName = name's tag (none when name has
// only a digest) and AnnotationImageName = name.String(). An entry with the same image
// name is replaced; entries of other images are kept. The root blob must already be in
// the layout (else the error wraps errdef.ErrBlobMissing). Tag reads and rewrites
// index.json under an exclusive lock file (.index.lock), so concurrent Tags, from this
// process or others, lose no entry; the new index.json is written to a temporary file,
// fsynced and renamed over the old one. Before that, Tag fsyncs the directories under
// blobs/, making the blobs committed since the last Tag durable (one fsync per
// directory, not one per blob).
func (d *Dir) Tag(ctx context.Context, name ref.Reference, root ocitypes.Descriptor) error {
	if d.closed.Load() {
		return fmt.Errorf("tag %s: %w", name, os.ErrClosed)
	}
	if err := checkRoot(root); err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	if !d.hasBlob(root.Digest, root.Size) {
		return fmt.Errorf("tag %s: root %s: %w", name, root.Digest, errdef.ErrBlobMissing)
	}
	if err := d.syncBlobDirs(); err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	lock, err := acquireLock(ctx, filepath.Join(d.path, indexLockFile))
	if err != nil {
		return fmt.Errorf("tag %s: lock index.json: %w", name, err)
	}
	defer lock.release()
	d.removeStaleIndexTemps()
	idx, err := d.Index()
	if err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	idx.Manifests = mergeEntry(idx.Manifests, indexEntry(name, root))
	b, err := encodeIndex(idx)
	if err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	if err := d.writeFileAtomic(indexFile, b); err != nil {
		return fmt.Errorf("tag %s: write index.json: %w", name, err)
	}
	return nil
}

// syncBlobDirs fsyncs the directories under blobs/, so that every blob renamed into
// them (by this process or another) survives a crash before index.json names it.
// Nothing with NoSync.
func (d *Dir) syncBlobDirs() error {
	if d.opts.NoSync {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(d.path, "blobs"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(d.path, "blobs", e.Name())
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// writeFileAtomic replaces the file name of the layout with b: it writes a temporary
// file name.<random>.tmp, fsyncs it, renames it over name and fsyncs the directory (the
// fsyncs are skipped with NoSync). Concurrent writers of the same name each use their
// own temporary file; the last rename wins.
func (d *Dir) writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(d.path, name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil && !d.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.path, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if !d.opts.NoSync {
		return syncDir(d.path)
	}
	return nil
}

// removeStaleIndexTemps removes the temporary files index.json.*.tmp that a writer
// killed between writing and renaming left behind. The caller holds the index lock,
// which every writer of index.json holds, so none of them is in use. Failures are
// ignored: the files only take space.
func (d *Dir) removeStaleIndexTemps() {
	stale, _ := filepath.Glob(filepath.Join(d.path, indexFile+".*.tmp"))
	for _, name := range stale {
		if fi, err := os.Lstat(name); err == nil && !fi.IsDir() {
			os.Remove(name)
		}
	}
}

// ownName reports whether a directory entry is one that a layout being created by
// another writer may hold before its oci-layout file appears.
func ownName(name string) bool {
	switch name {
	case blobsDir, ingestDir, indexFile, indexLockFile:
		return true
	}
	return strings.HasSuffix(name, ".tmp") &&
		(strings.HasPrefix(name, layoutFile+".") || strings.HasPrefix(name, indexFile+"."))
}

// hasBlob reports whether blobs/ holds a regular file for dg with the given size. A
// symbolic link there is not a blob (a pull replaces it with the verified file), nor
// is a file under a blobs/ or blobs/<alg>/ that is a link to a directory elsewhere.
func (d *Dir) hasBlob(dg digest.Digest, size int64) bool {
	p := d.BlobPath(dg)
	if p == "" || !realDir(filepath.Dir(p)) || !realDir(filepath.Dir(filepath.Dir(p))) {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// realDir reports whether path is a directory, not a link to one.
func realDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}

// Exists reports whether blobs/ holds blob d complete: a regular file of d's size (its
// digest is not re-read; see [Verify]). It costs one stat.
func (d *Dir) Exists(_ context.Context, desc ocitypes.Descriptor) (bool, error) {
	if d.closed.Load() {
		return false, fmt.Errorf("blob %s: %w", desc.Digest, os.ErrClosed)
	}
	return d.hasBlob(desc.Digest, desc.Size), nil
}
