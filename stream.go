package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// copyBufferSize is the buffer of a blob copy into a writer without ReadFrom: large
// enough that hashing and writing run in long strides, small enough to keep a pull's
// memory flat.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// Blob returns a reader of the blob d in repository ("ubuntu", "ghcr.io/owner/app")
// that checks size and digest as it reads: a short body ends in an error wrapping
// [io.ErrUnexpectedEOF], a wrong one in [ErrDigestMismatch] on the read that would
// have returned [io.EOF]. Redirects (to S3, a CDN) are followed without the registry's
// credentials. When the connection drops or stalls mid-blob the reader resumes with a
// Range request, transparently, a bounded number of times ([WithMaxResumes]); a server
// that ignores Range is handled by skipping what was already read. The first request
// is made before Blob returns, so a missing blob or refused credentials are reported
// here. The caller must Close the reader. Memory: one small struct; the bytes stream.
func (c *Client) Blob(ctx context.Context, repository string, d ocitypes.Descriptor) (io.ReadCloser, error) {
	r, err := ref.ParseRepository(repository)
	if err != nil {
		return nil, err
	}
	return c.blob(ctx, r, d)
}

func (c *Client) blob(ctx context.Context, r ref.Reference, d ocitypes.Descriptor) (io.ReadCloser, error) {
	if err := checkBlobDescriptor(d); err != nil {
		return nil, err
	}
	br, err := c.openRange(ctx, r, d, 0, d.Size)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return &verifyingReader{r: br, d: d, digester: d.Digest.Algorithm().Digester()}, nil
}

func checkBlobDescriptor(d ocitypes.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("blob digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s: negative size %d: %w", d.Digest, d.Size, ErrInvalidManifest)
	}
	return nil
}

// verifyingReader hashes what passes through and checks it at EOF.
type verifyingReader struct {
	r        io.ReadCloser
	d        ocitypes.Descriptor
	digester digest.Digester
	err      error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.digester.Hash().Write(p[:n])
	switch {
	case err == io.EOF:
		if got := v.digester.Digest(); got != v.d.Digest {
			err = fmt.Errorf("blob %s: content hashes to %s: %w", v.d.Digest, got, ErrDigestMismatch)
		}
	case err != nil:
		err = fmt.Errorf("blob %s: %w", v.d.Digest, err)
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// rangeReader reads bytes [start, end) of a blob, resuming with Range requests when
// the connection breaks or stalls. It checks sizes, not digests.
type rangeReader struct {
	c   *Client
	ctx context.Context
	r   ref.Reference
	d   ocitypes.Descriptor
	// foreign, when set, is a URL from the descriptor's urls: the bytes come from there,
	// with no registry credentials.
	foreign *url.URL
	end     int64
	pos     int64 // absolute offset of the next byte
	body    io.ReadCloser

	// strict refuses a 200 to a Range request (errRangeIgnored) instead of skipping
	// to the offset: a parallel download then falls back to one stream.
	strict bool
	// at is where the last response came from, after redirects.
	at *url.URL

	cancel  context.CancelFunc // ends the current attempt
	stall   *time.Timer
	resumes int
	barren  int // consecutive attempts that delivered nothing
	err     error
}

// openRange starts reading bytes [start, end) of d; the first request is made now.
func (c *Client) openRange(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, start, end int64) (*rangeReader, error) {
	return c.openRangeFrom(ctx, r, d, nil, start, end)
}

// openRangeFrom is openRange from a foreign URL when foreign is set.
func (c *Client) openRangeFrom(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, foreign *url.URL, start, end int64) (*rangeReader, error) {
	rr := &rangeReader{c: c, ctx: ctx, r: r, d: d, foreign: foreign, end: end, pos: start}
	if start == end {
		return rr, nil
	}
	if err := rr.open(); err != nil {
		return nil, err
	}
	return rr, nil
}

func (rr *rangeReader) Read(p []byte) (int, error) {
	for {
		if rr.err != nil {
			return 0, rr.err
		}
		if rr.pos >= rr.end {
			rr.closeBody()
			return 0, io.EOF
		}
		if rr.body == nil {
			if err := rr.resume(nil); err != nil {
				return 0, err
			}
			continue
		}
		if int64(len(p)) > rr.end-rr.pos {
			p = p[:rr.end-rr.pos]
		}
		n, err := rr.body.Read(p)
		if n > 0 {
			rr.pos += int64(n)
			rr.barren = 0
			rr.stall.Reset(rr.c.cfg.readTimeout)
			if rr.pos >= rr.end {
				rr.closeBody()
			}
			return n, nil
		}
		if err == nil {
			continue
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if rerr := rr.resume(err); rerr != nil {
			return 0, rerr
		}
	}
}

// resume closes the broken body and opens the rest, within the bounds.
func (rr *rangeReader) resume(cause error) error {
	rr.closeBody()
	if err := rr.ctx.Err(); err != nil {
		rr.err = err
		return err
	}
	rr.resumes++
	rr.barren++
	if rr.resumes > rr.c.cfg.maxResumes || rr.barren > 3 {
		if cause == nil {
			cause = errors.New("no progress")
		}
		rr.err = fmt.Errorf("connection lost at byte %d of %d after %d resumes: %w: %w",
			rr.pos, rr.d.Size, rr.resumes-1, io.ErrUnexpectedEOF, cause)
		return rr.err
	}
	rr.c.logger.DebugContext(rr.ctx, "blob: resuming", "digest", rr.d.Digest, "offset", rr.pos, "cause", cause)
	if rr.barren > 1 {
		// A connection that breaks before any byte may be a server in trouble.
		t := time.NewTimer(backoff(100*time.Millisecond, 2*time.Second, rr.barren))
		select {
		case <-rr.ctx.Done():
			t.Stop()
			rr.err = rr.ctx.Err()
			return rr.err
		case <-t.C:
		}
	}
	if err := rr.open(); err != nil {
		var re *ResponseError
		var pe *protocolError
		if errors.As(err, &re) || errors.As(err, &pe) || rr.ctx.Err() != nil {
			rr.err = err // the registry refused or misbehaved: resuming again won't help
			return err
		}
		return nil // a network error: the next Read resumes again, within the bounds
	}
	return nil
}

// open sends the GET for [pos, end) and positions the body at pos.
func (rr *rangeReader) open() error {
	c, r, d := rr.c, rr.r, rr.d
	ctx, cancel := context.WithCancel(rr.ctx)
	u := rr.foreign
	if u == nil {
		ctx, u = c.endpoint(ctx, r.Registry(), "/v2/"+r.Repository()+"/blobs/"+d.Digest.String(), RepositoryScope(r.Repository(), "pull"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return err
	}
	// Byte-exact bodies: no transparent compression (some registries gzip blobs).
	req.Header.Set("Accept-Encoding", "identity")
	partial := rr.pos > 0 || rr.end < d.Size
	if partial {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(rr.pos, 10)+"-"+strconv.FormatInt(rr.end-1, 10))
	}
	stall := time.AfterFunc(c.cfg.readTimeout, cancel)
	resp, err := c.do(req, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		stall.Stop()
		cancel()
		return err
	}
	fail := func(err error) error {
		stall.Stop()
		resp.Body.Close()
		cancel()
		return &protocolError{fmt.Errorf("GET %s: %w", redactURL(resp.Request.URL), err)}
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, last, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != rr.pos || last >= d.Size || (total >= 0 && total != d.Size) {
			return fail(fmt.Errorf("asked for bytes %d-%d, got Content-Range %q", rr.pos, rr.end-1, resp.Header.Get("Content-Range")))
		}
	case http.StatusOK:
		if rr.strict && partial {
			return fail(errRangeIgnored)
		}
		if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
			return fail(fmt.Errorf("registry serves %d bytes, descriptor says %d: %w", resp.ContentLength, d.Size, ErrDigestMismatch))
		}
		if rr.pos > 0 {
			// The server ignored Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, rr.pos); err != nil {
				stall.Stop()
				resp.Body.Close()
				cancel()
				return fmt.Errorf("skipping %d bytes of a full response: %w", rr.pos, err) // a network error: resumable
			}
		}
	}
	rr.body, rr.cancel, rr.stall, rr.at = resp.Body, cancel, stall, resp.Request.URL
	return nil
}

// protocolError is a response that breaks the blob protocol (a wrong Content-Range, a
// size that contradicts the descriptor): asking again will not mend it.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

func (rr *rangeReader) closeBody() {
	if rr.body != nil {
		rr.stall.Stop()
		rr.body.Close()
		rr.cancel()
		rr.body = nil
	}
}

func (rr *rangeReader) Close() error {
	rr.closeBody()
	if rr.err == nil {
		rr.err = errors.New("read of closed blob reader")
	}
	return nil
}

// parseContentRange parses "bytes first-last/total" (total may be "*", given as -1).
func parseContentRange(v string) (first, last, total int64, ok bool) {
	unit, rest, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || !strings.EqualFold(unit, "bytes") {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(a, 10, 64)
	last, err2 = strconv.ParseInt(b, 10, 64)
	total = -1
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// Chunk is one byte range of a blob yielded by [Client.BlobChunks].
type Chunk struct {
	// Offset is the position of the chunk's first byte in the blob.
	Offset int64
	// Length is the number of bytes in the chunk.
	Length int64
	// Body reads the chunk's bytes. It is only valid during the yield call it is passed
	// to; bytes left unread are read (and hashed) by the iterator after yield returns.
	Body io.Reader
}

// BlobChunks returns an iterator over the blob d of repository in consecutive chunks
// of chunkSize bytes (the last may be shorter), each fetched with its own Range
// request (resuming inside the chunk if its connection drops). The iterator hashes
// every byte; when the last chunk is done and the content does not match d, it yields
// a final error wrapping [ErrDigestMismatch]. Iteration stops at the first error,
// which is yielded as the final pair with a zero Chunk; breaking out costs no further
// request. Each range starts again at the first chunk. Memory: one chunk's connection,
// no chunk is buffered.
func (c *Client) BlobChunks(ctx context.Context, repository string, d ocitypes.Descriptor, chunkSize int64) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		r, err := ref.ParseRepository(repository)
		if err != nil {
			yield(Chunk{}, err)
			return
		}
		if err := checkBlobDescriptor(d); err != nil {
			yield(Chunk{}, err)
			return
		}
		if chunkSize <= 0 {
			yield(Chunk{}, fmt.Errorf("blob chunks: chunk size %d is not positive", chunkSize))
			return
		}
		digester := d.Digest.Algorithm().Digester()
		h := digester.Hash()
		for off := int64(0); off < d.Size; off += chunkSize {
			if err := ctx.Err(); err != nil {
				yield(Chunk{}, err)
				return
			}
			end := min(off+chunkSize, d.Size)
			rr, err := c.openRange(ctx, r, d, off, end)
			if err != nil {
				yield(Chunk{}, fmt.Errorf("blob %s: %w", d.Digest, err))
				return
			}
			body := io.TeeReader(rr, h)
			more := yield(Chunk{Offset: off, Length: end - off, Body: body}, nil)
			if !more {
				rr.Close()
				return
			}
			// Hash what the consumer left unread, so the final check covers every byte.
			_, err = io.Copy(io.Discard, body)
			rr.Close()
			if err != nil {
				yield(Chunk{}, fmt.Errorf("blob %s: %w", d.Digest, err))
				return
			}
		}
		if got := digester.Digest(); got != d.Digest {
			yield(Chunk{}, fmt.Errorf("blob %s: content hashes to %s: %w", d.Digest, got, ErrDigestMismatch))
		}
	}
}

// Collect ranges over seq and returns its values in order. It stops at the first
// error and returns the values before it with that error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// PullOptions tunes [Client.Pull]. A nil *PullOptions means the defaults.
type PullOptions struct {
	// Platform selects the image of an index. The default is [ocitypes.HostPlatform]
	// (linux and the host's architecture); arm variants fall back to older ones.
	Platform *ocitypes.Platform
	// AllPlatforms keeps every manifest of an index instead of selecting one; the
	// index itself is then the image that is tagged.
	AllPlatforms bool
	// Concurrency is the number of blobs downloaded at once. The default is the
	// client's [WithConcurrency].
	Concurrency int
	// SkipForeign leaves out foreign (non-distributable) layers, such as Windows base
	// layers, instead of fetching them from the registry or their urls. The tagged
	// root then lists their digests in the annotation
	// [ocitypes.AnnotationAbsentBlobs], so the layout says what it lacks. The default
	// fetches them.
	SkipForeign bool
	// Progress, if set, receives an event when each blob starts, at most every
	// 512 KiB of it, and when it ends. Calls are serialized, never concurrent.
	Progress func(ProgressEvent)
	// Parallel, if set, says how large blobs are fetched over several connections
	// at once (zero fields keep the client's values). The default is the client's
	// [WithParallelDownload].
	Parallel *ParallelDownload
}

// progressStep is how many bytes of a blob pass between BlobProgress events.
const progressStep = 512 << 10

// Pull downloads the image reference names into dst: it resolves the reference,
// selects the platform of an index (or keeps every platform), fetches the config and
// layers concurrently and streams each straight into dst, which verifies them, then
// writes the manifests and tags the image. Blobs dst already holds are not fetched;
// a partial blob dst kept from an interrupted pull is continued from its offset. It
// returns the descriptor of the tagged root (the platform's manifest, or the index with
// AllPlatforms). Requests: the manifest(s), one GET per missing blob (more when a
// connection breaks); memory: one copy buffer per concurrent blob.
func (c *Client) Pull(ctx context.Context, reference string, dst Destination, opts *PullOptions) (ocitypes.Descriptor, error) {
	var o PullOptions
	if opts != nil {
		o = *opts
	}
	if o.Concurrency <= 0 {
		o.Concurrency = c.cfg.concurrency
	}
	want := ocitypes.HostPlatform()
	if o.Platform != nil {
		want = *o.Platform
	}
	r, err := ref.Parse(reference)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	plan, err := c.planPull(ctx, r, planOptions{want: want, all: o.AllPlatforms, skipForeign: o.SkipForeign})
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	progress := serializeProgress(o.Progress)
	if err := c.pullBlobs(c.withParallel(ctx, o.Parallel), r, plan.blobs, dst, o.Concurrency, progress); err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("pull %s: %w", r, err)
	}
	for _, m := range plan.manifests {
		if err := writeBytes(ctx, dst, m.desc, m.body); err != nil {
			return ocitypes.Descriptor{}, fmt.Errorf("pull %s: manifest %s: %w", r, m.desc.Digest, err)
		}
	}
	if err := dst.Tag(ctx, r, plan.root); err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("pull %s: %w", r, err)
	}
	return plan.root, nil
}

type manifestBlob struct {
	desc ocitypes.Descriptor
	body []byte
}

type pullPlan struct {
	root      ocitypes.Descriptor
	manifests []manifestBlob        // written after the blobs, children before parents
	blobs     []ocitypes.Descriptor // configs and layers, de-duplicated
	absent    []digest.Digest       // foreign layers left out
}

type planOptions struct {
	want        ocitypes.Platform
	all         bool // every platform of an index
	skipForeign bool
}

// planPull fetches the manifests of r and lists what a pull must write.
func (c *Client) planPull(ctx context.Context, r ref.Reference, o planOptions) (*pullPlan, error) {
	desc, body, err := c.manifest(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	plan := &pullPlan{root: desc}
	seen := map[digest.Digest]bool{}
	if err := c.planManifest(ctx, r, desc, body, o, plan, seen, 0); err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	if !o.all && ocitypes.IsIndex(desc.MediaType) {
		// One platform was kept: the image is the selected manifest, listed first (its
		// parents follow it); the indexes above it are not written.
		plan.manifests = plan.manifests[:1]
		plan.root = plan.manifests[0].desc
	}
	if len(plan.absent) > 0 {
		names := make([]string, len(plan.absent))
		for i, d := range plan.absent {
			names[i] = d.String()
		}
		plan.root.Annotations = maps.Clone(plan.root.Annotations)
		if plan.root.Annotations == nil {
			plan.root.Annotations = map[string]string{}
		}
		plan.root.Annotations[ocitypes.AnnotationAbsentBlobs] = strings.Join(names, ",")
	}
	slices.SortStableFunc(plan.blobs, func(a, b ocitypes.Descriptor) int {
		return int(min(max(b.Size-a.Size, -1), 1)) // largest first: the longest downloads start first
	})
	return plan, nil
}

// planManifest adds desc (a manifest or index with body) and what it references.
func (c *Client) planManifest(ctx context.Context, r ref.Reference, desc ocitypes.Descriptor, body []byte, o planOptions, plan *pullPlan, seen map[digest.Digest]bool, depth int) error {
	switch {
	case ocitypes.IsIndex(desc.MediaType):
		if depth > 1 {
			return fmt.Errorf("index %s nests indexes more than two deep: %w", desc.Digest, ErrUnsupported)
		}
		idx, err := ocitypes.ParseIndex(desc.MediaType, body)
		if err != nil {
			return err
		}
		children := idx.Manifests
		if !o.all {
			child, err := ocitypes.SelectManifest(idx, o.want)
			if err != nil {
				return err
			}
			children = []ocitypes.Descriptor{child}
		}
		for _, child := range children {
			if seen[child.Digest] {
				continue
			}
			seen[child.Digest] = true
			if !ocitypes.IsIndex(child.MediaType) && !ocitypes.IsManifest(child.MediaType) {
				// Not an image (a signature, an SBOM of unknown type): keep it as a blob.
				plan.blobs = append(plan.blobs, child)
				continue
			}
			cdesc, cbody, err := c.manifest(ctx, r.WithDigest(child.Digest))
			if err != nil {
				return err
			}
			if cdesc.Size != child.Size {
				return fmt.Errorf("manifest %s is %d bytes, index says %d: %w", child.Digest, cdesc.Size, child.Size, ErrDigestMismatch)
			}
			cdesc.MediaType = child.MediaType
			cdesc.Platform = child.Platform
			cdesc.Annotations = child.Annotations
			if err := c.planManifest(ctx, r, cdesc, cbody, o, plan, seen, depth+1); err != nil {
				return err
			}
		}
	case ocitypes.IsManifest(desc.MediaType):
		m, err := ocitypes.ParseManifest(desc.MediaType, body)
		if err != nil {
			return err
		}
		for _, b := range append([]ocitypes.Descriptor{m.Config}, m.Layers...) {
			if seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			if o.skipForeign && ocitypes.IsForeignLayer(b.MediaType) {
				plan.absent = append(plan.absent, b.Digest)
				continue
			}
			plan.blobs = append(plan.blobs, b)
		}
	default:
		return fmt.Errorf("manifest %s has media type %q: %w", desc.Digest, desc.MediaType, ErrUnsupported)
	}
	plan.manifests = append(plan.manifests, manifestBlob{desc: desc, body: body})
	return nil
}

// pullBlobs downloads blobs into dst, at most concurrency at once; the first failure
// cancels the rest.
func (c *Client) pullBlobs(ctx context.Context, r ref.Reference, blobs []ocitypes.Descriptor, dst Destination, concurrency int, progress func(ProgressEvent)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, d := range blobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The slot is for downloading: it is handed on as soon as the last byte is
			// in, while this blob's commit (an fsync for a directory) completes.
			release := sync.OnceFunc(func() { <-sem })
			defer release()
			if err := c.pullBlob(ctx, r, d, dst, progress, release); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// pullBlob downloads one blob into dst, continuing a partial one. If a kept partial
// turns out wrong, the blob is fetched once more from its start; if a foreign URL
// serves wrong bytes, the next URL is tried.
// downloaded is called once the bytes are in, before the commit.
func (c *Client) pullBlob(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, dst Destination, progress func(ProgressEvent), downloaded func()) error {
	from := 0 // the first source to try: 0 is the registry, i the i-th of d.URLs
	restarted := false
	for {
		w, err := dst.OpenBlob(ctx, d)
		if errors.Is(err, ErrAlreadyExists) {
			progress(ProgressEvent{Kind: BlobSkipped, Descriptor: d, Offset: d.Size})
			return nil
		}
		if err != nil {
			progress(ProgressEvent{Kind: BlobFailed, Descriptor: d, Err: err})
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		offset := w.Offset()
		progress(ProgressEvent{Kind: BlobStarted, Descriptor: d, Offset: offset})
		used, err := c.copyBlob(ctx, r, d, from, offset, w, progress)
		if err == nil {
			downloaded()
			err = w.Commit()
		}
		w.Close()
		if err == nil {
			progress(ProgressEvent{Kind: BlobDone, Descriptor: d, Offset: d.Size})
			return nil
		}
		if errors.Is(err, ErrDigestMismatch) && ctx.Err() == nil {
			if offset > 0 && !restarted {
				restarted = true
				c.logger.DebugContext(ctx, "blob: kept partial was wrong, starting over", "digest", d.Digest)
				continue
			}
			if used < len(d.URLs) {
				from = used + 1
				c.logger.DebugContext(ctx, "blob: wrong bytes, trying the next url", "digest", d.Digest)
				continue
			}
		}
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = cause
		}
		progress(ProgressEvent{Kind: BlobFailed, Descriptor: d, Err: err})
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
}

// copyBlob streams bytes [offset, size) of d into w. A writer that can read from a
// reader (layout.Dir's can) fills its own buffer straight from the connection; others
// get a pooled copy buffer.
// It returns which source served the bytes (see openBlobSource).
func (c *Client) copyBlob(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, from int, offset int64, w io.Writer, progress func(ProgressEvent)) (int, error) {
	if offset > d.Size {
		return from, fmt.Errorf("destination holds %d bytes of a %d-byte blob: %w", offset, d.Size, ErrDigestMismatch)
	}
	if from == 0 {
		// A large blob goes over several connections when w takes ranges (parallel.go).
		progress = monotonicProgress(progress)
		next, done, err := c.copyParallel(ctx, r, d, offset, w, progress)
		if done {
			return 0, err
		}
		offset = next
	}
	src, used, err := c.openBlobSource(ctx, r, d, from, offset)
	if err != nil {
		return used, err
	}
	defer src.Close()
	pr := &progressReader{r: src, d: d, n: offset, next: offset + progressStep, progress: progress}
	if rf, ok := w.(io.ReaderFrom); ok {
		_, err = rf.ReadFrom(pr)
		return used, err
	}
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	_, err = io.CopyBuffer(onlyWriter{w}, pr, *bufp)
	return used, err
}

// openBlobSource opens bytes [offset, size) of d from its first source, counting from
// from, that answers: source 0 is the registry, source i the i-th of the descriptor's
// urls (Windows base layers and other non-distributable content), tried when the
// registry cannot serve the blob. Foreign URLs never get the registry's credentials,
// must be https unless their host was marked plain, and their bytes are verified like
// any blob's. It returns the source used.
func (c *Client) openBlobSource(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, from int, offset int64) (*rangeReader, int, error) {
	var errs []error
	for i := from; i <= len(d.URLs); i++ {
		if i > from && ctx.Err() != nil {
			break
		}
		var src *rangeReader
		var err error
		if i == 0 {
			if src, err = c.openRange(ctx, r, d, offset, d.Size); err != nil && len(d.URLs) > 0 {
				err = fmt.Errorf("registry: %w", err)
			}
		} else {
			var u *url.URL
			if u, err = c.foreignURL(d.URLs[i-1]); err == nil {
				c.logger.DebugContext(ctx, "blob: trying foreign url", "digest", d.Digest, "url", redactURL(u))
				src, err = c.openRangeFrom(ctx, r, d, u, offset, d.Size)
			}
		}
		if err == nil {
			return src, i, nil
		}
		if len(d.URLs) == 0 {
			return nil, i, err // a plain blob: the registry's error as is
		}
		errs = append(errs, err)
	}
	return nil, len(d.URLs), errors.Join(errs...)
}

// foreignURL checks a descriptor URL: absolute, https (or http to a host marked plain).
func (c *Client) foreignURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("foreign url %q: not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && hostIn(c.cfg.plainHosts, u):
	default:
		return nil, fmt.Errorf("foreign url %s: only https is allowed (mark the host plain to allow http): %w", redactURL(u), ErrUnsupported)
	}
	return u, nil
}

// onlyWriter hides any ReaderFrom of its writer so io.CopyBuffer uses the given buffer.
type onlyWriter struct{ io.Writer }

// progressReader counts bytes and reports every progressStep of them.
type progressReader struct {
	r        io.Reader
	d        ocitypes.Descriptor
	n, next  int64
	progress func(ProgressEvent)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n >= p.next {
		p.next = p.n + progressStep
		p.progress(ProgressEvent{Kind: BlobProgress, Descriptor: p.d, Offset: p.n})
	}
	return n, err
}

// writeBytes puts an in-memory blob (a manifest) into dst.
func writeBytes(ctx context.Context, dst Destination, d ocitypes.Descriptor, body []byte) error {
	w, err := dst.OpenBlob(ctx, d)
	if errors.Is(err, ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if off := w.Offset(); off > 0 && off <= int64(len(body)) {
		body = body[off:]
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Commit()
}

// serializeProgress wraps f so calls never overlap; nil becomes a no-op.
func serializeProgress(f func(ProgressEvent)) func(ProgressEvent) {
	if f == nil {
		return func(ProgressEvent) {}
	}
	var mu sync.Mutex
	return func(e ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		f(e)
	}
}
