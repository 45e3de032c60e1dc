package layout

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

// BlobWriter receives the bytes of one blob. It is an alias of the same interface type
// as ocistream.BlobWriter, so that Dir and Tar implement ocistream.Destination without
// this package importing the root one. Write is called from one goroutine at a time.
type BlobWriter = interface {
	io.Writer
	// Offset is the number of bytes the writer held before the first Write: the
	// length of a partial download being resumed, zero otherwise.
	Offset() int64
	// Commit checks that the bytes held make exactly the descriptor's size and digest
	// and publishes the blob.
	Commit() error
	// Close releases the writer. After Commit it does nothing.
	Close() error
}

// minBufferSize is the smallest buffer a blob writer allocates, even for a tiny blob.
const minBufferSize = 4 << 10

// OpenBlob prepares to receive the blob desc into the layout.
//
// When blobs/<alg>/<encoded> already exists with desc's size, it returns an error
// wrapping errdef.ErrAlreadyExists and nothing needs downloading. That check compares
// sizes only; reading the blob back to check its digest is the job of a verification
// pass, not of every pull.
//
// Otherwise the bytes go to .ingest/<alg>-<encoded>.partial, outside blobs/, and are
// hashed as they are written. When that partial file already exists (an interrupted
// earlier pull), OpenBlob hashes its bytes again and returns a writer whose Offset is
// its length, positioned at its end: the caller writes the rest of the blob. This
// re-hash reads the partial file once; a partial longer than desc.Size is discarded.
//
// Two writers of the same digest never share the partial file: the second OpenBlob, in
// this process or another, waits (until ctx is done) for the first writer's Commit or
// Close, then returns ErrAlreadyExists if the first committed, or resumes what it
// left. The writer holds one open file, a lock file and a write buffer of
// min(BufferSize, desc.Size) bytes until Commit or Close.
func (d *Dir) OpenBlob(ctx context.Context, desc ocitypes.Descriptor) (BlobWriter, error) {
	if d.closed.Load() {
		return nil, errdef.Blob(desc.Digest, fmt.Errorf("open: %w", os.ErrClosed))
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	if d.hasBlob(desc.Digest, desc.Size) {
		return nil, errdef.Blob(desc.Digest, errdef.ErrAlreadyExists)
	}
	if err := ensureDir(filepath.Join(d.path, ingestDir)); err != nil {
		return nil, errdef.Blob(desc.Digest, err)
	}
	partial := d.partialPath(desc.Digest)
	lock, err := acquireLock(ctx, partial+lockSuffix)
	if err != nil {
		return nil, errdef.Blob(desc.Digest, err)
	}
	if d.hasBlob(desc.Digest, desc.Size) {
		lock.release()
		return nil, errdef.Blob(desc.Digest, errdef.ErrAlreadyExists)
	}
	w, err := d.resume(desc, partial, lock)
	if err != nil {
		lock.release()
		return nil, errdef.Blob(desc.Digest, err)
	}
	return w, nil
}

// resume opens the partial file of desc (held under lock), hashes what it holds and
// returns a writer positioned at its end.
func (d *Dir) resume(desc ocitypes.Descriptor, partial string, lock *fileLock) (*dirBlobWriter, error) {
	// Never through a symbolic link, a FIFO or a hard link planted in .ingest/.
	f, err := openRegular(partial, os.O_RDWR|os.O_CREATE, 0o644, true)
	if err != nil {
		return nil, err
	}
	w := &dirBlobWriter{d: d, desc: desc, lock: lock, f: f, partial: partial, h: desc.Digest.Algorithm().Hash()}
	fail := func(err error) (*dirBlobWriter, error) {
		f.Close()
		w.putBuffer()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	held := fi.Size()
	prefix, extents, ranged, err := loadRanges(partial+rangesSuffix, desc.Size, held)
	if err != nil {
		held = desc.Size + 1 // not trusted: start over
	} else if ranged {
		held = prefix
	}
	if held > desc.Size {
		if err := f.Truncate(0); err != nil {
			return fail(err)
		}
		os.Remove(partial + rangesSuffix)
		held, ranged, extents = 0, false, nil
	}
	// A blob that cannot fit fails now, not when the disk is full.
	if err := checkFreeSpace(filepath.Dir(partial), desc.Size-held); err != nil {
		if held == 0 {
			os.Remove(partial) // nothing to resume: leave no empty file (the lock is held)
		}
		return fail(err)
	}
	w.getBuffer()
	if held > 0 {
		n, err := io.CopyBuffer(w.h, io.NewSectionReader(f, 0, held), w.buf)
		if err != nil {
			return fail(fmt.Errorf("read partial download: %w", err))
		}
		if n != held {
			return fail(fmt.Errorf("read partial download: %w", io.ErrUnexpectedEOF))
		}
	}
	if _, err := f.Seek(held, io.SeekStart); err != nil {
		return fail(err)
	}
	w.offset, w.held = held, held
	w.ranged, w.hashed, w.extents = ranged, held, extents
	return w, nil
}

// dirBlobWriter writes one blob of a Dir: buffered writes to the partial file, hashed in
// the same pass, renamed into blobs/ by Commit.
type dirBlobWriter struct {
	d       *Dir
	desc    ocitypes.Descriptor
	lock    *fileLock
	f       *os.File
	partial string
	h       hash.Hash
	buf     []byte // write buffer; buf[:n] is pending
	n       int
	pooled  bool  // buf came from d.bufs
	offset  int64 // bytes held at open
	held    int64 // bytes held now, buffered ones included
	flushed int64 // bytes written to the file
	synced  int64 // bytes whose writeback has been started
	err     error // sticky: a write failed or the bytes are known wrong
	bad     bool  // err says the bytes are wrong: the partial file goes
	done    bool

	// Positional writes (dirblob_at.go); mu guards these and err, bad, done once
	// WriteAt is in use.
	mu        sync.Mutex
	ranged    bool     // the partial file is written by ranges, recorded beside it
	hashed    int64    // the verified prefix: bytes [0, hashed) are hashed
	extents   []extent // ranges held beyond the prefix, sorted, disjoint
	hashing   bool     // a WriteAt is hashing the prefix
	received  int64    // bytes written by WriteAt
	persisted int64    // received when the ranges record was last written
}

// getBuffer allocates the write buffer: a pooled one of BufferSize for a blob at least
// that large, else one just large enough.
func (w *dirBlobWriter) getBuffer() {
	size := w.d.opts.BufferSize
	if w.desc.Size >= int64(size) {
		w.buf = *(w.d.bufs.Get().(*[]byte))
		w.pooled = true
		return
	}
	w.buf = make([]byte, max(int(w.desc.Size), minBufferSize))
}

func (w *dirBlobWriter) putBuffer() {
	if w.pooled {
		b := w.buf
		w.d.bufs.Put(&b)
	}
	w.buf, w.pooled = nil, false
}

// Offset returns the length of the partial download this writer resumed, 0 for a new one.
func (w *dirBlobWriter) Offset() int64 { return w.offset }

// tooLong marks the writer failed: more bytes than the descriptor's size arrived.
func (w *dirBlobWriter) tooLong() error {
	w.err = errdef.Blob(w.desc.Digest, fmt.Errorf("%w: more than %d bytes", errdef.ErrDigestMismatch, w.desc.Size))
	w.bad = true
	return w.err
}

// Write hashes p and appends it to the partial file through the write buffer. Bytes
// beyond the descriptor's size are an error wrapping errdef.ErrDigestMismatch.
func (w *dirBlobWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", os.ErrClosed))
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.ranged {
		if err := w.leaveRanged(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > w.desc.Size-w.held {
		return 0, w.tooLong()
	}
	w.h.Write(p)
	w.held += int64(len(p))
	if w.n+len(p) > len(w.buf) {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	if len(p) >= len(w.buf) {
		if err := w.writeFile(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

// ReadFrom reads r to its end straight into the write buffer, hashing and writing as
// Write does, without the intermediate copy of io.Copy. A read error is returned as is
// and leaves the writer usable (Close keeps what was written for a resume).
func (w *dirBlobWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.done {
		return 0, errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", os.ErrClosed))
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.ranged {
		if err := w.leaveRanged(); err != nil {
			return 0, err
		}
	}
	var total int64
	for {
		if w.n == len(w.buf) {
			if err := w.flush(); err != nil {
				return total, err
			}
		}
		// Read at most one byte past the expected end, to notice a blob too long.
		space := w.buf[w.n:]
		if rest := w.desc.Size - w.held + 1; int64(len(space)) > rest {
			space = space[:rest]
		}
		k, err := r.Read(space)
		if k > 0 {
			if int64(k) > w.desc.Size-w.held {
				return total, w.tooLong()
			}
			w.h.Write(space[:k])
			w.n += k
			w.held += int64(k)
			total += int64(k)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writebackStep is how many written bytes accumulate before their writeback to disk is
// started, when the Dir syncs.
const writebackStep = 8 << 20

// flush writes the buffered bytes to the partial file.
func (w *dirBlobWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	return w.writeFile(w.buf[:w.n])
}

// writeFile appends p to the partial file and, every writebackStep bytes, starts their
// writeback so that Commit's fsync has little left to wait for.
func (w *dirBlobWriter) writeFile(p []byte) error {
	n, err := w.f.Write(p)
	w.n = 0
	w.flushed += int64(n)
	if err != nil {
		w.err = errdef.Blob(w.desc.Digest, fmt.Errorf("write: %w", err))
		return w.err
	}
	if !w.d.opts.NoSync && w.flushed-w.synced >= writebackStep {
		startWriteback(w.f, w.offset+w.synced, w.flushed-w.synced)
		w.synced = w.flushed
	}
	return nil
}

// Commit checks the size and digest of the bytes held and publishes the blob: it
// fsyncs the partial file and renames it to blobs/<alg>/<encoded> (no fsync with
// NoSync); Tag makes the directory entry durable. A wrong digest, or more bytes than the size,
// deletes the partial file and returns an error wrapping errdef.ErrDigestMismatch. A
// short blob returns an error wrapping io.ErrUnexpectedEOF and keeps the partial file,
// whose bytes a later OpenBlob resumes from (and verifies at its Commit). Either way
// the writer is released.
func (w *dirBlobWriter) Commit() error {
	if w.done {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", os.ErrClosed))
	}
	err := w.commit()
	w.done = true
	w.putBuffer()
	if w.f != nil {
		w.f.Close()
	}
	if w.bad {
		os.Remove(w.partial)
		os.Remove(w.partial + rangesSuffix)
	}
	w.lock.release()
	return err
}

func (w *dirBlobWriter) commit() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if w.ranged {
		w.held = w.hashed
	}
	if w.held < w.desc.Size {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, w.held, w.desc.Size))
	}
	got := digest.NewDigest(w.desc.Digest.Algorithm(), w.h)
	if got != w.desc.Digest {
		w.bad = true
		return errdef.Blob(w.desc.Digest, fmt.Errorf("%w: got %s", errdef.ErrDigestMismatch, got))
	}
	var err error
	if !w.d.opts.NoSync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", err))
	}
	if w.ranged {
		// Before the rename: a crash between the two leaves a whole partial file,
		// which the next OpenBlob hashes and commits.
		os.Remove(w.partial + rangesSuffix)
	}
	final := w.d.BlobPath(w.desc.Digest)
	if err := ensureDir(filepath.Join(w.d.path, blobsDir)); err != nil {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", err))
	}
	if err := ensureDir(filepath.Dir(final)); err != nil {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", err))
	}
	if err := os.Rename(w.partial, final); err != nil {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("commit: %w", err))
	}
	// The directory entry is made durable by the next Tag, which syncs blobs/ before
	// index.json can name the blob: one fsync per image instead of one per blob. A
	// crash before that loses at most the entry of a blob nothing refers to yet.
	return nil
}

// Close releases the writer. Without a Commit it keeps the partial file, flushed, for a
// later OpenBlob to resume, unless the bytes are known wrong (more than the size), in
// which case it deletes it. After Commit it does nothing.
func (w *dirBlobWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	var err error
	if w.err == nil && !w.ranged {
		err = w.flush()
	}
	if w.ranged && !w.bad {
		// Keep what the ranges hold for the next download (a write error leaves the
		// record as it was: it claims only bytes that were written).
		if serr := w.saveRanges(); err == nil {
			err = serr
		}
	}
	w.putBuffer()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if w.bad {
		os.Remove(w.partial)
		os.Remove(w.partial + rangesSuffix)
	}
	if lerr := w.lock.release(); err == nil {
		err = lerr
	}
	if err != nil && !errors.Is(err, w.err) {
		return errdef.Blob(w.desc.Digest, fmt.Errorf("close: %w", err))
	}
	return err
}
