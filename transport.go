package ocistream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// The transport stack every request of a Client goes through, built once by New:
// user agent → auth (auth.go) → retries → logging → stall deadlines (deadline.go) →
// the base transport (TLS per host; mirrors' endpoints are chosen in route.go).

// newBaseTransport returns the tuned transport with the client's TLS settings, and a
// second one, speaking only HTTP/1.1, for the chunks of parallel downloads (see
// ownConnection).
func newBaseTransport(cfg *config) http.RoundTripper {
	t := tunedTransport(cfg)
	tc := cfg.tlsConfig
	if tc == nil {
		tc = &tls.Config{}
	}
	if cfg.rootCAs != nil {
		tc.RootCAs = cfg.rootCAs
	}
	t.TLSClientConfig = tc
	var insecure *http.Transport
	switch {
	case cfg.insecureHosts["*"]:
		tc.InsecureSkipVerify = true
	case len(cfg.insecureHosts) > 0:
		// Some hosts skip verification: a second transport serves them.
		insecure = t.Clone()
		itc := tc.Clone()
		itc.InsecureSkipVerify = true
		insecure.TLSClientConfig = itc
	}
	pick := func(t, insecure *http.Transport) http.RoundTripper {
		if insecure == nil {
			return t
		}
		return &hostSwitchTransport{hosts: cfg.insecureHosts, match: insecure, other: t}
	}
	own := http1Only(t, cfg)
	return &connSplitTransport{shared: pick(t, insecure), own: pick(own, http1Only(insecure, cfg))}
}

// ownConnKey marks the context of a request that needs a connection of its own.
type ownConnKey struct{}

// ownConnection returns ctx marked so that its requests through the default transport
// go over HTTP/1.1, each on a connection of its own. The chunks of a parallel download
// need that: storage servers and CDNs cap the bandwidth of each TCP connection, and
// HTTP/2 would multiplex every chunk on one connection, at one connection's speed.
func ownConnection(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownConnKey{}, true)
}

// connSplitTransport sends the requests marked by ownConnection to own, the others to
// shared.
type connSplitTransport struct{ shared, own http.RoundTripper }

func (t *connSplitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context().Value(ownConnKey{}) != nil {
		return t.own.RoundTrip(req)
	}
	return t.shared.RoundTrip(req)
}

// http1Only returns a clone of t that speaks only HTTP/1.1 and keeps enough idle
// connections for every chunk connection of a pull; nil for nil.
func http1Only(t *http.Transport, cfg *config) *http.Transport {
	if t == nil {
		return nil
	}
	h1 := t.Clone()
	h1.ForceAttemptHTTP2 = false
	if h1.TLSClientConfig != nil {
		h1.TLSClientConfig.NextProtos = nil // a clone of a used transport offers h2
	}
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)
	h1.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 4*cfg.parallel.Connections)
	return h1
}

// tunedTransport clones http.DefaultTransport and tunes it for a few large parallel
// downloads: more idle connections per host, bigger socket buffers, no transparent
// gzip (blobs must arrive byte-exact).
func tunedTransport(cfg *config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(cfg.concurrency*2, 8)
	t.DisableCompression = true
	t.ReadBufferSize = 256 << 10
	t.WriteBufferSize = 64 << 10
	return t
}

type hostSwitchTransport struct {
	hosts        map[string]bool
	match, other http.RoundTripper
}

func (t *hostSwitchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if hostIn(t.hosts, req.URL) {
		return t.match.RoundTrip(req)
	}
	return t.other.RoundTrip(req)
}

// hostIn reports whether u's host (with or without its port) is in set.
func hostIn(set map[string]bool, u *url.URL) bool {
	if set["*"] {
		return true
	}
	h := strings.ToLower(u.Host)
	return set[h] || set[strings.ToLower(u.Hostname())]
}

// checkRedirect follows up to 10 redirects, refusing https → http downgrades. The
// auth layer decides per hop whether credentials go along (only to the origin the
// request was made for).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme == "http" {
		return fmt.Errorf("redirect from %s to plain http %s refused", redactURL(prev.URL), redactURL(req.URL))
	}
	return nil
}

// tokenRedirect is checkRedirect for requests to token servers. A request that carries
// a secret (a password or refresh token in its form, an ACR access token, Basic
// credentials) never leaves the origin it was sent to: a redirect elsewhere, of any
// status (a 307 or 308 would post the form again), is refused with an error wrapping
// [ErrCrossOrigin]. An anonymous token request may follow a redirect to another
// origin, without any Authorization header.
func tokenRedirect(req *http.Request, via []*http.Request) error {
	if err := checkRedirect(req, via); err != nil {
		return err
	}
	first := via[0]
	if sameOrigin(req.URL, first.URL) {
		return nil
	}
	if carriesSecret(first) {
		status := 0
		if req.Response != nil {
			status = req.Response.StatusCode
		}
		return fmt.Errorf("token server %s redirected (%d) a request carrying credentials to %s: refused: %w",
			redactURL(first.URL), status, redactURL(req.URL), ErrCrossOrigin)
	}
	req.Header.Del("Authorization")
	return nil
}

// userAgentTransport sets User-Agent on requests that lack one.
type userAgentTransport struct {
	next      http.RoundTripper
	userAgent string
}

func (t *userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.userAgent != "" && req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	return t.next.RoundTrip(req)
}

// loggingTransport records every attempt at debug level.
type loggingTransport struct {
	next   http.RoundTripper
	logger *slog.Logger
}

func (t *loggingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.logger.Enabled(req.Context(), slog.LevelDebug) {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	attrs := []any{"method", req.Method, "url", redactURL(req.URL), "duration", time.Since(start).Round(time.Millisecond)}
	if rng := req.Header.Get("Range"); rng != "" {
		attrs = append(attrs, "range", rng)
	}
	if err != nil {
		t.logger.DebugContext(req.Context(), "http", append(attrs, "error", err)...)
	} else {
		t.logger.DebugContext(req.Context(), "http", append(attrs, "status", resp.StatusCode)...)
	}
	return resp, err
}

// newRetryTransport wraps next with go-retryablehttp: 429 and 5xx (except 501) and
// transient connection errors are retried with exponential backoff, Retry-After is
// honoured up to the policy's cap, and nothing is retried after the context ends. A
// permanent error (see permanent) fails at once. notify, when not nil, hears of each
// retry before its wait.
func newRetryTransport(next http.RoundTripper, p RetryPolicy, logger *slog.Logger, notify func(RetryNotice)) http.RoundTripper {
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport:     next,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		RetryMax:     p.MaxRetries,
		RetryWaitMin: p.MinWait,
		RetryWaitMax: p.MaxWait,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if isStall(err) && stalls(ctx) >= maxStalls {
				return false, nil // the server accepts and answers nothing: give up
			}
			if permanent(err) {
				return false, nil // asking again won't help: fail now
			}
			if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
				if ra := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ra > p.MaxRetryAfter {
					return false, nil
				}
			}
			if retry, _ := retryablehttp.DefaultRetryPolicy(ctx, resp, err); !retry {
				return false, nil
			}
			st, _ := ctx.Value(retryStateKey{}).(*retryState)
			if st == nil {
				return true, nil
			}
			if st.retries++; st.retries > p.MaxRetries {
				return true, nil // retryablehttp gives up now: no wait, no notice
			}
			// The wait happens here, not in Backoff, which cannot tell which request
			// it is for (it sees no context when a connection failed).
			wait := backoff(p.MinWait, p.MaxWait, st.retries-1)
			if resp != nil {
				if ra := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ra > 0 {
					wait = min(ra, p.MaxRetryAfter)
				}
			}
			n := RetryNotice{Method: st.method, URL: st.url, StatusCode: statusOf(resp), Err: err, Attempt: st.retries + 1, MaxAttempts: p.MaxRetries + 1, Wait: wait}
			logger.DebugContext(ctx, "retry", "method", n.Method, "url", n.URL, "error", err, "status", n.StatusCode, "attempt", n.Attempt, "wait", wait)
			if notify != nil {
				notify(n)
			}
			if resp != nil {
				drainClose(resp.Body) // the connection is free while waiting
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-t.C:
			}
			return true, nil
		},
		Backoff: func(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 },
		// The last response goes back as is (so its status and body make the error),
		// except when there is an error too, which wins: net/http wants one or the other.
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if err != nil && resp != nil {
				resp.Body.Close()
				return nil, err
			}
			return resp, err
		},
	}
	return &retryTransport{next: &retryablehttp.RoundTripper{Client: rc}}
}

// retryTransport gives each request a retryState for the retry layer's CheckRetry.
type retryTransport struct{ next http.RoundTripper }

// retryState counts the retries of one request.
type retryState struct {
	method, url string
	retries     int
}

type retryStateKey struct{}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := &retryState{method: req.Method, url: redactURL(req.URL)}
	return t.next.RoundTrip(req.WithContext(context.WithValue(req.Context(), retryStateKey{}, st)))
}

// permanent reports whether a network error will not mend by asking again within
// seconds: a refused connection (nothing listens there), a name that does not exist
// (NXDOMAIN), an HTTP server on an HTTPS port, a certificate that does not verify, a
// server that refused the TLS handshake (a client certificate missing). Timeouts,
// resets and temporary DNS failures are retried.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	var (
		dnsErr *net.DNSError
		rhe    tls.RecordHeaderError
		cve    *tls.CertificateVerificationError
		opErr  *net.OpError
	)
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) ||
		errors.As(err, &rhe) || errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &cve) ||
		(errors.As(err, &opErr) && opErr.Op == "remote error")
}

// backoff is exponential from minWait, capped at maxWait, with full jitter over its
// upper half so that parallel downloads hitting one limit spread out.
func backoff(minWait, maxWait time.Duration, attempt int) time.Duration {
	d := maxWait
	if attempt < 30 && minWait<<attempt < maxWait {
		d = minWait << attempt
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}
