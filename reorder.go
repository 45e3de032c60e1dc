package ocistream

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
)

// A destination that takes a blob's bytes only in order (a tar stream, an upload to a
// registry) still receives a large blob over several connections: the chunk at the
// write head goes straight through, the chunks after it wait in memory until the head
// reaches them. The parallel download starts a chunk only once the chunk Connections
// before it is in, and uses smaller chunks (reorderBudget), so what waits is bounded.

// reorderBudget bounds the bytes of chunks waiting for the write head of one blob:
// a parallel download into an ordered writer uses chunks of at most
// reorderBudget/Connections bytes.
const reorderBudget = 32 << 20

// orderedSettings returns set adjusted for a destination that takes bytes in order:
// chunks small enough that Connections of them fit in reorderBudget.
func orderedSettings(set ParallelDownload) ParallelDownload {
	set.ChunkSize = max(min(set.ChunkSize, reorderBudget/int64(set.Connections)), minChunkSize)
	return set
}

// errOrderedRange: a write below the bytes already written in order or past the end.
var errOrderedRange = errors.New("write outside the bytes still missing")

// orderedWriter is a [BlobWriterAt] over a writer that takes bytes in order.
type orderedWriter struct {
	w    io.Writer
	size int64

	mu   sync.Mutex
	pos  int64            // bytes written to w
	runs map[int64][]byte // bytes after pos, by the offset they start at
	ends map[int64]int64  // the start of each run, by the offset it ends at
	free [][]byte         // spent run buffers, for reuse
	cap  int              // the capacity of a run buffer
	err  error            // the first error of w: every later write fails with it
}

// newOrderedWriter returns an ordered writer at offset pos of a blob of size bytes,
// buffering at most chunkSize bytes per waiting run.
func newOrderedWriter(w io.Writer, pos, size, chunkSize int64) *orderedWriter {
	return &orderedWriter{w: w, size: size, pos: pos, runs: map[int64][]byte{}, ends: map[int64]int64{}, cap: int(chunkSize)}
}

// WriteAt writes p through when it starts at the write head, then whatever waited
// for it; otherwise it keeps a copy of p until the head reaches off.
func (o *orderedWriter) WriteAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.err != nil:
		return 0, o.err
	case off < o.pos || off+int64(len(p)) > o.size:
		return 0, fmt.Errorf("ordered write of %d bytes at %d, with %d of %d bytes written: %w", len(p), off, o.pos, o.size, errOrderedRange)
	case off > o.pos:
		o.keep(p, off)
		return len(p), nil
	}
	if err := o.write(p); err != nil {
		return 0, err
	}
	for {
		run, ok := o.runs[o.pos]
		if !ok {
			return len(p), nil
		}
		delete(o.runs, o.pos)
		delete(o.ends, o.pos+int64(len(run)))
		err := o.write(run)
		o.free = append(o.free, run[:0])
		if err != nil {
			return len(p), err // p went through; what waited did not
		}
	}
}

// write writes b at the head.
func (o *orderedWriter) write(b []byte) error {
	n, err := o.w.Write(b)
	o.pos += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	o.err = err
	return err
}

// keep copies p, which starts at off past the head, into the run that ends at off if
// it has room, or a new run.
func (o *orderedWriter) keep(p []byte, off int64) {
	for len(p) > 0 {
		start, ok := o.ends[off]
		run := o.runs[start]
		if !ok || len(run) == cap(run) {
			start, run = off, o.buffer()
		} else {
			delete(o.ends, off)
		}
		n := min(len(p), cap(run)-len(run))
		run = append(run, p[:n]...)
		o.runs[start] = run
		p, off = p[n:], off+int64(n)
		o.ends[off] = start
	}
}

// buffer returns an empty run buffer.
func (o *orderedWriter) buffer() []byte {
	if n := len(o.free); n > 0 {
		b := o.free[n-1]
		o.free = o.free[:n-1]
		return b
	}
	return make([]byte, 0, o.cap)
}

// complete reports whether every byte reached the writer.
func (o *orderedWriter) complete() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pos != o.size {
		return fmt.Errorf("ordered write: %d of %d bytes written, %d runs waiting", o.pos, o.size, len(o.runs))
	}
	return nil
}

// Missing returns the one range after the bytes written in order: what waited in
// memory is lost when a download stops.
func (o *orderedWriter) Missing() iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		o.mu.Lock()
		pos := o.pos
		o.mu.Unlock()
		if pos < o.size {
			yield(pos, o.size-pos)
		}
	}
}
