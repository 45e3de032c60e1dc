package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
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
		return nil, errdef.Blob(d.Digest, err)
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
			err = errdef.Blob(v.d.Digest, fmt.Errorf("content hashes to %s: %w", got, ErrDigestMismatch))
		}
	case err != nil:
		err = errdef.Blob(v.d.Digest, err)
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// rangeReader reads bytes [start, end) of a blob, resuming with Range requests when
// the connection breaks or stalls (the client's deadlineTransport ends a body that
// delivers nothing for the read timeout). It checks sizes, not digests.
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
	resumes int
	barren  int // consecutive attempts that delivered nothing
	err     error
}

// openRange starts reading bytes [start, end) of d; the first request is made now.
func (c *Client) openRange(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, start, end int64) (*rangeReader, error) {
	return c.openRangeFrom(ctx, r, d, nil, start, end)
}

// openRangeFrom is openRange from a foreign URL when foreign is set. A descriptor
// larger than the client's maximum blob size is refused before any request.
func (c *Client) openRangeFrom(ctx context.Context, r ref.Reference, d ocitypes.Descriptor, foreign *url.URL, start, end int64) (*rangeReader, error) {
	if d.Size > c.cfg.maxBlobSize {
		return nil, fmt.Errorf("descriptor says %d bytes, more than the %d allowed (WithMaxBlobSize): %w", d.Size, c.cfg.maxBlobSize, ErrSizeExceedsLimit)
	}
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
		if errors.As(err, &re) || errors.As(err, &pe) || isStall(err) || rr.ctx.Err() != nil {
			// The registry refused, misbehaved or stopped answering (twice, the retry
			// layer tried again): resuming again won't help.
			rr.err = err
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
	resp, err := c.do(req, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		cancel()
		return err
	}
	fail := func(err error) error {
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
				resp.Body.Close()
				cancel()
				return fmt.Errorf("skipping %d bytes of a full response: %w", rr.pos, err) // a network error: resumable
			}
		}
	}
	rr.body, rr.cancel, rr.at = resp.Body, cancel, resp.Request.URL
	return nil
}

// protocolError is a response that breaks the blob protocol (a wrong Content-Range, a
// size that contradicts the descriptor): asking again will not mend it.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

func (rr *rangeReader) closeBody() {
	if rr.body != nil {
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
				yield(Chunk{}, errdef.Blob(d.Digest, err))
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
				yield(Chunk{}, errdef.Blob(d.Digest, err))
				return
			}
		}
		if got := digester.Digest(); got != d.Digest {
			yield(Chunk{}, errdef.Blob(d.Digest, fmt.Errorf("content hashes to %s: %w", got, ErrDigestMismatch)))
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
