package layout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"strconv"
	"strings"

	"github.com/ocistream/ocistream/errdef"
)

// Positional writes: a blob downloaded as byte ranges over several connections at once
// is written at its offsets into the partial file. The writer still hashes the bytes
// in order: the contiguous prefix is hashed as it grows, the range at its head straight
// from the caller's buffer, ranges that arrived ahead of it read back from the file
// once the gap before them closes. Commit checks the digest as for a sequential write.
//
// The ranges held beyond the prefix are recorded in <partial>.ranges beside the partial
// file, so a killed download keeps them and the next one fetches only what is missing.

// rangesSuffix names the record of the ranges a positional download holds.
const rangesSuffix = ".ranges"

// rangesPersistStep is how many newly held bytes accumulate before the ranges record
// is rewritten (it is also written when the writer is closed).
const rangesPersistStep = 32 << 20

// extent is a half-open byte range [start, end) of a blob.
type extent struct{ start, end int64 }

// addExtent inserts [start, end) into the sorted, disjoint, non-adjacent list es,
// merging what it touches.
func addExtent(es []extent, start, end int64) []extent {
	if start >= end {
		return es
	}
	i := 0
	for i < len(es) && es[i].end < start {
		i++
	}
	j := i
	for j < len(es) && es[j].start <= end {
		start, end = min(start, es[j].start), max(end, es[j].end)
		j++
	}
	return append(es[:i], append([]extent{{start, end}}, es[j:]...)...)
}

// WriteAt writes p at byte off of the blob. It may be called from several goroutines
// at once for disjoint ranges; the bytes are hashed in order as the contiguous prefix
// from the start of the blob grows. Bytes beyond the descriptor's size are an error
// wrapping errdef.ErrDigestMismatch, as are bytes below the prefix already hashed. The
// first WriteAt switches the writer to positional mode: a later Write or ReadFrom
// continues sequentially at the prefix and drops the ranges held beyond it. Memory: at
// most one read-back buffer, the writer's own.
func (w *dirBlobWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := w.enterRanged(off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := w.f.WriteAt(p, off)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("write blob %s: %w", w.desc.Digest, err)
		}
		return n, w.err
	}
	w.extents = addExtent(w.extents, off, off+int64(n))
	w.received += int64(n)
	if !w.d.opts.NoSync && w.received-w.synced >= writebackStep {
		startWriteback(w.f, 0, 0)
		w.synced = w.received
	}
	if !w.hashing {
		w.hashing = true
		w.hashPrefix(p[:n], off)
		w.hashing = false
	}
	if w.err != nil {
		return n, w.err
	}
	if w.received-w.persisted >= rangesPersistStep {
		w.persisted = w.received
		if err := w.saveRanges(); err != nil {
			w.err = err
			return n, err
		}
	}
	return n, nil
}

// enterRanged checks [off, off+n) and, on the first positional write, flushes what a
// sequential write buffered and records that the partial file is written by ranges.
func (w *dirBlobWriter) enterRanged(off, n int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done:
		return fmt.Errorf("write blob %s: %w", w.desc.Digest, os.ErrClosed)
	case w.err != nil:
		return w.err
	case off < 0 || n > w.desc.Size-off:
		return w.tooLong()
	}
	if !w.ranged {
		if err := w.flush(); err != nil {
			return err
		}
		w.ranged, w.hashed, w.synced = true, w.held, 0
		if err := w.saveRanges(); err != nil {
			w.err = err
			return err
		}
	}
	if off < w.hashed {
		w.err = fmt.Errorf("blob %s: %w: bytes at %d written again below the verified prefix of %d", w.desc.Digest, errdef.ErrDigestMismatch, off, w.hashed)
		w.bad = true
		return w.err
	}
	return nil
}

// hashPrefix hashes the extents that continue the prefix, with w.mu held on entry and
// exit and released while hashing. p, written at off, is hashed from memory when it
// heads the prefix; the rest is read back from the file.
func (w *dirBlobWriter) hashPrefix(p []byte, off int64) {
	for len(w.extents) > 0 && w.extents[0].start == w.hashed {
		start, end := w.hashed, w.extents[0].end
		w.mu.Unlock()
		err := w.hashRange(p, off, start, end)
		w.mu.Lock()
		if err != nil {
			w.err = fmt.Errorf("blob %s: read back %d-%d: %w", w.desc.Digest, start, end, err)
			return
		}
		w.hashed = end
		if w.extents[0].end > end {
			w.extents[0].start = end // grew while it was hashed
		} else {
			w.extents = w.extents[1:]
		}
	}
}

// hashRange hashes [start, end): the part p covers from memory, the rest from the file.
func (w *dirBlobWriter) hashRange(p []byte, off, start, end int64) error {
	if off == start && len(p) > 0 {
		k := min(int64(len(p)), end-start)
		w.h.Write(p[:k])
		start += k
	}
	if start == end {
		return nil
	}
	if w.buf == nil {
		w.getBuffer()
	}
	n, err := io.CopyBuffer(onlyHash{w.h}, io.NewSectionReader(w.f, start, end-start), w.buf)
	if err == nil && n != end-start {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// onlyHash hides the ReaderFrom of the file section's destination so CopyBuffer uses
// the writer's buffer.
type onlyHash struct{ io.Writer }

// Missing returns the byte ranges of the blob the writer does not hold yet, as (offset,
// length) pairs in order: everything after the prefix for a sequential writer, the gaps
// between the held ranges for a positional one. It reads the state once, when ranged.
func (w *dirBlobWriter) Missing() iter.Seq2[int64, int64] {
	w.mu.Lock()
	prefix := w.held
	var es []extent
	if w.ranged {
		prefix = w.hashed
		es = append(es, w.extents...)
	}
	size := w.desc.Size
	w.mu.Unlock()
	return func(yield func(int64, int64) bool) {
		at := prefix
		for _, e := range es {
			if e.start > at && !yield(at, e.start-at) {
				return
			}
			at = max(at, e.end)
		}
		if at < size {
			yield(at, size-at)
		}
	}
}

// leaveRanged is the first sequential write after positional ones: the file is cut at
// the verified prefix, where the sequential bytes continue, and the ranges beyond it
// are dropped with their record.
func (w *dirBlobWriter) leaveRanged() error {
	if err := w.f.Truncate(w.hashed); err != nil {
		w.err = fmt.Errorf("write blob %s: %w", w.desc.Digest, err)
		return w.err
	}
	if _, err := w.f.Seek(w.hashed, io.SeekStart); err != nil {
		w.err = fmt.Errorf("write blob %s: %w", w.desc.Digest, err)
		return w.err
	}
	os.Remove(w.partial + rangesSuffix)
	w.ranged, w.extents = false, nil
	w.held = w.hashed
	w.flushed = w.held - w.offset
	w.synced = w.flushed
	return nil
}

// saveRanges replaces the record of the ranges held: the verified prefix and the
// ranges beyond it, one "start end" line each. It is written to a temporary file and
// renamed, so a crash leaves the old record or the new one. The record may claim
// bytes a crash of the machine lost; Commit's digest check refuses them then.
func (w *dirBlobWriter) saveRanges() error {
	var b bytes.Buffer
	b.WriteString("ranges v1\n")
	if w.hashed > 0 {
		fmt.Fprintf(&b, "%d %d\n", 0, w.hashed)
	}
	for _, e := range w.extents {
		fmt.Fprintf(&b, "%d %d\n", e.start, e.end)
	}
	path := w.partial + rangesSuffix
	if err := os.WriteFile(path+".tmp", b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write blob %s: record ranges: %w", w.desc.Digest, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("write blob %s: record ranges: %w", w.desc.Digest, err)
	}
	return nil
}

// loadRanges reads the record of a positional download whose partial file holds
// fileSize bytes. It returns ok false when there is none. A record that is malformed,
// or claims bytes beyond the blob or the file, is an error: the partial is not trusted.
func loadRanges(path string, size, fileSize int64) (prefix int64, es []extent, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != "ranges v1" {
		return 0, nil, false, fmt.Errorf("ranges record %s: unknown format", path)
	}
	last := int64(-1)
	for sc.Scan() {
		a, b, found := strings.Cut(sc.Text(), " ")
		start, err1 := strconv.ParseInt(a, 10, 64)
		end, err2 := strconv.ParseInt(b, 10, 64)
		if !found || err1 != nil || err2 != nil || start <= last || end <= start || end > size || end > fileSize {
			return 0, nil, false, fmt.Errorf("ranges record %s: bad line %q", path, sc.Text())
		}
		last = end
		if start == 0 {
			prefix = end
			continue
		}
		es = append(es, extent{start, end})
	}
	return prefix, es, true, nil
}
