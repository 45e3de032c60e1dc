// Package serve serves an OCI image layout directory over the OCI distribution API,
// read-only: what `ocipull serve` runs, and an [http.Handler] that programs and tests
// can embed.
//
// A repository is the repository part of each image's full name in index.json
// (io.containerd.image.name): "127.0.0.1:5000/many:latest" is tag latest of
// repository many, "docker.io/library/alpine:3.20" tag 3.20 of library/alpine (also
// reachable as alpine). An image named only by a tag (org.opencontainers.image.ref.name,
// as skopeo writes) belongs to the default repository, the layout directory's base
// name (see [DefaultRepository]). Manifests and blobs are served in each repository
// that references them.
//
// Nothing served can differ from its digest: manifests, indexes and blobs up to
// [MaxVerifiedSize] are hashed when read (and kept in a small cache); larger blobs
// are checked by size, then sent from the file with sendfile. A blob missing or
// corrupt on disk gets 404 or 500 and a log line naming it.
package serve

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

// MaxVerifiedSize is the size up to which a blob is hashed before it is served:
// manifests, indexes, configs and small layers. Larger blobs are checked by size.
const MaxVerifiedSize = 4 << 20

// Catalog page sizes: the default when a request gives no n, and the largest allowed.
const (
	defaultCatalogPage = 100
	maxCatalogPage     = 1000
)

// Options tunes a [Handler]. The zero value (or nil) serves anonymously and logs
// nothing.
type Options struct {
	// Logger receives one line per request (method, path, status, bytes, duration)
	// at level Info, and the problems found in the layout (a blob missing or corrupt,
	// an index.json that stopped parsing) at level Warn. Default: discard.
	Logger *slog.Logger
	// Users, when set, requires HTTP basic auth with one of its users on every
	// request. Default: none, every request is served.
	Users *Htpasswd
	// DefaultRepository is the repository of images named only by a tag. Default:
	// [DefaultRepository] of the layout's path.
	DefaultRepository string
	// CacheSize bounds the bytes of verified small blobs kept in memory. Default:
	// 8 MiB.
	CacheSize int64
}

// Handler serves a layout directory over the OCI distribution API (see the package
// documentation). It re-reads index.json when it changes (one lstat per request), so
// an image pulled into the directory appears without a restart. A Handler is safe for
// concurrent use.
type Handler struct {
	reader      *layout.Reader
	log         *slog.Logger
	users       *Htpasswd
	defaultRepo string

	mu      sync.Mutex // serialises rebuilds and reload warnings
	view    atomic.Pointer[view]
	lastErr string // the last reload error logged

	cache *blobCache
}

// New opens the layout directory at path (see [layout.OpenReader]) and reads every
// manifest and index its index.json reaches. A path that is not a layout, or an
// index.json that does not parse, is an error wrapping ocistream.ErrInvalidLayout. It
// holds the directory open until Close.
func New(path string, opts *Options) (*Handler, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultRepository == "" {
		o.DefaultRepository = DefaultRepository(path)
	} else if !repoPath.MatchString(o.DefaultRepository) {
		return nil, fmt.Errorf("serve %s: default repository %q is not a valid repository name", path, o.DefaultRepository)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 8 << 20
	}
	r, err := layout.OpenReader(path)
	if err != nil {
		return nil, err
	}
	h := &Handler{reader: r, log: o.Logger, users: o.Users, defaultRepo: o.DefaultRepository, cache: newBlobCache(o.CacheSize)}
	h.view.Store(h.buildView())
	return h, nil
}

// Close releases the layout directory. Requests in flight may fail.
func (h *Handler) Close() error { return h.reader.Close() }

// Repositories returns the names of the repositories served, sorted.
func (h *Handler) Repositories() []string { return h.current().catalog }

// current returns the view of the current index.json, rebuilding it when index.json
// changed.
func (h *Handler) current() *view {
	changed, err := h.reader.Reload()
	if err != nil {
		h.mu.Lock()
		if msg := err.Error(); msg != h.lastErr {
			h.lastErr = msg
			h.log.Warn("index.json changed but cannot be read; serving the previous one", "error", err)
		}
		h.mu.Unlock()
	}
	if changed {
		h.mu.Lock()
		h.lastErr = ""
		h.view.Store(h.buildView())
		h.mu.Unlock()
	}
	return h.view.Load()
}

// ServeHTTP answers one request of the distribution API and logs it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w}
	h.serve(lw, r)
	if lw.status == 0 {
		lw.status = http.StatusOK
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.RequestURI()),
		slog.Int("status", lw.status), slog.Int64("bytes", lw.n),
		slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if h.users != nil {
		user, pass, ok := r.BasicAuth()
		if !ok || !h.users.Check(user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ocipull serve"`)
			writeError(w, r, apiError{http.StatusUnauthorized, codeUnauthorized, "authentication required"})
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, apiError{http.StatusMethodNotAllowed, codeUnsupported, "this registry is read-only"})
		return
	}
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		writeJSON(w, r, "application/json", struct{}{})
		return
	case p == "/v2/_catalog":
		h.serveCatalog(w, r, h.current())
		return
	case !strings.HasPrefix(p, "/v2/"):
		http.NotFound(w, r)
		return
	}
	rest := p[len("/v2/"):]
	var name, kind, arg string
	if n, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		name, kind = n, "tags"
	} else {
		for _, k := range []string{"manifests", "blobs", "referrers"} {
			if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
				name, kind, arg = rest[:i], k, rest[i+len(k)+2:]
				break
			}
		}
	}
	if kind == "" {
		writeError(w, r, apiError{http.StatusNotFound, codeUnsupported, "no such endpoint"})
		return
	}
	if !repoPath.MatchString(name) {
		writeError(w, r, apiError{http.StatusBadRequest, codeNameInvalid, "invalid repository name"})
		return
	}
	v := h.current()
	rp := v.repos[name]
	if rp == nil {
		writeError(w, r, apiError{http.StatusNotFound, codeNameUnknown, "repository " + name + " is not known"})
		return
	}
	switch kind {
	case "tags":
		h.serveTags(w, r, rp)
	case "manifests":
		h.serveManifest(w, r, rp, arg)
	case "blobs":
		h.serveBlob(w, r, rp, arg)
	case "referrers":
		h.serveReferrers(w, r, rp, arg)
	}
}

// pageSize parses the n query parameter: def when absent, an error when not a number
// from 0 to most.
func pageSize(q url.Values, def, most int) (int, bool) {
	s := q.Get("n")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= most
}

// page returns the names of sorted after last, at most n of them, and the Link header
// of the next page ("" when this one is the last).
func page(sorted []string, last string, n int, path string) ([]string, string) {
	i := 0
	if last != "" {
		for i < len(sorted) && sorted[i] <= last {
			i++
		}
	}
	rest := sorted[i:]
	if n >= len(rest) {
		return rest, ""
	}
	out := rest[:n]
	if n == 0 {
		return out, ""
	}
	q := url.Values{"last": {out[n-1]}, "n": {strconv.Itoa(n)}}
	return out, fmt.Sprintf("<%s?%s>; rel=\"next\"", path, q.Encode())
}

func (h *Handler) serveCatalog(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	n, ok := pageSize(q, defaultCatalogPage, maxCatalogPage)
	if !ok {
		writeError(w, r, apiError{http.StatusBadRequest, codePaginationNumber, fmt.Sprintf("n must be a number from 0 to %d", maxCatalogPage)})
		return
	}
	names, link := page(v.catalog, q.Get("last"), n, "/v2/_catalog")
	if link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, r, "application/json", ocitypes.Catalog{Repositories: nonNil(names)})
}

func (h *Handler) serveTags(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	n, ok := pageSize(q, len(rp.tagList), 1<<30)
	if !ok {
		writeError(w, r, apiError{http.StatusBadRequest, codePaginationNumber, "n must be a number, 0 or more"})
		return
	}
	tags, link := page(rp.tagList, q.Get("last"), n, "/v2/"+rp.name+"/tags/list")
	if link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, r, "application/json", ocitypes.TagList{Name: rp.name, Tags: nonNil(tags)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request, rp *repo, reference string) {
	var d ocitypes.Descriptor
	var ok bool
	if dg, err := digest.Parse(reference); err == nil {
		d, ok = rp.manifests[dg]
	} else if tagGrammar.MatchString(reference) {
		d, ok = rp.tags[reference]
	} else if strings.Contains(reference, ":") {
		writeError(w, r, apiError{http.StatusBadRequest, codeDigestInvalid, "invalid digest " + reference})
		return
	}
	if !ok {
		writeError(w, r, apiError{http.StatusNotFound, codeManifestUnknown, "manifest " + reference + " is not known in " + rp.name})
		return
	}
	body, err := h.small(d.Digest, d.Size)
	if err != nil {
		h.blobError(w, r, d.Digest, codeManifestUnknown, err)
		return
	}
	mt := d.MediaType
	if mt == "" {
		mt, _ = ocitypes.MediaTypeOf("", body)
	}
	hd := w.Header()
	hd.Set("Content-Type", mt)
	hd.Set("Docker-Content-Digest", string(d.Digest))
	hd.Set("Etag", `"`+string(d.Digest)+`"`)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, string(d.Digest)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request, rp *repo, arg string) {
	dg, err := digest.Parse(arg)
	if err != nil {
		writeError(w, r, apiError{http.StatusBadRequest, codeDigestInvalid, "invalid digest " + arg})
		return
	}
	size, ok := rp.blobs[dg]
	if !ok {
		writeError(w, r, apiError{http.StatusNotFound, codeBlobUnknown, "blob " + string(dg) + " is not known in " + rp.name})
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Docker-Content-Digest", string(dg))
	hd.Set("Etag", `"`+string(dg)+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	if size <= MaxVerifiedSize {
		body, err := h.small(dg, size)
		if err != nil {
			h.blobError(w, r, dg, codeBlobUnknown, err)
			return
		}
		http.ServeContent(&rangeWriter{w, size}, r, "", time.Time{}, bytes.NewReader(body))
		return
	}
	e, err := h.reader.OpenBlob(dg)
	if err != nil {
		h.blobError(w, r, dg, codeBlobUnknown, err)
		return
	}
	defer e.Close()
	fi, err := e.Stat()
	if err == nil && fi.Size() != size {
		err = fmt.Errorf("%w: %d bytes on disk, %d in its descriptor", errCorrupt, fi.Size(), size)
	}
	if err != nil {
		h.blobError(w, r, dg, codeBlobUnknown, err)
		return
	}
	http.ServeContent(&rangeWriter{w, size}, r, "", time.Time{}, e)
}

// rangeWriter gives every 416 answer of http.ServeContent the Content-Range header
// RFC 9110 asks for ("bytes */size"), which it leaves out for a malformed Range.
type rangeWriter struct {
	http.ResponseWriter
	size int64
}

func (w *rangeWriter) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable && w.Header().Get("Content-Range") == "" {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", w.size))
	}
	w.ResponseWriter.WriteHeader(code)
}

// ReadFrom keeps the ResponseWriter's ReadFrom, and so sendfile.
func (w *rangeWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *rangeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *Handler) serveReferrers(w http.ResponseWriter, r *http.Request, rp *repo, arg string) {
	dg, err := digest.Parse(arg)
	if err != nil {
		writeError(w, r, apiError{http.StatusBadRequest, codeDigestInvalid, "invalid digest " + arg})
		return
	}
	list := rp.referrers[dg]
	if at := r.URL.Query().Get("artifactType"); at != "" {
		var kept []ocitypes.Descriptor
		for _, d := range list {
			if d.ArtifactType == at {
				kept = append(kept, d)
			}
		}
		list = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx := ocitypes.Index{MediaType: ocitypes.MediaTypeOCIIndex, Manifests: list}
	idx.SchemaVersion = 2
	if idx.Manifests == nil {
		idx.Manifests = []ocitypes.Descriptor{}
	}
	writeJSON(w, r, ocitypes.MediaTypeOCIIndex, idx)
}

// errCorrupt marks a blob whose file does not match its descriptor.
var errCorrupt = errors.New("corrupt in the layout")

// blobError answers for a blob that could not be served: 404 with notFoundCode when it
// is missing from the layout, else 500; and logs the problem.
func (h *Handler) blobError(w http.ResponseWriter, r *http.Request, dg digest.Digest, notFoundCode string, err error) {
	h.blobProblem(dg, err)
	if errors.Is(err, errdef.ErrBlobMissing) {
		writeError(w, r, apiError{http.StatusNotFound, notFoundCode, string(dg) + " is missing from the layout"})
		return
	}
	writeError(w, r, apiError{http.StatusInternalServerError, codeUnknown, string(dg) + " cannot be served: the layout's copy is damaged"})
}

// blobProblem logs a blob that cannot be served.
func (h *Handler) blobProblem(dg digest.Digest, err error) {
	h.log.Warn("blob cannot be served", "digest", dg, "error", err,
		"hint", "run ocipull verify "+h.reader.Path())
}

// small returns the bytes of blob dg, of the given size (at most MaxVerifiedSize),
// read whole and verified against dg, from the cache when they are there.
func (h *Handler) small(dg digest.Digest, size int64) ([]byte, error) {
	if b, ok := h.cache.get(dg); ok {
		return b, nil
	}
	if size > MaxVerifiedSize {
		return nil, fmt.Errorf("%s of %d bytes: %w: more than %d", dg, size, errdef.ErrSizeExceedsLimit, MaxVerifiedSize)
	}
	e, err := h.reader.OpenBlob(dg)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	b := make([]byte, size)
	n, err := io.ReadFull(e, b)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return nil, fmt.Errorf("%w: %d bytes on disk, %d in its descriptor", errCorrupt, n, size)
	case err != nil:
		return nil, err
	}
	if more, _ := e.Read(make([]byte, 1)); more > 0 {
		return nil, fmt.Errorf("%w: more than the %d bytes of its descriptor on disk", errCorrupt, size)
	}
	if got := dg.Algorithm().FromBytes(b); got != dg {
		return nil, fmt.Errorf("%w: %w: its bytes hash to %s", errCorrupt, errdef.ErrDigestMismatch, got)
	}
	h.cache.put(dg, b)
	return b, nil
}

// blobCache keeps verified small blobs, least recently used first out, up to a total
// size.
type blobCache struct {
	mu    sync.Mutex
	limit int64
	size  int64
	order *list.List // of *cacheEntry, most recent at the front
	byDig map[digest.Digest]*list.Element
}

type cacheEntry struct {
	dg digest.Digest
	b  []byte
}

func newBlobCache(limit int64) *blobCache {
	return &blobCache{limit: limit, order: list.New(), byDig: make(map[digest.Digest]*list.Element)}
}

func (c *blobCache) get(dg digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byDig[dg]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).b, true
}

func (c *blobCache) put(dg digest.Digest, b []byte) {
	if int64(len(b)) > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byDig[dg]; ok {
		return
	}
	c.byDig[dg] = c.order.PushFront(&cacheEntry{dg, b})
	c.size += int64(len(b))
	for c.size > c.limit {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.byDig, e.dg)
		c.size -= int64(len(e.b))
	}
}

// logWriter records the status and the number of body bytes of a response. It keeps
// the ResponseWriter's ReadFrom, so that a file is still sent with sendfile.
type logWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *logWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
