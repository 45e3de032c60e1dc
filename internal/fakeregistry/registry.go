// Package fakeregistry is an in-memory OCI distribution registry for the unit tests of
// this module. It serves repositories of manifests (by tag and digest) and blobs
// (with single byte ranges), tags/list and _catalog with n/last pagination and Link
// headers, optional Basic or Bearer auth with its own token endpoint, and blob and
// manifest uploads (POST, PATCH, PUT, cross-repository mount). It logs every request,
// and tests make it misbehave with Faults: a flipped byte, a connection dropped or
// stalled after N bytes, an ignored Range, a wrong Content-Range, an error status with
// Retry-After, a redirect, a missing Docker-Content-Digest, or any handler.
//
// Prefer the in-process reference registry of e2e/ for behaviour users meet; this fake
// is for fast unit tests and for quirks and attacks the reference registry does not show.
//
//	reg := fakeregistry.Start(t)
//	img := reg.PushImage("team/app", "v1", platform, fakeregistry.Bytes("layer"))
//	reg.AddFault(fakeregistry.Fault{Path: "/blobs/", Drop: true, After: 1000, Times: 1})
//	// ... pull from reg.Host() + "/team/app:v1" ...
//	reg.Served("/blobs/") // blob bytes sent
package fakeregistry

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Registry is the fake registry: an http.Handler whose state is safe for concurrent
// use. Its zero value is not ready; use New or Start.
type Registry struct {
	// Server is the test server Start runs the registry on; nil after New.
	Server *httptest.Server

	mu       sync.Mutex
	repos    map[string]*repository
	blobs    map[digest.Digest]Content
	uploads  map[string]*upload
	uploadID int
	faults   []*fault
	auth     Auth
	nextLink func(r *http.Request, last string, n int) string
	log      []Request
}

// repository is one repository's manifests, tags and linked blobs.
type repository struct {
	tags      map[string]digest.Digest
	manifests map[digest.Digest]manifest
	blobs     map[digest.Digest]bool
}

type manifest struct {
	mediaType string
	body      Bytes
}

// Request is one logged request and what the registry answered.
type Request struct {
	Method string
	Path   string // the URL path, like /v2/a/b/blobs/sha256:...
	Query  url.Values
	Header http.Header // a copy of the request's headers
	Status int         // the status answered; 0 while the response is being written
	Bytes  int64       // response body bytes written
}

// New returns an empty registry that allows anonymous access to everything. Serve it
// with httptest.NewServer, or use Start.
func New() *Registry {
	return &Registry{
		repos:   map[string]*repository{},
		blobs:   map[digest.Digest]Content{},
		uploads: map[string]*upload{},
	}
}

// Start returns a new registry served on loopback over plain HTTP by an httptest
// server (r.Server) that is closed when the test ends.
func Start(tb testing.TB) *Registry {
	tb.Helper()
	r := New()
	r.Server = httptest.NewServer(r)
	tb.Cleanup(r.Server.Close)
	return r
}

// Host returns the host:port of r.Server, the registry part of references to it.
func (r *Registry) Host() string {
	return strings.TrimPrefix(r.Server.URL, "http://")
}

// repo returns the repository name, creating it; r.mu must be held.
func (r *Registry) repo(name string) *repository {
	rp := r.repos[name]
	if rp == nil {
		rp = &repository{tags: map[string]digest.Digest{}, manifests: map[digest.Digest]manifest{}, blobs: map[digest.Digest]bool{}}
		r.repos[name] = rp
	}
	return rp
}

// PutBlob stores c as a blob of repository repo and returns its digest (hashing c
// once).
func (r *Registry) PutBlob(repo string, c Content) digest.Digest {
	d := Digest(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[d] = c
	r.repo(repo).blobs[d] = true
	return d
}

// PutManifest stores body as a manifest of repository repo with mediaType, under its
// digest and, unless tag is "", under tag. It returns the manifest's digest.
func (r *Registry) PutManifest(repo, tag, mediaType string, body []byte) digest.Digest {
	d := digest.FromBytes(body)
	r.mu.Lock()
	defer r.mu.Unlock()
	rp := r.repo(repo)
	rp.manifests[d] = manifest{mediaType: mediaType, body: Bytes(body)}
	if tag != "" {
		rp.tags[tag] = d
	}
	return d
}

// Manifest returns the media type and body of the manifest that reference (a tag or a
// digest) names in repo, and whether there is one. Tests read pushed manifests with it.
func (r *Registry) Manifest(repo, reference string) (mediaType string, body []byte, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.lookupManifest(repo, reference)
	return m.mediaType, m.body, ok
}

// lookupManifest finds a manifest by tag or digest; r.mu must be held.
func (r *Registry) lookupManifest(repo, reference string) (manifest, bool) {
	rp := r.repos[repo]
	if rp == nil {
		return manifest{}, false
	}
	d, err := digest.Parse(reference)
	if err != nil {
		var ok bool
		if d, ok = rp.tags[reference]; !ok {
			return manifest{}, false
		}
	}
	m, ok := rp.manifests[d]
	return m, ok
}

// HasBlob reports whether repository repo holds blob d (pushed, mounted or put).
func (r *Registry) HasBlob(repo string, d digest.Digest) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rp := r.repos[repo]
	return rp != nil && rp.blobs[d]
}

// SetNextLink replaces the Link header of paginated lists (tags/list, _catalog): link
// gets the request, the last item of the page and the page size, and returns the
// whole header value. nil (the default) restores distribution's relative link,
// `</v2/NAME/tags/list?last=LAST&n=N>; rel="next"`.
func (r *Registry) SetNextLink(link func(req *http.Request, last string, n int) string) {
	r.mu.Lock()
	r.nextLink = link
	r.mu.Unlock()
}

// Log returns a copy of every request so far, in the order they arrived.
func (r *Registry) Log() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// Requests returns how many requests the registry received, token requests included.
func (r *Registry) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// BlobGets returns how many GET requests for a blob (not an upload) it received.
func (r *Registry) BlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.log {
		if q.Method == http.MethodGet && strings.Contains(q.Path, "/blobs/") && !strings.Contains(q.Path, "/blobs/uploads/") {
			n++
		}
	}
	return n
}

// Served returns the body bytes of the successful (2xx) responses to requests whose
// path contains pathPart: Served("/blobs/") counts every blob byte sent,
// Served(digest.String()) one blob's.
func (r *Registry) Served(pathPart string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, q := range r.log {
		if q.Status >= 200 && q.Status < 300 && strings.Contains(q.Path, pathPart) {
			n += q.Bytes
		}
	}
	return n
}

// recorder counts the body bytes and records the status of one response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *recorder) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection (to drop it).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP answers one request of the distribution API (and of the token endpoint,
// /token), applying the faults that match it.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	i := len(r.log)
	r.log = append(r.log, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone()})
	r.mu.Unlock()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		r.mu.Lock()
		r.log[i].Status, r.log[i].Bytes = rec.status, rec.bytes
		r.mu.Unlock()
	}()
	r.serve(rec, req)
}

func (r *Registry) serve(w *recorder, req *http.Request) {
	if req.URL.Path == tokenPath {
		r.serveToken(w, req)
		return
	}
	if !strings.HasPrefix(req.URL.Path, "/v2/") {
		http.NotFound(w, req)
		return
	}
	name, kind, rest := route(req.URL.Path)
	if !r.authorize(w, req, name) {
		return
	}
	f := r.faultsFor(req)
	if f.apply(w, req) {
		return
	}
	switch {
	case req.URL.Path == "/v2/":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		_, _ = w.Write([]byte("{}"))
	case req.URL.Path == "/v2/_catalog" && req.Method == http.MethodGet:
		r.mu.Lock()
		names := slices.Sorted(maps.Keys(r.repos))
		r.mu.Unlock()
		r.serveList(w, req, "_catalog", "repositories", names, nil)
	case kind == "tags/list" && req.Method == http.MethodGet:
		r.mu.Lock()
		rp := r.repos[name]
		var tags []string
		if rp != nil {
			tags = slices.Sorted(maps.Keys(rp.tags))
		}
		r.mu.Unlock()
		if rp == nil {
			writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry", name)
			return
		}
		r.serveList(w, req, name+"/tags/list", "tags", tags, map[string]any{"name": name})
	case kind == "manifests" && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		r.serveManifest(w, req, name, rest, f)
	case kind == "manifests" && req.Method == http.MethodPut:
		r.putManifest(w, req, name, rest)
	case kind == "blobs" && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		r.serveBlob(w, req, name, rest, f)
	case kind == "uploads":
		r.serveUpload(w, req, name, rest)
	default:
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "the fake registry does not serve "+req.Method+" "+req.URL.Path, nil)
	}
}

// route splits /v2/NAME/KIND/REST into its parts: kind is "manifests", "blobs",
// "uploads" (blobs/uploads/) or "tags/list"; "" for /v2/ and _catalog.
func route(path string) (name, kind, rest string) {
	p := strings.TrimPrefix(path, "/v2/")
	for _, k := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "uploads"}, {"/blobs/uploads", "uploads"},
		{"/manifests/", "manifests"}, {"/blobs/", "blobs"}, {"/tags/list", "tags/list"},
	} {
		if i := strings.LastIndex(p, k.sep); i > 0 {
			return p[:i], k.kind, p[i+len(k.sep):]
		}
	}
	return "", "", ""
}

// serveList answers one page of a sorted list (tags or repositories) with n/last
// pagination as distribution does, and a Link header when more follow.
func (r *Registry) serveList(w *recorder, req *http.Request, path, field string, items []string, extra map[string]any) {
	q := req.URL.Query()
	n := len(items)
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", v)
			return
		}
	}
	last := q.Get("last")
	start, found := slices.BinarySearch(items, last)
	if last != "" && found {
		start++
	}
	end := min(start+n, len(items))
	page := items[start:end]
	if end < len(items) && len(page) > 0 {
		lastOnPage := page[len(page)-1]
		r.mu.Lock()
		link := r.nextLink
		r.mu.Unlock()
		v := fmt.Sprintf(`</v2/%s?last=%s&n=%d>; rel="next"`, path, url.QueryEscape(lastOnPage), n)
		if link != nil {
			v = link(req, lastOnPage, n)
		}
		w.Header().Set("Link", v)
	}
	body := map[string]any{field: page}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (r *Registry) serveManifest(w *recorder, req *http.Request, name, reference string, f Fault) {
	r.mu.Lock()
	m, ok := r.lookupManifest(name, reference)
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown", reference)
		return
	}
	w.Header().Set("Content-Type", m.mediaType)
	if !f.OmitDigest {
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.body).String())
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		f.writeBody(w, req, m.body, 0, m.body.Size())
	}
}

func (r *Registry) serveBlob(w *recorder, req *http.Request, name, ds string, f Fault) {
	d := digest.Digest(ds)
	r.mu.Lock()
	var c Content
	if rp := r.repos[name]; rp != nil && rp.blobs[d] {
		c = r.blobs[d]
	}
	r.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry", ds)
		return
	}
	size := c.Size()
	start, end, status := int64(0), size, http.StatusOK
	if rng := req.Header.Get("Range"); rng != "" && !f.IgnoreRange {
		var ok bool
		if start, end, ok = parseRange(rng, size); !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UNKNOWN", "requested range not satisfiable", rng)
			return
		}
		first := start
		if f.WrongContentRange {
			first++
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, end-1, size))
		status = http.StatusPartialContent
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.Header().Set("Accept-Ranges", "bytes")
	if !f.OmitDigest {
		w.Header().Set("Docker-Content-Digest", ds)
	}
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		f.writeBody(w, req, c, start, end)
	}
}

// parseRange parses "bytes=a-b" or "bytes=a-" into [start, end) within size.
func parseRange(v string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < start {
			return 0, 0, false
		}
		end = min(last+1, size)
	}
	return start, end, true
}

// writeError answers status with a distribution error envelope of one error.
func writeError(w http.ResponseWriter, status int, code, message string, detail any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": code, "message": message, "detail": detail}}})
}
