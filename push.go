package ocistream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// Push (a [Repository] used as a [Destination]) speaks the distribution spec's upload
// protocol: HEAD to skip what the registry has, POST to open an upload session, then
//
//   - blobs up to monolithicMax: buffered, one PUT ?digest= with the body (the two
//     requests are small and the transport retries them);
//   - larger blobs: one PATCH whose body streams from Write (Content-Length is the
//     descriptor's size, so registries that refuse chunked transfer encoding take it),
//     then an empty PUT ?digest= that commits. Memory is flat whatever the size.
//
// A registry that refuses the streaming PATCH is remembered per host, and the next
// upload to it uses the form it accepts: a PATCH refused as unsupported (405, 501)
// switches to one streaming PUT ?digest= with the whole body (Artifact Registry's
// "monolithic uploads"); a PATCH refused as too large (413, 416: GHCR caps a request at
// 4 MiB) switches to chunks of chunkSize with Content-Range, the last chunk in the PUT
// (ECR answers an empty closing PUT with 500). The blob whose PATCH was refused fails
// with an error [retryableUpload] accepts, so the copy pipeline uploads it again.

// monolithicMax is the largest blob uploaded with one buffered PUT: configs, small
// layers and signatures, where a PATCH would only add a round trip. 1 MiB of buffer
// per concurrent upload keeps a push's memory small.
const monolithicMax = 1 << 20

// chunkSize is the size of one PATCH in chunked mode: GHCR's 4 MiB request cap, and
// above the 1 MiB minimum other registries announce.
const chunkSize = 4 << 20

// maxChunkSize bounds a chunk when a registry announces a larger minimum
// (OCI-Chunk-Min-Length): the chunk is buffered.
const maxChunkSize = 64 << 20

// maxRecentManifests and maxRecentBytes bound the manifests a client remembers after
// pushing them, so that Tag re-sends a root without fetching it.
const (
	maxRecentManifests = 8
	maxRecentBytes     = ocitypes.MaxManifestSize
)

// cancelTimeout bounds the best-effort DELETE that abandons an upload session.
const cancelTimeout = 5 * time.Second

// uploadMode is how large blobs are sent to one registry host.
type uploadMode int

const (
	uploadStream  uploadMode = iota // POST, one streaming PATCH, empty PUT ?digest=
	uploadPut                       // POST, one streaming PUT ?digest=
	uploadChunked                   // POST, PATCH per chunk with Content-Range, last chunk in PUT ?digest=

	uploadBuffered uploadMode = -1 // a small blob: POST, PUT ?digest= with the body
)

func (m uploadMode) String() string {
	switch m {
	case uploadPut:
		return "monolithic PUT"
	case uploadChunked:
		return "chunked PATCH"
	}
	return "streaming PATCH"
}

// pushState is what a Client learns while pushing: the upload mode each host accepts
// and the last manifests it pushed. Each Client has one, made by New.
type pushState struct {
	mu     sync.Mutex
	modes  map[string]uploadMode
	recent []recentManifest // oldest first
	bytes  int
}

type recentManifest struct {
	key       string // host/repository@digest
	mediaType string
	body      []byte
}

func (s *pushState) mode(host string) uploadMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modes[host]
}

func (s *pushState) setMode(host string, m uploadMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modes[host] = m
}

func (s *pushState) remember(key, mediaType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.recent {
		if m.key == key {
			s.bytes -= len(m.body)
			s.recent = append(s.recent[:i], s.recent[i+1:]...)
			break
		}
	}
	s.recent = append(s.recent, recentManifest{key: key, mediaType: mediaType, body: body})
	s.bytes += len(body)
	for len(s.recent) > 1 && (len(s.recent) > maxRecentManifests || s.bytes > maxRecentBytes) {
		s.bytes -= len(s.recent[0].body)
		s.recent = s.recent[1:]
	}
}

func (s *pushState) lookup(key string) (recentManifest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.recent {
		if m.key == key {
			return m, true
		}
	}
	return recentManifest{}, false
}

// pushScopes are the token scopes of a request to the destination repository.
func (r *Repository) pushScopes() []Scope {
	return []Scope{RepositoryScope(r.ref.Repository(), "pull", "push")}
}

// pushEndpoint is c.endpoint for a request to the destination repository.
func (r *Repository) pushEndpoint(ctx context.Context, path string, extra ...Scope) (context.Context, *url.URL) {
	return r.c.endpoint(ctx, r.ref.Registry(), "/v2/"+r.ref.Repository()+path, append(r.pushScopes(), extra...)...)
}

// pushError says, in one line, that the destination refused: which repository,
// which scope, what the registry said. It unwraps to the cause (a [*ResponseError]
// for a refusal).
type pushError struct {
	msg string
	err error
}

func (e *pushError) Error() string { return e.msg }
func (e *pushError) Unwrap() error { return e.err }

// refused wraps err, the failure of a request to the destination about what (a
// blob, a manifest), into one line that names the destination. Authentication and
// permission refusals name the scope asked.
func (r *Repository) refused(what string, err error, extra ...Scope) error {
	dest := r.ref.Registry() + "/" + r.ref.Repository()
	var re *ResponseError
	if !errors.As(err, &re) {
		return &pushError{msg: fmt.Sprintf("push to %s: %s: %v", dest, what, err), err: err}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "push to %s: ", dest)
	auth := true
	switch {
	case errors.Is(re, ErrUnauthorized):
		fmt.Fprintf(&b, "unauthorized (scope %s)", ScopeString(append(r.pushScopes(), extra...)))
	case errors.Is(re, ErrDenied):
		fmt.Fprintf(&b, "denied (scope %s)", ScopeString(append(r.pushScopes(), extra...)))
	default:
		auth = false
		fmt.Fprintf(&b, "%s: %s %d %s", what, re.Method, re.StatusCode, http.StatusText(re.StatusCode))
	}
	for _, e := range re.Errors {
		s := e.Error()
		if auth {
			s = e.Message // the code is the word said already
		}
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if len(re.Errors) == 0 && re.Detail != "" {
		b.WriteString(": ")
		b.WriteString(re.Detail)
	}
	return &pushError{msg: b.String(), err: err}
}

// isManifestDesc reports whether d goes to the manifests endpoint.
func isManifestDesc(d ocitypes.Descriptor) bool {
	return ocitypes.IsManifest(d.MediaType) || ocitypes.IsIndex(d.MediaType)
}

// Exists reports whether the repository holds d: one HEAD of the blob, or of the
// manifest by digest for manifest and index media types. A 404 is false, not an error.
func (r *Repository) Exists(ctx context.Context, d ocitypes.Descriptor) (bool, error) {
	if err := checkBlobDescriptor(d); err != nil {
		return false, err
	}
	kind := "/blobs/"
	if isManifestDesc(d) {
		kind = "/manifests/"
	}
	ctx, u := r.pushEndpoint(ctx, kind+d.Digest.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return false, err
	}
	if isManifestDesc(d) {
		req.Header.Set("Accept", strings.Join(ocitypes.ManifestAccept, ", "))
	}
	resp, err := r.c.do(req, http.StatusOK)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if redirectedRefusal(err, u) {
			// The registry sent the HEAD on to its storage (it has the blob), which
			// refuses HEAD on a URL presigned for GET (S3).
			return true, nil
		}
		return false, r.refused("check "+d.Digest.String(), err)
	}
	drainClose(resp.Body)
	return true, nil
}

// redirectedRefusal reports whether err is a 403 or 405 from a host other than the
// registry's, reached by a redirect.
func redirectedRefusal(err error, registry *url.URL) bool {
	var re *ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusForbidden && re.StatusCode != http.StatusMethodNotAllowed) {
		return false
	}
	u, perr := url.Parse(re.URL)
	return perr == nil && u.Host != "" && !sameOrigin(u, registry)
}

// OpenBlob prepares the upload of d: one HEAD (an existing blob or manifest gives an
// error wrapping [ErrAlreadyExists]) and, for a blob, the POST that opens an upload
// session. Manifests and indexes are buffered (up to [ocitypes.MaxManifestSize]) and
// PUT by digest on Commit with their exact bytes and Content-Type d.MediaType. Blobs up
// to 1 MiB are buffered and sent in one PUT on Commit; larger blobs stream to the
// registry as they are written, with flat memory. Offset is always 0: an upload is not
// resumed across runs. Commit checks size and digest before the request that commits,
// so a wrong byte never reaches the registry; Close without Commit cancels the upload
// session (a best-effort DELETE).
//
// A connection lost during the upload fails Write or Commit with an error wrapping
// [io.ErrUnexpectedEOF]; the blob is then uploaded again by opening it anew.
func (r *Repository) OpenBlob(ctx context.Context, d ocitypes.Descriptor) (BlobWriter, error) {
	exists, err := r.Exists(ctx, d)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("%s in %s: %w", d.Digest, r.ref.Name(), ErrAlreadyExists)
	}
	if isManifestDesc(d) {
		if d.Size > ocitypes.MaxManifestSize {
			return nil, fmt.Errorf("manifest %s: %d bytes: %w", d.Digest, d.Size, ErrSizeExceedsLimit)
		}
		return &manifestUpload{r: r, ctx: ctx, d: d, digester: d.Digest.Algorithm().Digester()}, nil
	}
	if !d.Digest.Algorithm().Available() {
		return nil, errdef.Blob(d.Digest, fmt.Errorf("digest algorithm %s: %w", d.Digest.Algorithm(), ErrUnsupported))
	}
	loc, chunk, err := r.startUpload(ctx, d)
	if err != nil {
		return nil, err
	}
	u := &blobUpload{r: r, ctx: ctx, d: d, loc: loc, chunk: chunk, digester: d.Digest.Algorithm().Digester()}
	switch {
	case d.Size <= monolithicMax:
		u.mode = uploadBuffered
		u.buf = make([]byte, 0, d.Size)
	default:
		u.mode = r.c.pushes.mode(r.ref.Registry())
	}
	return u, nil
}

// startUpload opens an upload session: POST /v2/<name>/blobs/uploads/, 202 and a
// Location.
func (r *Repository) startUpload(ctx context.Context, d ocitypes.Descriptor) (*url.URL, int, error) {
	ctx, u := r.pushEndpoint(ctx, "/blobs/uploads/")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), http.NoBody)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.c.do(req, http.StatusAccepted)
	if err != nil {
		return nil, 0, r.refused("upload "+d.Digest.String(), err)
	}
	drainClose(resp.Body)
	loc, err := uploadLocation(ctx, resp)
	if err != nil {
		return nil, 0, r.refused("upload "+d.Digest.String(), err)
	}
	return loc, uploadChunkSize(resp.Header.Get("OCI-Chunk-Min-Length")), nil
}

// uploadChunkSize is the chunk size for a session whose POST answered
// OCI-Chunk-Min-Length: chunkSize, or the registry's minimum when larger, up to
// maxChunkSize.
func uploadChunkSize(minLength string) int {
	n, err := strconv.Atoi(strings.TrimSpace(minLength))
	if err != nil || n <= chunkSize {
		return chunkSize
	}
	return min(n, maxChunkSize)
}

// uploadLocation resolves an upload response's Location against its request, keeping
// its query (distribution's _state token, presigned parameters) byte for byte. A
// Location on another origin is followed without the registry's credentials (the auth
// layer authenticates only the origin a request was made for), but never from https
// to plain http, nor from a public registry to an internal address.
func uploadLocation(ctx context.Context, resp *http.Response) (*url.URL, error) {
	raw := resp.Header.Get("Location")
	if raw == "" {
		return nil, &protocolError{fmt.Errorf("%s %s: %d without a Location", resp.Request.Method, redactURL(resp.Request.URL), resp.StatusCode)}
	}
	u, err := resp.Request.URL.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, &protocolError{fmt.Errorf("%s %s: Location %q is not an http(s) URL", resp.Request.Method, redactURL(resp.Request.URL), oneLine(raw))}
	}
	from := resp.Request.URL
	if sameOrigin(u, from) {
		return u, nil
	}
	if from.Scheme == "https" && u.Scheme == "http" {
		return nil, fmt.Errorf("upload Location %s downgrades %s to plain http: %w", redactURL(u), from.Host, ErrCrossOrigin)
	}
	internal, err := isInternalHost(ctx, u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("upload Location %s: %w", redactURL(u), err)
	}
	if internal {
		if regInternal, err := isInternalHost(ctx, from.Hostname()); err != nil || !regInternal {
			return nil, fmt.Errorf("registry %s sends uploads to internal address %s: %w", from.Host, u.Host, ErrCrossOrigin)
		}
	}
	return u, nil
}

// withDigest returns loc with digest=d added to its query, the existing query kept as is.
func withDigest(loc *url.URL, d digest.Digest) *url.URL {
	u := *loc
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += "digest=" + url.QueryEscape(d.String())
	return &u
}

// blobUpload is the BlobWriter of a blob push.
type blobUpload struct {
	r        *Repository
	ctx      context.Context
	d        ocitypes.Descriptor
	loc      *url.URL // the latest Location of the session
	mode     uploadMode
	digester digest.Digester
	n        int64 // bytes written
	buf      []byte
	sent     int64   // chunked mode: bytes acknowledged by PATCHes
	chunk    int     // chunked mode: the chunk size
	last     [1]byte // streamed modes: the final byte, sent once Commit checked the digest
	stream   *streamRequest
	err      error // sticky: the upload failed
	done     bool  // committed or cancelled
}

// Offset is 0: an upload restarts from the first byte.
func (u *blobUpload) Offset() int64 { return 0 }

func (u *blobUpload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if u.done {
		return 0, errors.New("write after commit")
	}
	if u.n+int64(len(p)) > u.d.Size {
		u.fail(errdef.Blob(u.d.Digest, fmt.Errorf("more than its %d bytes: %w", u.d.Size, ErrDigestMismatch)))
		return 0, u.err
	}
	u.digester.Hash().Write(p)
	u.n += int64(len(p))
	switch {
	case u.mode == uploadBuffered:
		u.buf = append(u.buf, p...)
	case u.mode == uploadChunked:
		for rest := p; len(rest) > 0; {
			if u.buf == nil {
				u.buf = make([]byte, 0, min(int64(u.chunk), u.d.Size))
			}
			k := min(len(rest), u.chunk-len(u.buf))
			u.buf = append(u.buf, rest[:k]...)
			rest = rest[k:]
			// A full chunk goes now unless it is the last: that one rides the PUT.
			if len(u.buf) == u.chunk && u.sent+int64(u.chunk) < u.d.Size {
				if err := u.patchChunk(); err != nil {
					u.fail(err)
					return 0, u.err
				}
			}
		}
	default:
		if u.stream == nil {
			u.stream = u.startStream()
		}
		// The last byte is held back until Commit has checked the digest: the
		// registry cannot complete a body it has not received whole.
		q := p
		if u.n == u.d.Size && len(p) > 0 {
			q = p[:len(p)-1]
			u.last[0] = p[len(p)-1]
		}
		if err := u.stream.write(q); err != nil {
			u.fail(err)
			return 0, u.err
		}
	}
	return len(p), nil
}

// Commit checks what was written against the descriptor, then completes the upload.
func (u *blobUpload) Commit() error {
	if u.err != nil {
		return u.err
	}
	if u.done {
		return errors.New("commit after commit")
	}
	if u.n < u.d.Size {
		u.fail(errdef.Blob(u.d.Digest, fmt.Errorf("%d of %d bytes: %w", u.n, u.d.Size, io.ErrUnexpectedEOF)))
		return u.err
	}
	if got := u.digester.Digest(); got != u.d.Digest {
		u.fail(errdef.Blob(u.d.Digest, fmt.Errorf("content hashes to %s: %w", got, ErrDigestMismatch)))
		return u.err
	}
	var err error
	switch {
	case u.mode == uploadBuffered:
		err = u.put(u.buf, -1)
	case u.mode == uploadChunked:
		err = u.put(u.buf, u.sent)
	default:
		err = u.stream.finish()
		if err == nil && u.mode == uploadStream {
			err = u.put(nil, -1)
			var re *ResponseError
			if errors.As(err, &re) && re.StatusCode >= 500 {
				// ECR failed an empty closing PUT after a PATCH; chunks end with
				// data in the PUT.
				err = u.r.switchMode(u.ctx, uploadStream, uploadChunked, err)
			}
		}
	}
	if err != nil {
		u.fail(err)
		return u.err
	}
	u.done = true
	u.buf = nil
	return nil
}

// Close cancels an upload that was not committed.
func (u *blobUpload) Close() error {
	if u.done {
		return nil
	}
	u.done = true
	u.buf = nil
	if u.stream != nil {
		u.stream.abort(errors.New("upload cancelled"))
	}
	u.r.cancelUpload(u.ctx, u.loc)
	return nil
}

// fail records the upload's first error; the session is cancelled by Close.
func (u *blobUpload) fail(err error) {
	if u.err == nil {
		u.err = err
	}
	if u.stream != nil {
		u.stream.abort(u.err)
	}
}

// put completes the upload with PUT <location>?digest=, carrying body (which starts
// at offset start of the blob; start < 0: no Content-Range) when there is one.
func (u *blobUpload) put(body []byte, start int64) error {
	ctx, _ := u.r.pushEndpoint(u.ctx, "")
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(u.loc, u.d.Digest).String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if start >= 0 && len(body) > 0 {
		req.Header.Set("Content-Range", contentRange(start, len(body)))
	}
	resp, err := u.r.c.do(req, http.StatusCreated, http.StatusOK, http.StatusNoContent)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// A retried PUT whose first attempt committed finds no session: the
			// blob is there if a HEAD says so.
			if ok, herr := u.r.Exists(u.ctx, u.d); herr == nil && ok {
				return nil
			}
		}
		return u.r.uploadError(u.d, err)
	}
	drainClose(resp.Body)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != u.d.Digest.String() {
		return fmt.Errorf("push %s: the registry stored it as %s: %w", u.d.Digest, oneLine(h), ErrDigestMismatch)
	}
	return nil
}

// patchChunk sends the buffered chunk with Content-Range and takes the next Location.
// The offset is the client's count: ECR answers 201 with a stale Range.
func (u *blobUpload) patchChunk() error {
	ctx, _ := u.r.pushEndpoint(u.ctx, "")
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u.loc.String(), bytes.NewReader(u.buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", contentRange(u.sent, len(u.buf)))
	resp, err := u.r.c.do(req, http.StatusAccepted, http.StatusCreated, http.StatusNoContent)
	if err != nil {
		return u.r.uploadError(u.d, err)
	}
	drainClose(resp.Body)
	if resp.Header.Get("Location") != "" {
		loc, err := uploadLocation(ctx, resp)
		if err != nil {
			return u.r.uploadError(u.d, err)
		}
		u.loc = loc
	}
	u.sent += int64(len(u.buf))
	u.buf = u.buf[:0]
	return nil
}

// contentRange is the spec's chunk range: "start-end", inclusive, no unit, no total.
func contentRange(start int64, n int) string {
	return strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(start+int64(n)-1, 10)
}

// uploadError describes a failed upload request of d.
// A failure that is neither a response, a protocol breach nor the end of the context
// is a lost connection, and wraps io.ErrUnexpectedEOF.
func (r *Repository) uploadError(d ocitypes.Descriptor, err error) error {
	var re *ResponseError
	var pe *protocolError
	if !errors.As(err, &re) && !errors.As(err, &pe) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrCrossOrigin) && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("connection lost: %w: %w", io.ErrUnexpectedEOF, err)
	}
	return r.refused("upload "+d.Digest.String(), err)
}

// cancelUpload abandons an upload session: DELETE <location>, best effort (the spec
// says clients should ignore its failures; distribution wants a delete scope), bounded
// by cancelTimeout and done even when ctx has ended.
func (r *Repository) cancelUpload(ctx context.Context, loc *url.URL) {
	if loc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	ctx, _ = r.pushEndpoint(ctx, "")
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil)
	if err != nil {
		return
	}
	// The client's current token for the repository, and no new one: distribution
	// wants a delete scope here, which a pusher rarely has.
	resp, err := r.c.streamClient().Do(req)
	if err != nil {
		return
	}
	drainClose(resp.Body)
}

// streamRequest is one request whose body is fed by Write through a pipe: a PATCH of
// the whole blob or a PUT ?digest=. Its body cannot be replayed, so it bypasses the
// retry layer (which would buffer it whole): a failure fails the blob.
type streamRequest struct {
	u     *blobUpload
	pw    *io.PipeWriter
	body  *countingReader
	stall *time.Timer // runs while a Write or the answer waits: a registry idle for the read timeout is cut off
	done  chan struct{}
	resp  *http.Response // set when done, nil on error
	err   error          // set when done
}

type countingReader struct {
	r  io.Reader
	n  int64
	mu sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (u *blobUpload) startStream() *streamRequest {
	pr, pw := io.Pipe()
	s := &streamRequest{u: u, pw: pw, body: &countingReader{r: pr}, done: make(chan struct{})}
	method, target := http.MethodPatch, u.loc
	if u.mode == uploadPut {
		method, target = http.MethodPut, withDigest(u.loc, u.d.Digest)
	}
	ctx, _ := u.r.pushEndpoint(u.ctx, "")
	ctx, cancel := context.WithCancelCause(ctx)
	timeout := u.r.c.cfg.readTimeout
	s.stall = time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("the registry made no progress for %s", timeout))
	})
	s.stall.Stop()
	go func() {
		defer close(s.done)
		defer cancel(nil)
		req, err := http.NewRequestWithContext(ctx, method, target.String(), io.NopCloser(s.body))
		if err != nil {
			s.err = err
			pr.CloseWithError(err)
			return
		}
		req.ContentLength = u.d.Size
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := u.r.c.streamClient().Do(req)
		if err != nil {
			if ctxErr := u.ctx.Err(); ctxErr != nil {
				s.err = ctxErr
			} else {
				if cause := context.Cause(ctx); cause != nil {
					err = cause // stalled
				}
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err
				}
				// The session URL's query is opaque state, long and of no use to a reader.
				s.err = fmt.Errorf("%s %s: connection lost after %d of %d bytes: %w: %w",
					method, redactURL(&url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path}),
					s.body.count(), u.d.Size, io.ErrUnexpectedEOF, err)
			}
		} else if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated &&
			resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			s.err = newResponseError(resp)
		} else {
			drainClose(resp.Body)
			s.resp = resp
		}
		if s.err != nil {
			pr.CloseWithError(s.err)
		} else {
			pr.Close()
		}
	}()
	return s
}

// write feeds p to the request body; when the request ended early it returns why.
func (s *streamRequest) write(p []byte) error {
	if len(p) == 0 {
		return nil // an empty pipe write would still wait for a read
	}
	s.stall.Reset(s.u.r.c.cfg.readTimeout)
	_, err := s.pw.Write(p)
	s.stall.Stop()
	if err != nil {
		<-s.done
		return s.result()
	}
	return nil
}

// finish sends the held-back last byte, ends the body and waits for the response.
func (s *streamRequest) finish() error {
	u := s.u
	if u.d.Size > 0 {
		if err := s.write(u.last[:]); err != nil {
			return err
		}
	}
	s.pw.Close()
	s.stall.Reset(u.r.c.cfg.readTimeout) // the answer is due soon after the last byte
	<-s.done
	s.stall.Stop()
	if err := s.result(); err != nil {
		return err
	}
	if u.mode == uploadStream {
		loc, err := uploadLocation(u.ctx, s.resp)
		if err != nil {
			return u.r.uploadError(u.d, err)
		}
		u.loc = loc
	} else if h := s.resp.Header.Get("Docker-Content-Digest"); h != "" && h != u.d.Digest.String() {
		return fmt.Errorf("push %s: the registry stored it as %s: %w", u.d.Digest, oneLine(h), ErrDigestMismatch)
	}
	return nil
}

// result turns the ended request into the blob's error: nil on success, a refusal
// (and the host's next upload mode) or a lost connection.
func (s *streamRequest) result() error {
	u := s.u
	if s.err == nil {
		if s.body.count() < u.d.Size {
			return u.r.uploadError(u.d, &protocolError{fmt.Errorf("the registry answered after %d of %d bytes", s.body.count(), u.d.Size)})
		}
		return nil
	}
	var re *ResponseError
	if errors.As(s.err, &re) {
		next, switchMode := u.mode, false
		switch re.StatusCode {
		case http.StatusMethodNotAllowed, http.StatusNotImplemented:
			next, switchMode = uploadPut, u.mode == uploadStream
		case http.StatusRequestEntityTooLarge, http.StatusRequestedRangeNotSatisfiable:
			next, switchMode = uploadChunked, true
		case http.StatusBadRequest:
			switchMode = re.hasCode("SIZE_INVALID", "CONTENT_LENGTH_INVALID")
			next = uploadChunked
		}
		if switchMode && next != u.mode {
			return u.r.switchMode(u.ctx, u.mode, next, u.r.uploadError(u.d, s.err))
		}
	}
	return u.r.uploadError(u.d, s.err)
}

// abort ends the request with err (its body read fails) and waits for it.
func (s *streamRequest) abort(err error) {
	s.pw.CloseWithError(err)
	<-s.done
}

// switchMode records that the registry refused an upload in form from, so that the
// next upload to it uses next, and returns err as a [modeSwitchError].
func (r *Repository) switchMode(ctx context.Context, from, next uploadMode, err error) error {
	host := r.ref.Registry()
	r.c.pushes.setMode(host, next)
	r.c.logger.DebugContext(ctx, "push: upload form refused, switching", "host", host, "from", from, "to", next, "error", err)
	return &modeSwitchError{err: err, mode: next}
}

// modeSwitchError is a blob upload refused in a form that the host does not accept;
// the next upload to the host uses mode, so uploading the blob again succeeds.
type modeSwitchError struct {
	err  error
	mode uploadMode
}

func (e *modeSwitchError) Error() string {
	return e.err.Error() + " (the next upload uses " + e.mode.String() + ")"
}
func (e *modeSwitchError) Unwrap() error { return e.err }

// retryableUpload reports whether uploading a blob again may succeed after err, a
// failure of a push's BlobWriter: a lost connection, a registry in trouble (5xx, 429),
// or an upload form the registry refused and that the next attempt changes. A refusal
// (401, 403, 400 ...), a wrong blob or an ended context is final.
func retryableUpload(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrCrossOrigin) {
		return false
	}
	var ms *modeSwitchError
	if errors.As(err, &ms) {
		return true
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// streamClient sends requests whose body streams: no retry layer, the auth layer's
// credentials for the origin the request was made for (the token the POST before it
// obtained), and no redirect (a body that is not replayable cannot follow one).
func (c *Client) streamClient() *http.Client {
	return &http.Client{
		Transport:     &streamTransport{c: c},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type streamTransport struct{ c *Client }

func (t *streamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if target, _ := req.Context().Value(authTargetKey{}).(*authTarget); target != nil && target.origin != nil && sameOrigin(target.origin, req.URL) {
		authz, _, err := c.auth.authorization(req.Context(), c.auth.hostAuth(req.URL), target.scopes, nil)
		if err != nil {
			return nil, err
		}
		req = withAuthorization(req, authz)
	}
	next := &userAgentTransport{next: &loggingTransport{next: c.base, logger: c.logger}, userAgent: c.cfg.userAgent}
	return next.RoundTrip(req)
}

// manifestUpload is the BlobWriter of a manifest or index push: the bytes are
// buffered and PUT by digest on Commit.
type manifestUpload struct {
	r        *Repository
	ctx      context.Context
	d        ocitypes.Descriptor
	digester digest.Digester
	buf      []byte
	done     bool
}

func (m *manifestUpload) Offset() int64 { return 0 }

func (m *manifestUpload) Write(p []byte) (int, error) {
	if m.done {
		return 0, errors.New("write after commit")
	}
	if int64(len(m.buf)+len(p)) > m.d.Size {
		return 0, fmt.Errorf("manifest %s: more than its %d bytes: %w", m.d.Digest, m.d.Size, ErrDigestMismatch)
	}
	m.buf = append(m.buf, p...)
	return len(p), nil
}

// Commit checks the bytes and PUTs them at /v2/<name>/manifests/<digest>.
func (m *manifestUpload) Commit() error {
	if m.done {
		return errors.New("commit after commit")
	}
	if int64(len(m.buf)) < m.d.Size {
		return fmt.Errorf("manifest %s: %d of %d bytes: %w", m.d.Digest, len(m.buf), m.d.Size, io.ErrUnexpectedEOF)
	}
	m.digester.Hash().Write(m.buf)
	if got := m.digester.Digest(); got != m.d.Digest {
		return fmt.Errorf("manifest %s: content hashes to %s: %w", m.d.Digest, got, ErrDigestMismatch)
	}
	if err := m.r.putManifest(m.ctx, m.d.Digest.String(), m.d, m.buf); err != nil {
		return err
	}
	m.done = true
	return nil
}

// Close releases the buffer; nothing was sent unless Commit succeeded.
func (m *manifestUpload) Close() error {
	m.done = true
	m.buf = nil
	return nil
}

// putManifest PUTs body at /v2/<name>/manifests/<reference> with Content-Type
// d.MediaType and remembers it for Tag.
func (r *Repository) putManifest(ctx context.Context, reference string, d ocitypes.Descriptor, body []byte) error {
	ctx, u := r.pushEndpoint(ctx, "/manifests/"+reference)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", d.MediaType)
	resp, err := r.c.do(req, http.StatusCreated, http.StatusOK, http.StatusAccepted, http.StatusNoContent)
	if err != nil {
		return r.refused(fmt.Sprintf("manifest %s (%s) refused", d.Digest, d.MediaType), err)
	}
	drainClose(resp.Body)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.Digest.String() {
		return fmt.Errorf("push to %s: manifest %s stored as %s: %w", r.ref.Name(), d.Digest, oneLine(h), ErrDigestMismatch)
	}
	r.c.pushes.remember(r.manifestKey(d.Digest), d.MediaType, body)
	return nil
}

func (r *Repository) manifestKey(d digest.Digest) string {
	return r.ref.Registry() + "/" + r.ref.Repository() + "@" + d.String()
}

// Tag points a tag at root, a manifest or index already pushed: the tag of the
// repository's reference when it has one, else name's tag; with neither (a digest
// reference) there is nothing to do. One HEAD of the tag (a tag already on root costs
// nothing more), then one PUT of root's bytes, which the client remembers from pushing
// them, or fetches from the repository by digest (one GET) when it does not.
func (r *Repository) Tag(ctx context.Context, name ref.Reference, root ocitypes.Descriptor) error {
	tag := r.ref.Tag()
	if tag == "" {
		tag = name.Tag()
	}
	if tag == "" {
		return nil
	}
	if cur, err := r.tagDigest(ctx, tag); err == nil && cur == root.Digest {
		return nil
	}
	var body []byte
	mediaType := root.MediaType
	if m, ok := r.c.pushes.lookup(r.manifestKey(root.Digest)); ok {
		body, mediaType = m.body, m.mediaType
	} else {
		got, b, err := r.c.manifest(ctx, r.ref.WithDigest(root.Digest))
		if err != nil {
			return r.refused("tag "+tag, err)
		}
		body = b
		if mediaType == "" {
			mediaType = got.MediaType
		}
	}
	d := root
	d.MediaType = mediaType
	if err := r.putManifest(ctx, tag, d, body); err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	return nil
}

// tagDigest returns the digest tag points at (one HEAD); an error when it does not
// exist or the registry does not say.
func (r *Repository) tagDigest(ctx context.Context, tag string) (digest.Digest, error) {
	ctx, u := r.pushEndpoint(ctx, "/manifests/"+tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", strings.Join(ocitypes.ManifestAccept, ", "))
	resp, err := r.c.do(req, http.StatusOK)
	if err != nil {
		return "", err
	}
	drainClose(resp.Body)
	return digest.Parse(resp.Header.Get("Docker-Content-Digest"))
}

// Mount asks the registry to link blob d from the repository from into r without
// uploading it: POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repository>, with
// one token for pull,push on r and pull on from. It returns an error wrapping
// [ErrAlreadyExists] when the blob is now in r (201), so a copy treats it as a blob the
// destination already had. It returns nil when the blob was not mounted and must be
// uploaded: from is on another registry (no request is made), or the registry declined
// and opened an upload session (202), which Mount cancels. Any other error (a registry
// that refuses mounts, 401 from Harbor for an unknown project) also means "upload it":
// callers may ignore it.
func (r *Repository) Mount(ctx context.Context, d ocitypes.Descriptor, from *Repository) error {
	if from == nil || !strings.EqualFold(from.ref.Registry(), r.ref.Registry()) || isManifestDesc(d) {
		return nil
	}
	if err := checkBlobDescriptor(d); err != nil {
		return err
	}
	fromScope := RepositoryScope(from.ref.Repository(), "pull")
	ctx, u := r.pushEndpoint(ctx, "/blobs/uploads/", fromScope)
	u.RawQuery = "mount=" + url.QueryEscape(d.Digest.String()) + "&from=" + url.QueryEscape(from.ref.Repository())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), http.NoBody)
	if err != nil {
		return err
	}
	resp, err := r.c.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return r.refused("mount "+d.Digest.String()+" from "+from.ref.Repository(), err, fromScope)
	}
	drainClose(resp.Body)
	if resp.StatusCode == http.StatusAccepted {
		if loc, err := uploadLocation(ctx, resp); err == nil {
			r.cancelUpload(ctx, loc)
		}
		return nil
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.Digest.String() {
		return fmt.Errorf("mount %s from %s: the registry linked %s: %w", d.Digest, from.ref.Repository(), oneLine(h), ErrDigestMismatch)
	}
	return fmt.Errorf("%s mounted from %s into %s: %w", d.Digest, from.ref.Repository(), r.ref.Name(), ErrAlreadyExists)
}

var _ Destination = (*Repository)(nil)
