package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// Parallel download of one blob: a large blob is fetched as byte ranges (chunks) over
// several connections at once and written at their offsets into the destination,
// whose writer hashes the bytes in order as the contiguous prefix grows and checks the
// digest at Commit. A bounded window of chunks is in flight; memory is one copy buffer
// per connection, whatever the blob's size.

// BlobWriterAt is what a parallel download writes into: a destination whose writers
// implement it (layout.Dir's do) receives the chunks of a large blob at their offsets,
// straight into its partial file. A destination that takes bytes only in order (a tar
// stream, an upload) receives them through a bounded reorder window instead (see
// reorder.go).
type BlobWriterAt interface {
	// WriteAt writes p at byte off of the blob. It is called from several goroutines
	// at once, for disjoint ranges, never below the bytes already written in order.
	// The writer hashes the bytes in order, so that Commit still verifies the digest.
	WriteAt(p []byte, off int64) (int, error)
	// Missing returns the (offset, length) ranges of the blob the writer does not
	// hold yet, in order: a download interrupted earlier fetches only these.
	Missing() iter.Seq2[int64, int64]
}

// ParallelDownload says how one large blob is fetched over several connections. Zero
// fields take the values of [DefaultParallelDownload].
type ParallelDownload struct {
	// Connections is the number of byte ranges of one blob fetched at once, each on
	// its own connection: the default transport fetches chunks over HTTP/1.1 even from
	// a server that speaks HTTP/2, which would carry them all on one connection (a
	// transport given by [WithTransport] decides for itself). A pull runs at most twice
	// as many at once, shared by its blobs. 1 turns parallel download off: every blob
	// is one stream.
	Connections int
	// ChunkSize is the length of each range request.
	ChunkSize int64
	// Threshold is the least number of missing bytes for which a blob is fetched in
	// ranges; a smaller blob is one stream.
	Threshold int64
	// FastStream is a rate in bytes per second: the first chunk is requested with the
	// rest of the blob, and when its first 2 MiB arrive at least this fast (the link is
	// not what bounds the download, as on a local network) the rest follows on that
	// one connection instead of being split; otherwise that request ends with the
	// first chunk, and the other connections start at once. Negative always splits.
	FastStream int64
}

// DefaultParallelDownload is what a client uses unless told otherwise
// ([WithParallelDownload], [PullOptions].Parallel): 8 connections per blob, 8 MiB
// chunks, for blobs of 32 MiB or more. A pull runs at most twice Connections chunk
// connections at once (16), shared by its blobs: one large layer gets 8, four share
// 16. Measured through a link paced at 32 MiB/s per connection with 40 ms per request
// (bench/run.sh -wan): a one-layer image of 256 MiB in about a fifth of one stream's
// time; more connections per pull cost memory (a buffer each) and no speed on a
// machine whose CPU and disk are then the bound.
//
// The first 2 MiB decide: when they arrive at 64 MiB/s or more, the blob is one stream
// (FastStream). On loopback, splitting a blob that one connection already delivers at
// disk speed doubled the wall time of the 1 GiB image.
var DefaultParallelDownload = ParallelDownload{Connections: 8, ChunkSize: 8 << 20, Threshold: 32 << 20, FastStream: 64 << 20}

// withDefaults fills zero fields from def.
func (p ParallelDownload) withDefaults(def ParallelDownload) ParallelDownload {
	if p.Connections <= 0 {
		p.Connections = def.Connections
	}
	if p.ChunkSize <= 0 {
		p.ChunkSize = def.ChunkSize
	}
	if p.Threshold <= 0 {
		p.Threshold = def.Threshold
	}
	if p.FastStream == 0 {
		p.FastStream = def.FastStream
	}
	return p
}

func (p ParallelDownload) validate() error {
	if p.Connections < 0 || p.ChunkSize < 0 || p.Threshold < 0 {
		return fmt.Errorf("parallel download %+v: negative value", p)
	}
	if p.ChunkSize > 0 && p.ChunkSize < minChunkSize {
		return fmt.Errorf("parallel download: chunk size %d is below %d bytes", p.ChunkSize, minChunkSize)
	}
	return nil
}

// minChunkSize bounds the chunk size from below: smaller chunks cost a request each
// for too few bytes.
const minChunkSize = 64 << 10

// errRangeIgnored: the server answered a Range request with the whole blob.
var errRangeIgnored = errors.New("server ignores Range")

// rangeHosts remembers the registries that cannot serve ranges, so their next blobs
// go straight to one stream.
type rangeHosts struct{ m sync.Map }

func (h *rangeHosts) refuses(host string) bool {
	_, ok := h.m.Load(host)
	return ok
}

func (h *rangeHosts) remember(host string) { h.m.Store(host, true) }

// pullParallel is the parallel download state of one copy: its settings and the
// chunk connections its blobs share.
type pullParallel struct {
	set   ParallelDownload
	slots chan struct{} // one token per chunk connection running
}

// newParallel returns the parallel download state of one copy: p's settings over the
// client's, and a budget of twice Connections chunk connections shared by the copy's
// blobs, so one large blob gets every connection and several share them.
func (c *Client) newParallel(p *ParallelDownload) *pullParallel {
	set := c.cfg.parallel
	if p != nil {
		set = p.withDefaults(set)
	}
	return &pullParallel{set: set, slots: make(chan struct{}, 2*max(set.Connections, 1))}
}

// copyParallel is the parallel path of a copy's blob transfer (copier.stream): it fetches what w lacks of d in
// ranges when w can take them, the blob is large enough and its registry serves
// ranges. done reports whether it handled the blob (err then says how it went);
// otherwise the caller streams the blob from offset next, where the bytes verified in
// order end (a server that turned out to ignore or garble ranges is remembered and
// gets one stream from then on).
func (c *Client) copyParallel(ctx context.Context, pp *pullParallel, r ref.Reference, d ocitypes.Descriptor, offset int64, w io.Writer, progress func(ProgressEvent)) (next int64, done bool, err error) {
	set := pp.set
	if err := set.validate(); err != nil {
		return 0, true, err
	}
	if set.Connections <= 1 || len(d.URLs) > 0 || d.Size-offset < set.Threshold || c.rangeHosts.refuses(r.Registry()) {
		return offset, false, nil
	}
	wa, ok := w.(BlobWriterAt)
	var ordered *orderedWriter
	if !ok {
		// A destination that takes bytes in order (reorder.go).
		set = orderedSettings(set)
		ordered = newOrderedWriter(w, offset, d.Size, set.ChunkSize)
		wa = ordered
	}
	src := &registryRanges{c: c, r: r, d: d}
	err = fetchParallel(ctx, src.open, d, wa, set, pp.slots, progress)
	if err == nil && ordered != nil {
		err = ordered.complete()
	}
	if err == nil || !refusesRanges(err) || ctx.Err() != nil {
		return 0, true, err
	}
	c.logger.DebugContext(ctx, "blob: ranges refused, one stream from now on", "host", r.Registry(), "digest", d.Digest, "error", err)
	c.rangeHosts.remember(r.Registry())
	next = d.Size
	for off := range wa.Missing() {
		next = off
		break
	}
	return next, false, nil
}

// refusesRanges reports whether err says the server cannot serve ranges (it ignored
// Range, or answered a range with the wrong bytes' coordinates).
func refusesRanges(err error) bool {
	var pe *protocolError
	return errors.Is(err, errRangeIgnored) || errors.As(err, &pe)
}

// rangeOpener opens bytes [off, end) of the blob being fetched.
type rangeOpener func(ctx context.Context, off, end int64) (io.ReadCloser, error)

// FetchParallel copies what w lacks of blob d (as its Missing says) from src, in
// chunks fetched over p.Connections connections at once, written at their offsets
// into w. It does not commit: the caller commits w, which verifies the digest. It
// fails at the first error of any chunk, after every other chunk connection was
// stopped; what was written stays in w for a later resume. Progress, if set, receives
// BlobProgress events whose Offset (the bytes w holds) only grows. Requests: one per
// chunk (more when connections break); memory: one 128 KiB buffer per connection.
func FetchParallel(ctx context.Context, src RangeSource, d ocitypes.Descriptor, w BlobWriterAt, p ParallelDownload, progress func(ProgressEvent)) error {
	if err := p.validate(); err != nil {
		return err
	}
	open := func(ctx context.Context, off, end int64) (io.ReadCloser, error) {
		return src.FetchRange(ctx, d, off, end-off)
	}
	if repo, ok := src.(*Repository); ok {
		open = (&registryRanges{c: repo.c, r: repo.ref, d: d}).open
	}
	return fetchParallel(ctx, open, d, w, p.withDefaults(DefaultParallelDownload), nil, serializeProgress(progress))
}

// chunk is one range request of a parallel download.
type chunk struct {
	off, end int64
	done     chan struct{} // closed when the chunk is written
}

// parallelFetch is the state of one parallel download.
type parallelFetch struct {
	open     rangeOpener
	d        ocitypes.Descriptor
	w        BlobWriterAt
	chunks   []chunk
	window   int           // chunk i starts once chunk i-window is written
	slots    chan struct{} // the pull's chunk connections, shared with its other blobs; nil: no limit
	next     atomic.Int64
	progress func(ProgressEvent)

	mu       sync.Mutex // orders the progress events
	held     int64      // bytes the writer holds
	reported int64      // held at the last event
}

func fetchParallel(ctx context.Context, open rangeOpener, d ocitypes.Descriptor, w BlobWriterAt, set ParallelDownload, slots chan struct{}, progress func(ProgressEvent)) error {
	window := 2 * set.Connections
	if _, ok := w.(*orderedWriter); ok {
		window = set.Connections // the chunks past the write head wait in memory
	}
	pf := &parallelFetch{open: open, d: d, w: w, window: window, slots: slots, progress: progress, held: d.Size}
	firstGap := int64(-1) // the end of the first missing range
	for off, n := range w.Missing() {
		pf.held -= n
		if firstGap < 0 {
			firstGap = off + n
		}
		for end := off + n; off < end; off += set.ChunkSize {
			pf.chunks = append(pf.chunks, chunk{off: off, end: min(off+set.ChunkSize, end), done: make(chan struct{})})
		}
	}
	pf.reported = pf.held
	if len(pf.chunks) == 0 {
		return nil
	}
	var first io.ReadCloser // the rest of the first chunk, when the probe found the link slow
	if set.FastStream > 0 {
		var err error
		if first, err = pf.probe(ctx, firstGap, set.FastStream); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if first != nil {
		wg.Go(func() {
			if err := pf.fetch(ctx, pf.chunks[0], first); err != nil {
				cancel(err)
				return
			}
			close(pf.chunks[0].done)
		})
	}
	for range min(set.Connections, len(pf.chunks)) {
		wg.Go(func() {
			if err := pf.work(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// probeSample is how many bytes of the first chunk tell the speed of the link.
const probeSample = 2 << 20

// probe requests the whole first missing range (end being its end) and times its first
// probeSample bytes, from the first that arrive. When they came at fast bytes per second or
// more, the rest of the range follows on this connection, and probe returns nil.
// Otherwise it returns the body, positioned after the sample, for the rest of the
// first chunk (chunk 0, its off moved past the sample), while the other connections
// start on the next chunks. The chunks it covered are marked done.
func (pf *parallelFetch) probe(ctx context.Context, end int64, fast int64) (io.ReadCloser, error) {
	ch := &pf.chunks[0]
	bufp := chunkBuffers.Get().(*[]byte)
	defer chunkBuffers.Put(bufp)
	body, err := pf.open(ctx, ch.off, end)
	if err != nil {
		return nil, err
	}
	// The clock restarts after the first buffer, so that the server's time to the first
	// byte (opening a file, a slow first read) does not count as the link's.
	sampled := min(ch.off+probeSample, ch.end)
	timed, start := ch.off, time.Now()
	if first := ch.off + int64(len(*bufp)); first < sampled {
		if err := pf.copyRange(body, ch.off, first, *bufp); err != nil {
			body.Close()
			return nil, err
		}
		timed, start = first, time.Now()
	}
	if err := pf.copyRange(body, timed, sampled, *bufp); err != nil {
		body.Close()
		return nil, err
	}
	if float64(sampled-timed)/time.Since(start).Seconds() < float64(fast) {
		ch.off = sampled
		pf.next.Store(1)
		return body, nil // read up to the chunk's end only; its Close drops the connection
	}
	defer body.Close()
	if err := pf.copyRange(body, sampled, end, *bufp); err != nil {
		return nil, err
	}
	i := 0
	for ; i < len(pf.chunks) && pf.chunks[i].end <= end; i++ {
		close(pf.chunks[i].done)
	}
	pf.next.Store(int64(i))
	return nil, nil
}

// copyRange copies bytes [off, end) of the blob from body into the writer.
func (pf *parallelFetch) copyRange(body io.Reader, off, end int64, buf []byte) error {
	for off < end {
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), end-off)])
		if n > 0 {
			if _, werr := pf.w.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
			pf.add(int64(n))
		}
		if err != nil {
			return &copyError{off: off, err: err}
		}
	}
	return nil
}

// copyError is a read error of copyRange at offset off.
type copyError struct {
	off int64
	err error
}

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// work fetches chunks, in order, until none is left.
func (pf *parallelFetch) work(ctx context.Context) error {
	for {
		i := int(pf.next.Add(1) - 1)
		if i >= len(pf.chunks) {
			return nil
		}
		if i >= pf.window {
			select {
			case <-pf.chunks[i-pf.window].done:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if pf.slots != nil {
			select {
			case pf.slots <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := pf.fetch(ctx, pf.chunks[i], nil)
		if pf.slots != nil {
			<-pf.slots
		}
		if err != nil {
			return err
		}
		close(pf.chunks[i].done)
	}
}

// fetch copies one chunk into the writer, from body when it is not nil (already open
// at the chunk's offset).
func (pf *parallelFetch) fetch(ctx context.Context, ch chunk, body io.ReadCloser) error {
	bufp := chunkBuffers.Get().(*[]byte)
	defer chunkBuffers.Put(bufp)
	if body == nil {
		var err error
		if body, err = pf.open(ctx, ch.off, ch.end); err != nil {
			return err
		}
	}
	defer func() { body.Close() }()
	for reopens := 0; ; reopens++ {
		err := pf.copyRange(body, ch.off, ch.end, *bufp)
		var ce *copyError
		if err == nil || !errors.As(err, &ce) || !isExpiredURL(err) || reopens == maxReopens || ctx.Err() != nil {
			return err
		}
		// The storage URL the registry redirected to expired mid-chunk: ask again.
		body.Close()
		ch.off = ce.off
		var oerr error
		if body, oerr = pf.open(ctx, ch.off, ch.end); oerr != nil {
			return oerr
		}
	}
}

// chunkBuffers are the copy buffers of chunk connections: smaller than a stream's, as
// a pull may run a few dozen of them at once.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// maxReopens bounds how often one chunk re-resolves an expired redirect target.
const maxReopens = 3

// add counts n more bytes held and reports progress every progressStep bytes.
func (pf *parallelFetch) add(n int64) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	pf.held += n
	if pf.held-pf.reported >= progressStep {
		pf.reported = pf.held
		pf.progress(ProgressEvent{Kind: BlobProgress, Descriptor: pf.d, Offset: pf.held})
	}
}

// registryRanges opens ranges of one blob of a registry. The first response tells
// where the blob is served from: when the registry redirects to storage (S3, a CDN, a
// presigned URL), later ranges go straight there, without the registry's credentials,
// until that URL is refused (expired), when the registry is asked again.
type registryRanges struct {
	c *Client
	r ref.Reference
	d ocitypes.Descriptor

	mu     sync.Mutex
	target *url.URL // the redirect target in use; nil asks the registry
}

func (s *registryRanges) open(ctx context.Context, off, end int64) (io.ReadCloser, error) {
	ctx = ownConnection(ctx)
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		target := s.target
		s.mu.Unlock()
		rr := &rangeReader{c: s.c, ctx: ctx, r: s.r, d: s.d, foreign: target, pos: off, end: end, strict: true}
		err := rr.open()
		if err == nil {
			if target == nil && rr.at != nil && !sameOrigin(rr.at, &url.URL{Scheme: s.c.scheme(s.r.Registry()), Host: s.r.Registry()}) {
				s.mu.Lock()
				s.target = rr.at
				s.mu.Unlock()
			}
			return &expiringReader{rangeReader: rr}, nil
		}
		if target == nil || attempt > 0 || !refusedByTarget(err) {
			return nil, err
		}
		s.c.logger.DebugContext(ctx, "blob: redirect target refused, asking the registry again", "digest", s.d.Digest, "url", redactURL(target))
		s.mu.Lock()
		if s.target == target {
			s.target = nil
		}
		s.mu.Unlock()
	}
}

// expiringReader marks the errors of a range read from a redirect target that refuses
// it now (an expired presigned URL), so the chunk asks the registry again.
type expiringReader struct{ *rangeReader }

func (e *expiringReader) Read(p []byte) (int, error) {
	n, err := e.rangeReader.Read(p)
	if err != nil && e.foreign != nil && refusedByTarget(err) {
		err = &expiredError{err}
	}
	return n, err
}

// expiredError is a refusal from a redirect target.
type expiredError struct{ err error }

func (e *expiredError) Error() string { return e.err.Error() }
func (e *expiredError) Unwrap() error { return e.err }

func isExpiredURL(err error) bool {
	var ee *expiredError
	return errors.As(err, &ee)
}

// refusedByTarget reports whether err is a status a storage URL answers once its
// signature expired (S3 and GCS: 403 or 400; others 401, 404, 410).
func refusedByTarget(err error) bool {
	var re *ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// monotonicProgress passes on the BlobProgress events of one blob whose Offset grows:
// when a parallel download falls back to one stream, the stream restarts below the
// bytes the ranges held, and the bar must not run backwards.
func monotonicProgress(progress func(ProgressEvent)) func(ProgressEvent) {
	var mu sync.Mutex
	var last int64
	return func(e ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == BlobProgress && e.Offset <= last {
			return
		}
		last = max(last, e.Offset)
		progress(e)
	}
}
