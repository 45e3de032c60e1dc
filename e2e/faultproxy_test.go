package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// always, as a times argument of a faultProxy method, arms the fault for every
// matching request until Reset.
const always = -1

// blobPath matches the path of a blob (not an upload): /v2/<name>/blobs/<digest>.
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// proxyRequest records one request seen by a faultProxy.
type proxyRequest struct {
	Method string
	Path   string
	Range  string // the Range header as received from the client
	Status int    // the status sent to the client
	Bytes  int64  // body bytes sent to the client
	Fault  string // the faults applied, e.g. "drop@1024", "status 429", "" for none
	// Authorization is the Authorization header as received from the client.
	Authorization string
}

// armed is a fault with a remaining count: 0 is off, a negative count never
// runs out.
type armed struct {
	times int
}

// take reports whether the fault applies to one more request and consumes it.
func (a *armed) take() bool {
	switch {
	case a.times == 0:
		return false
	case a.times > 0:
		a.times--
	}
	return true
}

// faultProxy is a reverse proxy in front of a registry that injects faults
// into blob downloads (GET /v2/<name>/blobs/<digest>) on demand. Faults are
// armed for a number of requests and may be changed while requests are in
// flight. Everything is closed by t.Cleanup; a stalled response is released
// then.
type faultProxy struct {
	// URL is the proxy's base URL, "http://127.0.0.1:port".
	URL string
	// Host is "127.0.0.1:port", to use in image references.
	Host string
	// Client is an http.Client for the proxy; it is closed with the server.
	Client *http.Client
	// Server is the underlying httptest server.
	Server *httptest.Server

	proxy *httputil.ReverseProxy
	done  chan struct{}

	inflight   sync.WaitGroup // handlers running, so Requests can wait for their log entries
	mu         sync.Mutex
	drop       armed
	dropAt     int64
	dropRandom armed
	rng        *rand.Rand
	truncate   armed
	truncCut   int64
	flip       armed
	flipAt     int64
	stall      armed
	stallAt    int64
	stallFor   time.Duration
	status     armed
	statusAny  bool
	statusCode int
	retryAfter string
	noRange    armed
	redirect   armed
	redirectTo *url.URL
	authHeader string
	authSet    bool
	log        []proxyRequest
	bytesBy    map[string]int64

	nRequests, nBlobGets, nFaults atomic.Int64
}

// newFaultProxy starts a proxy forwarding every request to target (a
// registry's base URL) with the client's Host header kept, so the registry's
// absolute Location headers point back to the proxy. For an https target the
// proxy does not verify the target's certificate. It costs one httptest
// server, closed by t.Cleanup.
func newFaultProxy(t testing.TB, target *url.URL) *faultProxy {
	t.Helper()
	fp := &faultProxy{done: make(chan struct{}), bytesBy: map[string]int64{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the target is a local test server
	transport.DisableCompression = true
	fp.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
		ErrorLog:  discardLogger,
	}
	srv := httptest.NewUnstartedServer(fp)
	srv.Config.ErrorLog = discardLogger
	srv.Start()
	t.Cleanup(func() {
		close(fp.done)
		srv.Close()
		transport.CloseIdleConnections()
	})
	u, _ := url.Parse(srv.URL)
	fp.URL = srv.URL
	fp.Host = u.Host
	fp.Client = srv.Client()
	fp.Server = srv
	return fp
}

// DropAfter makes the next times blob responses (always: all) close the
// connection after n body bytes: the client sees the headers, including the
// full Content-Length, then n bytes, then an unexpected EOF. The bytes before
// n are flushed to the client before the connection is closed. A body of n
// bytes or fewer is passed through whole (the count is still consumed).
func (fp *faultProxy) DropAfter(n int64, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.drop, fp.dropAt = armed{times}, n
}

// DropRandom makes the next times blob responses close the connection at an
// offset drawn uniformly from [0, Content-Length) by a rand seeded with seed,
// so a run is reproducible.
func (fp *faultProxy) DropRandom(seed int64, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.dropRandom = armed{times}
	fp.rng = rand.New(rand.NewPCG(uint64(seed), 0x5851f42d4c957f2d))
}

// Truncate makes the next times blob responses send all but the last cut
// bytes of their body, then close the connection (the Content-Length header
// still announces the whole body). Responses without a Content-Length are
// passed through whole.
func (fp *faultProxy) Truncate(cut int64, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.truncate, fp.truncCut = armed{times}, cut
}

// FlipByte makes the next times blob responses carry the byte at offset (of
// the response body, so of the range for a 206) XOR 0xFF. A response shorter
// than offset+1 is passed through unchanged but still consumes one count.
func (fp *faultProxy) FlipByte(offset int64, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.flip, fp.flipAt = armed{times}, offset
}

// Stall makes the next times blob responses send their headers and after
// body bytes, flush, then hang for d (or until the client goes away or the
// proxy is closed) before sending the rest.
func (fp *faultProxy) Stall(after int64, d time.Duration, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.stall, fp.stallAt, fp.stallFor = armed{times}, after, d
}

// Status makes the next times blob GETs get code (e.g. 429 or 503) with
// Retry-After: retryAfter (omitted when "") and a distribution-style JSON
// error body, without reaching the registry.
func (fp *faultProxy) Status(code int, retryAfter string, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.status, fp.statusAny, fp.statusCode, fp.retryAfter = armed{times}, false, code, retryAfter
}

// StatusAny is Status for the next times requests of any method and path
// (/v2/, manifests, tags, blobs...).
func (fp *faultProxy) StatusAny(code int, retryAfter string, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.status, fp.statusAny, fp.statusCode, fp.retryAfter = armed{times}, true, code, retryAfter
}

// IgnoreRange strips the Range (and If-Range) header from the next times blob
// GETs, so the registry answers 200 with the whole body.
func (fp *faultProxy) IgnoreRange(times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.noRange = armed{times}
}

// Redirect makes the next times blob GETs get "307 Temporary Redirect" to the
// same path and query under base (e.g. another faultProxy's URL, which is
// another origin), as registries do to send clients to a CDN.
func (fp *faultProxy) Redirect(base *url.URL, times int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.redirect, fp.redirectTo = armed{times}, base
}

// Authorize makes the proxy replace the Authorization header of every
// forwarded request with header (remove it when header is ""), until called
// again (ClearAuthorization restores pass-through). As a Redirect target in
// front of an authenticated registry, it plays a CDN that needs no client
// credentials.
func (fp *faultProxy) Authorize(header string) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.authHeader = header
	fp.authSet = true
}

// ClearAuthorization stops replacing the Authorization header: client
// headers are forwarded as received again.
func (fp *faultProxy) ClearAuthorization() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.authHeader, fp.authSet = "", false
}

// Reset disarms every fault. Counters and the request log are kept.
func (fp *faultProxy) Reset() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.drop, fp.dropRandom, fp.truncate, fp.flip, fp.stall, fp.status, fp.noRange, fp.redirect = armed{}, armed{}, armed{}, armed{}, armed{}, armed{}, armed{}, armed{}
}

// RequestCount returns the number of requests seen (all paths).
func (fp *faultProxy) RequestCount() int64 { return fp.nRequests.Load() }

// BlobGetCount returns the number of blob GETs seen.
func (fp *faultProxy) BlobGetCount() int64 { return fp.nBlobGets.Load() }

// FaultCount returns the number of requests a fault was applied to.
func (fp *faultProxy) FaultCount() int64 { return fp.nFaults.Load() }

// BytesServed returns the body bytes sent to clients for path
// (e.g. "/v2/repo/blobs/sha256:..."), summed over all requests.
func (fp *faultProxy) BytesServed(path string) int64 {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.bytesBy[path]
}

// Requests returns a copy of the log of completed requests, in completion
// order.
func (fp *faultProxy) Requests() []proxyRequest {
	// A client may finish reading a response before the handler that sent it has
	// returned and logged it: wait (briefly) for handlers still running.
	done := make(chan struct{})
	go func() { fp.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]proxyRequest(nil), fp.log...)
}

// plan is the set of faults chosen for one request when it arrives.
type plan struct {
	status     int
	retryAfter string
	noRange    bool
	drop       int64 // -1: none
	dropRandom bool
	truncate   int64 // -1: none
	flip       int64 // -1: none
	stall      int64 // -1: none
	stallFor   time.Duration
	redirectTo *url.URL // nil: none
	setAuth    bool
	authHeader string
}

// choose consumes the armed faults that apply to r.
func (fp *faultProxy) choose(r *http.Request, blobGet bool) plan {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	p := plan{drop: -1, truncate: -1, flip: -1, stall: -1, setAuth: fp.authSet, authHeader: fp.authHeader}
	if (blobGet || fp.statusAny) && fp.status.take() {
		p.status, p.retryAfter = fp.statusCode, fp.retryAfter
		return p
	}
	if !blobGet {
		return p
	}
	if fp.redirect.take() {
		p.redirectTo = fp.redirectTo
		return p
	}
	p.noRange = fp.noRange.take()
	if fp.drop.take() {
		p.drop = fp.dropAt
	}
	p.dropRandom = fp.dropRandom.take()
	if fp.truncate.take() {
		p.truncate = fp.truncCut
	}
	if fp.flip.take() {
		p.flip = fp.flipAt
	}
	if fp.stall.take() {
		p.stall, p.stallFor = fp.stallAt, fp.stallFor
	}
	return p
}

// ServeHTTP applies the chosen faults and proxies the request.
func (fp *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fp.inflight.Add(1)
	defer fp.inflight.Done()
	fp.nRequests.Add(1)
	blobGet := r.Method == http.MethodGet && blobPath.MatchString(r.URL.Path)
	if blobGet {
		fp.nBlobGets.Add(1)
	}
	p := fp.choose(r, blobGet)
	rec := proxyRequest{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization")}

	if p.status != 0 {
		fp.nFaults.Add(1)
		rec.Fault = fmt.Sprintf("status %d", p.status)
		if p.retryAfter != "" {
			w.Header().Set("Retry-After", p.retryAfter)
		}
		code := "UNAVAILABLE"
		msg := "service unavailable"
		if p.status == http.StatusTooManyRequests {
			code, msg = "TOOMANYREQUESTS", "too many requests"
		}
		body := fmt.Sprintf(`{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(p.status)
		n, _ := w.Write([]byte(body))
		rec.Status, rec.Bytes = p.status, int64(n)
		fp.record(rec)
		return
	}

	if p.redirectTo != nil {
		fp.nFaults.Add(1)
		loc := *p.redirectTo
		loc.Path = strings.TrimSuffix(loc.Path, "/") + r.URL.Path
		loc.RawPath, loc.RawQuery = "", r.URL.RawQuery
		rec.Fault = "redirect " + loc.String()
		w.Header().Set("Location", loc.String())
		w.WriteHeader(http.StatusTemporaryRedirect)
		rec.Status = http.StatusTemporaryRedirect
		fp.record(rec)
		return
	}
	if p.setAuth {
		r.Header.Del("Authorization")
		if p.authHeader != "" {
			r.Header.Set("Authorization", p.authHeader)
		}
	}

	fw := &faultWriter{rw: w, plan: p, fp: fp, ctx: r.Context().Done(), status: http.StatusOK}
	if p.noRange {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
		fw.faults = append(fw.faults, "ignore-range")
	}
	defer func() {
		rec.Status, rec.Bytes = fw.status, fw.written
		rec.Fault = strings.Join(fw.faults, ",")
		if rec.Fault != "" {
			fp.nFaults.Add(1)
		}
		fp.record(rec)
	}()
	fp.proxy.ServeHTTP(fw, r)
}

// record appends rec to the log and adds its bytes to the per-path total.
func (fp *faultProxy) record(rec proxyRequest) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.log = append(fp.log, rec)
	fp.bytesBy[rec.Path] += rec.Bytes
}

// errInjected is returned to the reverse proxy once a fault closed the
// connection, which makes it abort the handler.
var errInjected = errors.New("fault proxy closed the connection")

// faultWriter is the ResponseWriter the reverse proxy writes to: it counts
// body bytes and applies the planned body faults at their offsets.
type faultWriter struct {
	rw      http.ResponseWriter
	plan    plan
	fp      *faultProxy
	ctx     <-chan struct{}
	status  int
	written int64
	cutAt   int64 // close the connection once written reaches cutAt; -1: never
	closed  bool
	faults  []string
	started bool
}

// Header returns the response headers.
func (fw *faultWriter) Header() http.Header { return fw.rw.Header() }

// WriteHeader decides the cut offset from the plan and Content-Length.
func (fw *faultWriter) WriteHeader(code int) {
	if fw.started {
		return
	}
	fw.started = true
	fw.status = code
	fw.cutAt = -1
	if code == http.StatusOK || code == http.StatusPartialContent {
		cl, err := strconv.ParseInt(fw.rw.Header().Get("Content-Length"), 10, 64)
		if err != nil {
			cl = -1
		}
		if fw.plan.drop >= 0 {
			fw.cut(fw.plan.drop, fmt.Sprintf("drop@%d", fw.plan.drop))
		}
		if fw.plan.dropRandom && cl > 0 {
			fw.fp.mu.Lock()
			at := fw.fp.rng.Int64N(cl)
			fw.fp.mu.Unlock()
			fw.cut(at, fmt.Sprintf("drop@%d", at))
		}
		if fw.plan.truncate >= 0 && cl >= 0 {
			at := max(cl-fw.plan.truncate, 0)
			fw.cut(at, fmt.Sprintf("truncate@%d", at))
		}
		if fw.plan.flip >= 0 && (cl < 0 || fw.plan.flip < cl) {
			fw.faults = append(fw.faults, fmt.Sprintf("flip@%d", fw.plan.flip))
		}
		if fw.plan.stall >= 0 {
			fw.faults = append(fw.faults, fmt.Sprintf("stall@%d", fw.plan.stall))
		}
	} else {
		fw.plan.flip, fw.plan.stall = -1, -1
	}
	fw.rw.WriteHeader(code)
	if fw.cutAt == 0 {
		fw.closeConn()
	}
}

// cut lowers the offset at which the connection is closed.
func (fw *faultWriter) cut(at int64, name string) {
	if fw.cutAt < 0 || at < fw.cutAt {
		fw.cutAt = at
	}
	fw.faults = append(fw.faults, name)
}

// Write passes p through, flipping, stalling and cutting at the planned
// offsets.
func (fw *faultWriter) Write(p []byte) (int, error) {
	if !fw.started {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.closed {
		return 0, errInjected
	}
	total := 0
	for len(p) > 0 {
		chunk := p
		// Stop the chunk at the next offset where something happens.
		for _, at := range []int64{fw.cutAt, fw.plan.stall, fw.plan.flip} {
			if at >= fw.written && at < fw.written+int64(len(chunk)) && at != fw.written {
				chunk = chunk[:at-fw.written]
			}
		}
		if fw.plan.stall >= 0 && fw.plan.stall == fw.written {
			fw.plan.stall = -1
			if err := fw.hang(); err != nil {
				return total, err
			}
		}
		if fw.plan.flip >= 0 && fw.plan.flip == fw.written {
			fw.plan.flip = -1
			b := []byte{chunk[0] ^ 0xFF}
			if err := fw.write(b); err != nil {
				return total, err
			}
			total++
			p = p[1:]
		} else {
			if err := fw.write(chunk); err != nil {
				return total, err
			}
			total += len(chunk)
			p = p[len(chunk):]
		}
		if fw.cutAt >= 0 && fw.written >= fw.cutAt {
			fw.closeConn()
			return total, errInjected
		}
	}
	return total, nil
}

// write sends b to the client and counts it.
func (fw *faultWriter) write(b []byte) error {
	n, err := fw.rw.Write(b)
	fw.written += int64(n)
	return err
}

// hang flushes what was written, then waits for the stall duration, the
// client going away or the proxy closing.
func (fw *faultWriter) hang() error {
	_ = http.NewResponseController(fw.rw).Flush()
	timer := time.NewTimer(fw.plan.stallFor)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-fw.ctx:
		return errInjected
	case <-fw.fp.done:
		return errInjected
	}
}

// closeConn flushes what was written and closes the client connection
// abruptly (hijack and close), so the client sees a body shorter than
// Content-Length.
func (fw *faultWriter) closeConn() {
	if fw.closed {
		return
	}
	fw.closed = true
	rc := http.NewResponseController(fw.rw)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		// Without hijacking, aborting the handler closes the connection.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// Flush sends buffered data to the client.
func (fw *faultWriter) Flush() {
	if fw.closed {
		return
	}
	_ = http.NewResponseController(fw.rw).Flush()
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.rw }
