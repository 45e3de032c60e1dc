package layout

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sync"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// tarBufferSize is the write buffer between the tar stream and its io.Writer.
const tarBufferSize = 256 << 10

// epoch is the modification time of every entry, for reproducible archives.
var epoch = time.Unix(0, 0)

// A failed stream ends inside an entry: tar readers (GNU tar, Python's tarfile, Go's
// archive/tar, docker load) then fail with an unexpected end of archive, where an
// invalid block or a short one may be read as a clean end. If the failed blob's entry
// is incomplete the stream just stops there; if it is complete (all its bytes
// arrived, but wrong), it is padded and followed by the header of abortName, which
// claims abortSize bytes of which only abortMessage follows.
const (
	abortName    = "ocistream-aborted-do-not-use"
	abortSize    = 1<<33 - 1 // the largest size a ustar header holds
	abortMessage = "ocistream: tar stream aborted, do not use this archive\n"
)

// TarOptions tunes a [Tar]. The zero value (or nil) is the default.
type TarOptions struct {
	// Platform chooses the image that manifest.json describes when a tagged root is an
	// index: its manifest for this platform (os, architecture, and variant when set),
	// if the tar holds it. Without it, or when absent, the first image manifest of the
	// index (in index order) that the tar holds is used.
	Platform *ocitypes.Platform
}

// Tar writes an OCI image layout as one tar stream to an io.Writer, which needs not be
// seekable (a pipe or stdout will do). Blobs are entries blobs/<alg>/<encoded> written
// as they arrive, their header size taken from the descriptor, so no blob is ever held
// whole; Close then writes oci-layout, index.json, and docker's manifest.json and
// repositories, so that both OCI tools (skopeo, crane, containerd) and docker load or
// podman load accept the archive. Entries have mode 0644, owner 0 and time 0.
//
// Only one blob entry can be written at a time: OpenBlob waits until the previous
// writer is committed or closed. A blob whose size or digest is wrong fails the whole
// Tar: the stream ends inside an entry instead of with the tar trailer, and every
// later call returns that error, so that tar readers and loaders fail on the archive
// (tested with GNU tar, Python's tarfile and Go's archive/tar).
//
// A Tar keeps in memory only the manifests, indexes and image configs it wrote (each
// at most ocitypes.MaxManifestSize bytes), to write manifest.json. A Tar is safe for
// concurrent use by several goroutines.
type Tar struct {
	bw   *bufio.Writer
	tw   *tar.Writer
	opts TarOptions
	slot chan struct{} // holds a token while a blob writer is open

	mu       sync.Mutex
	err      error // sticky failure
	aborted  bool  // the stream was ended by abort
	closed   bool
	started  bool // blobs/ and blobs/sha256/ written
	dirs     map[digest.Algorithm]bool
	written  map[digest.Digest]int64
	meta     map[digest.Digest][]byte
	index    ocitypes.Index
	tags     []tagged
	finished bool // trailer written
}

// tagged is one Tag call of a Tar.
type tagged struct {
	name ref.Reference
	root ocitypes.Descriptor
}

// NewTar returns a Tar writing to w. opts may be nil. Nothing is written before the
// first OpenBlob or Close.
func NewTar(w io.Writer, opts *TarOptions) *Tar {
	bw := bufio.NewWriterSize(w, tarBufferSize)
	t := &Tar{
		bw:      bw,
		tw:      tar.NewWriter(bw),
		slot:    make(chan struct{}, 1),
		dirs:    map[digest.Algorithm]bool{},
		written: map[digest.Digest]int64{},
		meta:    map[digest.Digest][]byte{},
		index:   emptyIndex(),
	}
	if opts != nil {
		t.opts = *opts
	}
	return t
}

// OpenBlob prepares the tar entry of the blob desc. It waits (until ctx is done) for
// the writer of the previous blob to be committed or closed. It returns an error
// wrapping errdef.ErrAlreadyExists when the tar already holds desc, and the Tar's
// failure once it failed. The writer's Offset is always 0: a tar stream cannot resume.
// The entry's header is written with the first byte (or by Commit for an empty blob),
// so a writer closed before any Write leaves no trace and the blob can be opened again.
func (t *Tar) OpenBlob(ctx context.Context, desc ocitypes.Descriptor) (BlobWriter, error) {
	if err := t.usable(desc.Digest); err != nil {
		return nil, err
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	select {
	case t.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, errdef.Blob(desc.Digest, fmt.Errorf("open: %w", ctx.Err()))
	}
	if err := t.usable(desc.Digest); err != nil {
		<-t.slot
		return nil, err
	}
	w := &tarBlobWriter{t: t, desc: desc, h: desc.Digest.Algorithm().Hash()}
	if keepMeta(desc) {
		w.keep = bytes.NewBuffer(make([]byte, 0, desc.Size))
	}
	return w, nil
}

// usable returns why blob dg cannot be opened now, if it cannot.
func (t *Tar) usable(dg digest.Digest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.err != nil:
		return t.err
	case t.closed:
		return errdef.Blob(dg, fmt.Errorf("open: %w", os.ErrClosed))
	}
	if _, ok := t.written[dg]; ok {
		return errdef.Blob(dg, errdef.ErrAlreadyExists)
	}
	return nil
}

// keepMeta reports whether a blob is kept in memory for manifest.json: a manifest, an
// index or an image config of at most ocitypes.MaxManifestSize bytes.
func keepMeta(d ocitypes.Descriptor) bool {
	if d.Size > int64(ocitypes.MaxManifestSize) {
		return false
	}
	return ocitypes.IsManifest(d.MediaType) || ocitypes.IsIndex(d.MediaType) || isConfig(d.MediaType)
}

// isConfig reports whether mt is the media type of an image config.
func isConfig(mt string) bool {
	return mt == ocitypes.MediaTypeOCIConfig || mt == ocitypes.MediaTypeDockerConfig
}

// fail records the Tar's failure, the first one winning, and returns it.
func (t *Tar) fail(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
	return t.err
}

// failure returns the Tar's failure, nil while it has none.
func (t *Tar) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// abort ends the stream of a failed Tar, once, so that no tar reader takes it for a
// complete archive (see abortName). The caller holds the slot.
func (t *Tar) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil || t.aborted || t.finished {
		return
	}
	t.aborted = true
	// Flush fails when the current entry misses bytes: the stream then ends inside it.
	if t.tw.Flush() == nil {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: abortName, Size: abortSize, Mode: 0o644, ModTime: epoch, Format: tar.FormatUSTAR}
		if t.tw.WriteHeader(hdr) == nil {
			t.tw.Write([]byte(abortMessage))
		}
	}
	t.bw.Flush()
}

// startEntries writes the directory entries blobs/ and blobs/sha256/ once, and
// blobs/<alg>/ before the first blob of another algorithm. The caller holds the slot.
func (t *Tar) startEntries(alg digest.Algorithm) error {
	if !t.started {
		t.started = true
		t.dirs[digest.SHA256] = true
		if err := t.writeDir(blobsDir + "/"); err != nil {
			return err
		}
		if err := t.writeDir(blobsDir + "/" + string(digest.SHA256) + "/"); err != nil {
			return err
		}
	}
	if !t.dirs[alg] {
		t.dirs[alg] = true
		return t.writeDir(blobsDir + "/" + string(alg) + "/")
	}
	return nil
}

func (t *Tar) writeDir(name string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
}

// writeFile writes a whole small file entry. The caller holds the slot.
func (t *Tar) writeFile(name string, b []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644, ModTime: epoch}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := t.tw.Write(b)
	return err
}

// blobName returns the entry name of blob dg.
func blobName(dg digest.Digest) string {
	return path.Join(blobsDir, string(dg.Algorithm()), dg.Encoded())
}

// Tag records name as the image whose root manifest or index is root, which the tar
// must already hold (else the error wraps errdef.ErrBlobMissing). Close writes it to
// index.json as Dir.Tag does (the tag as AnnotationRefName, the full name as
// AnnotationImageName, an earlier Tag of the same name replaced) and to manifest.json
// and repositories. Tag writes nothing to the stream itself.
func (t *Tar) Tag(ctx context.Context, name ref.Reference, root ocitypes.Descriptor) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.err != nil:
		return t.err
	case t.closed:
		return fmt.Errorf("tag %s: %w", name, os.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	if err := checkRoot(root); err != nil {
		return fmt.Errorf("tag %s: %w", name, err)
	}
	if size, ok := t.written[root.Digest]; !ok || size != root.Size {
		return fmt.Errorf("tag %s: root %s: %w", name, root.Digest, errdef.ErrBlobMissing)
	}
	t.index.Manifests = mergeEntry(t.index.Manifests, indexEntry(name, root))
	for i, tg := range t.tags {
		if tg.name.String() == name.String() {
			t.tags = append(t.tags[:i], t.tags[i+1:]...)
			break
		}
	}
	t.tags = append(t.tags, tagged{name: name, root: root})
	return nil
}

// Close finishes the archive: it writes oci-layout, index.json, manifest.json,
// repositories (when a tagged image has a config with diff_ids) and the tar trailer,
// and flushes. It does not close the underlying io.Writer. A failed Tar returns its
// failure and writes no trailer; so does a Tar closed while a blob writer is still open
// (it fails with that). Closing again returns the same result.
func (t *Tar) Close() error {
	select {
	case t.slot <- struct{}{}:
	default:
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.closed {
			return t.err
		}
		t.closed = true
		if t.err == nil {
			t.err = errors.New("close tar: a blob writer is still open")
		}
		return t.err
	}
	defer func() { <-t.slot }()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.err
	}
	t.closed = true
	failed := t.err != nil
	t.mu.Unlock()
	if failed {
		t.abort()
		return t.failure()
	}
	if err := t.finish(); err != nil {
		t.fail(fmt.Errorf("write tar: %w", err))
		t.abort()
		return t.failure()
	}
	return nil
}

// finish writes the metadata entries and the trailer. The caller holds the slot.
func (t *Tar) finish() error {
	if err := t.startEntries(digest.SHA256); err != nil {
		return err
	}
	idx, err := encodeIndex(t.index)
	if err != nil {
		return err
	}
	manifest, repos, err := t.dockerArchive()
	if err != nil {
		return err
	}
	if err := t.writeFile(layoutFile, ociLayoutJSON); err != nil {
		return err
	}
	if err := t.writeFile(indexFile, idx); err != nil {
		return err
	}
	if err := t.writeFile(dockerManifestFile, manifest); err != nil {
		return err
	}
	if repos != nil {
		if err := t.writeFile(dockerRepositoriesFile, repos); err != nil {
			return err
		}
	}
	if err := t.tw.Close(); err != nil {
		return err
	}
	if err := t.bw.Flush(); err != nil {
		return err
	}
	t.mu.Lock()
	t.finished = true
	t.mu.Unlock()
	return nil
}

// tarBlobWriter writes one blob entry of a Tar, hashing as it goes.
type tarBlobWriter struct {
	t         *Tar
	desc      ocitypes.Descriptor
	h         hash.Hash
	keep      *bytes.Buffer // the bytes of a blob kept for manifest.json
	n         int64
	header    bool
	committed bool
	done      bool
}

// Offset returns 0: a tar entry is always written whole.
func (w *tarBlobWriter) Offset() int64 { return 0 }

// Write hashes p and writes it to the entry (the header first, on the first call).
// Bytes beyond the descriptor's size fail the Tar with an error wrapping
// errdef.ErrDigestMismatch.
func (w *tarBlobWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", os.ErrClosed))
	}
	if err := w.t.failure(); err != nil {
		return 0, err
	}
	if int64(len(p)) > w.desc.Size-w.n {
		return 0, w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("%w: more than %d bytes", errdef.ErrDigestMismatch, w.desc.Size)))
	}
	if err := w.writeHeader(); err != nil {
		return 0, err
	}
	w.h.Write(p)
	if w.keep != nil {
		w.keep.Write(p)
	}
	n, err := w.t.tw.Write(p)
	w.n += int64(n)
	if err != nil {
		return n, w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", err)))
	}
	return n, nil
}

func (w *tarBlobWriter) writeHeader() error {
	if w.header {
		return nil
	}
	w.header = true
	err := w.t.startEntries(w.desc.Digest.Algorithm())
	if err == nil {
		err = w.t.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     blobName(w.desc.Digest),
			Size:     w.desc.Size,
			Mode:     0o644,
			ModTime:  epoch,
		})
	}
	if err != nil {
		return w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", err)))
	}
	return nil
}

// Commit checks the size and digest of the bytes written and completes the entry. A
// short blob fails the Tar with an error wrapping io.ErrUnexpectedEOF, a wrong one with
// an error wrapping errdef.ErrDigestMismatch. Either way the writer is released.
func (w *tarBlobWriter) Commit() error {
	if w.done {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", os.ErrClosed))
	}
	defer w.release()
	if err := w.t.failure(); err != nil {
		return err
	}
	if err := w.writeHeader(); err != nil {
		return err
	}
	if w.n < w.desc.Size {
		return w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, w.n, w.desc.Size)))
	}
	if got := digest.NewDigest(w.desc.Digest.Algorithm(), w.h); got != w.desc.Digest {
		return w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("%w: got %s", errdef.ErrDigestMismatch, got)))
	}
	if err := w.t.tw.Flush(); err != nil {
		return w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", err)))
	}
	w.committed = true
	w.t.mu.Lock()
	w.t.written[w.desc.Digest] = w.desc.Size
	if w.keep != nil {
		w.t.meta[w.desc.Digest] = w.keep.Bytes()
	}
	w.t.mu.Unlock()
	return nil
}

// Close releases the writer. Closing a writer whose entry was started (some bytes
// written) but not committed fails the Tar with an error wrapping io.ErrUnexpectedEOF,
// since the entry can be neither completed nor taken back; a writer closed before its
// first Write leaves no trace. After Commit it does nothing.
func (w *tarBlobWriter) Close() error {
	if w.done {
		return nil
	}
	defer w.release()
	if w.header && !w.committed {
		return w.t.fail(errdef.Blob(w.desc.Digest, fmt.Errorf("%w: closed without commit after %d of %d bytes", io.ErrUnexpectedEOF, w.n, w.desc.Size)))
	}
	return nil
}

// release ends the writer: it aborts the stream if the Tar failed, then frees the slot
// for the next OpenBlob.
func (w *tarBlobWriter) release() {
	w.done = true
	w.keep = nil
	w.t.abort()
	<-w.t.slot
}

// Exists reports whether the stream already holds blob d (written earlier in this
// Tar). It costs a map look-up.
func (t *Tar) Exists(_ context.Context, d ocitypes.Descriptor) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	size, ok := t.written[d.Digest]
	return ok && size == d.Size, nil
}
