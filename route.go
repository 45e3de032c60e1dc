package ocistream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/hosts"
)

// route travels in the context of a registry request (set by Client.endpoint): the
// registry it is for, the URL it was built with, and the capability it needs.
type route struct {
	registry string
	origin   *url.URL
	need     hosts.Capability // zero: the server alone
}

type routeKey struct{}

// endpointKey carries the *hosts.Endpoint a request was sent to, for the base
// transport (its TLS) and the loopback rule.
type endpointKey struct{}

func withRoute(ctx context.Context, registry string, u *url.URL) context.Context {
	return context.WithValue(ctx, routeKey{}, &route{registry: registry, origin: u, need: capabilityOf(u.Path)})
}

// capabilityOf says what a request for path needs, as containerd does: resolve for a
// manifest by tag, pull for a manifest by digest or a blob, nothing (the server alone)
// for the rest: ping, catalog, tag lists (whose page links must stay on one origin).
func capabilityOf(path string) hosts.Capability {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return 0
	}
	rest, last := path[:i], path[i+1:]
	switch {
	case strings.HasSuffix(rest, "/blobs"):
		return hosts.CapabilityPull
	case strings.HasSuffix(rest, "/manifests"):
		if _, err := digest.Parse(last); err == nil {
			return hosts.CapabilityPull
		}
		return hosts.CapabilityResolve
	}
	return 0
}

// EndpointFailure is what one endpoint answered a request that failed everywhere.
type EndpointFailure struct {
	// Endpoint is the endpoint's API root URL.
	Endpoint string
	// Mirror is true for a mirror, false for the registry's server.
	Mirror bool
	// Err is the endpoint's error (a *ResponseError, a network error, ...).
	Err error
}

// EndpointsError is a request that failed on every endpoint [WithHosts] routed it to.
// It unwraps to the last endpoint's error (the server's, when the server was tried):
// errors.Is and errors.As see what the registry itself said, and the message names
// every endpoint's error.
type EndpointsError struct {
	// Failures are the endpoints' errors in the order they were tried.
	Failures []EndpointFailure
}

func (e *EndpointsError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		kind := "server"
		if f.Mirror {
			kind = "mirror"
		}
		parts[i] = kind + " " + f.Endpoint + ": " + f.Err.Error()
	}
	return fmt.Sprintf("all %d endpoints failed: %s", len(e.Failures), strings.Join(parts, "; "))
}

// Unwrap returns the last endpoint's error.
func (e *EndpointsError) Unwrap() error {
	if len(e.Failures) == 0 {
		return nil
	}
	return e.Failures[len(e.Failures)-1].Err
}

// do sends req to the endpoints configured for its registry, in order, until one
// answers a status in ok (see [WithHosts]); without configuration, to the registry
// itself. On success the caller owns resp.Body; any other status becomes a
// *ResponseError.
func (c *Client) do(req *http.Request, ok ...int) (*http.Response, error) {
	rt, eps, err := c.endpointsFor(req)
	if err != nil {
		return nil, err
	}
	if eps == nil {
		return c.send(req, ok...)
	}
	var failures []EndpointFailure
	for i := range eps {
		ep := &eps[i]
		resp, err := c.send(c.endpointRequest(req, rt, ep), ok...)
		if err == nil {
			return resp, nil
		}
		if req.Context().Err() != nil || len(eps) == 1 {
			return nil, err
		}
		c.logger.DebugContext(req.Context(), "endpoint failed", "endpoint", redactURL(ep.URL), "mirror", ep.Mirror, "error", err)
		failures = append(failures, EndpointFailure{Endpoint: redactURL(ep.URL), Mirror: ep.Mirror, Err: err})
	}
	return nil, &EndpointsError{Failures: failures}
}

// endpointsFor returns the endpoints req may go to, nil when it goes as it is (no
// configuration, or not a request the client addressed to a registry).
func (c *Client) endpointsFor(req *http.Request) (*route, []hosts.Endpoint, error) {
	rt, _ := req.Context().Value(routeKey{}).(*route)
	if c.cfg.hosts == nil || rt == nil || !sameOrigin(rt.origin, req.URL) {
		return nil, nil, nil
	}
	all, err := c.cfg.hosts.Endpoints(rt.registry)
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	if rt.need == 0 {
		return rt, all[len(all)-1:], nil
	}
	var eps []hosts.Endpoint
	for _, ep := range all {
		if ep.Capabilities.Has(rt.need) {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, nil, fmt.Errorf("%s %s: no endpoint configured for %s has the %s capability (see %s)",
			req.Method, redactURL(req.URL), rt.registry, rt.need, all[len(all)-1].Source)
	}
	return rt, eps, nil
}

// endpointRequest returns req addressed to ep: its scheme, host and API root, the
// ns parameter when ep is not the registry itself, ep's headers, and an auth target
// on ep's origin (so the mirror's challenge gets the mirror's credentials).
func (c *Client) endpointRequest(req *http.Request, rt *route, ep *hosts.Endpoint) *http.Request {
	u := *req.URL
	u.Scheme, u.Host = ep.URL.Scheme, ep.URL.Host
	if ep.Implicit {
		u.Scheme = c.scheme(ep.URL.Host)
	} else if u.Scheme == "http" {
		c.plainOrigins.Store(strings.ToLower(u.Host), true) // configured so: credentials may go
	}
	u.Path = ep.URL.Path + strings.TrimPrefix(req.URL.Path, "/v2")
	u.RawPath = ""
	if ns := registryName(rt.registry); ns != registryName(ep.URL.Host) {
		q := u.Query()
		q.Set("ns", ns)
		u.RawQuery = q.Encode()
	}
	ctx := req.Context()
	if target, _ := ctx.Value(authTargetKey{}).(*authTarget); target != nil {
		ctx = withAuthTarget(ctx, &u, target.scopes...)
	}
	ctx = context.WithValue(ctx, endpointKey{}, ep)
	r := req.Clone(ctx)
	r.URL, r.Host = &u, ""
	for k, v := range ep.Header {
		r.Header[k] = append(r.Header[k], v...)
	}
	return r
}

// registryName is how containerd names a registry in ns=: Docker Hub is docker.io.
func registryName(host string) string {
	if registryHost(host) == "registry-1.docker.io" {
		return "docker.io"
	}
	return strings.ToLower(host)
}

// isLoopback reports whether host (without port) is localhost, in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// plainOK reports whether credentials may go to u over plain HTTP without the host
// being marked plain: a loopback address, or an endpoint configured with http://.
func (c *Client) plainOK(u *url.URL) bool {
	if isLoopback(u.Hostname()) {
		return true
	}
	_, ok := c.plainOrigins.Load(strings.ToLower(u.Host))
	return ok
}

// plainFallback reports whether a failed HTTPS request should go again over plain
// HTTP, and remembers the answer for its host: only for a loopback registry whose
// scheme nobody chose (not marked plain, no hosts.toml URL), and only when the server
// answered the TLS handshake in plain HTTP. Docker and crane do the same for
// loopback; every other registry stays HTTPS unless configured.
func (c *Client) plainFallback(req *http.Request, err error) bool {
	if req.URL.Scheme != "https" || !isLoopback(req.URL.Hostname()) || !speaksHTTP(err) {
		return false
	}
	if rt, _ := req.Context().Value(routeKey{}).(*route); rt == nil {
		return false
	}
	if ep, _ := req.Context().Value(endpointKey{}).(*hosts.Endpoint); ep != nil && !ep.Implicit {
		return false
	}
	c.loopbackPlain.Store(strings.ToLower(req.URL.Host), true)
	c.logger.DebugContext(req.Context(), "loopback registry speaks plain HTTP", "host", req.URL.Host)
	return true
}

// speaksHTTP reports whether err says the server answered a TLS handshake in HTTP.
func speaksHTTP(err error) bool {
	var rhe tls.RecordHeaderError
	return errors.Is(err, http.ErrSchemeMismatch) || (errors.As(err, &rhe) && string(rhe.RecordHeader[:]) == "HTTP/")
}

// asPlain returns req over plain HTTP, its auth target moved along.
func asPlain(req *http.Request) *http.Request {
	u := *req.URL
	u.Scheme = "http"
	ctx := req.Context()
	if target, _ := ctx.Value(authTargetKey{}).(*authTarget); target != nil && sameOrigin(target.origin, req.URL) {
		ctx = withAuthTarget(ctx, &u, target.scopes...)
	}
	r := req.Clone(ctx)
	r.URL = &u
	return r
}

// endpointTransport gives requests sent to a configured endpoint that endpoint's TLS
// settings and dial timeout. Other hosts reached on the endpoint's behalf (its token
// server, a storage redirect) trust its CAs but get neither its client certificates
// nor its skip_verify. Everything else goes to next.
type endpointTransport struct {
	next     http.RoundTripper
	template *http.Transport // tuned, without TLS settings
	cfg      *config

	mu         sync.Mutex
	transports map[endpointTransportKey]*http.Transport
}

type endpointTransportKey struct {
	tls  *tls.Config
	dial time.Duration
	host string // the endpoint's host:port
	own  bool   // for the endpoint's own origin
}

func (t *endpointTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, _ := req.Context().Value(endpointKey{}).(*hosts.Endpoint)
	if ep == nil || (ep.TLS == nil && ep.DialTimeout == 0) {
		return t.next.RoundTrip(req)
	}
	own := strings.EqualFold(req.URL.Host, ep.URL.Host)
	if !own && (ep.TLS == nil || ep.TLS.RootCAs == nil) {
		return t.next.RoundTrip(req)
	}
	return t.transport(ep, own).RoundTrip(req)
}

func (t *endpointTransport) transport(ep *hosts.Endpoint, own bool) *http.Transport {
	key := endpointTransportKey{tls: ep.TLS, dial: ep.DialTimeout, host: strings.ToLower(ep.URL.Host), own: own}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr := t.transports[key]; tr != nil {
		return tr
	}
	tr := t.template.Clone()
	tc := &tls.Config{}
	if t.cfg.tlsConfig != nil {
		tc = t.cfg.tlsConfig.Clone()
	}
	if t.cfg.rootCAs != nil {
		tc.RootCAs = t.cfg.rootCAs
	}
	if ep.TLS != nil {
		if ep.TLS.RootCAs != nil {
			tc.RootCAs = ep.TLS.RootCAs
		}
		if own {
			tc.Certificates = append(tc.Certificates, ep.TLS.Certificates...)
			tc.InsecureSkipVerify = tc.InsecureSkipVerify || ep.TLS.InsecureSkipVerify
		}
	}
	if own && (t.cfg.insecureHosts["*"] || hostIn(t.cfg.insecureHosts, ep.URL)) {
		tc.InsecureSkipVerify = true
	}
	tr.TLSClientConfig = tc
	if own && ep.DialTimeout > 0 {
		tr.DialContext = (&net.Dialer{Timeout: ep.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if t.transports == nil {
		t.transports = map[endpointTransportKey]*http.Transport{}
	}
	t.transports[key] = tr
	return tr
}
