package ocistream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ocistream/ocistream/hosts"
)

// Option configures a [Client]. Options are applied in order by [New], which validates
// the result; a Client never changes after New returns.
type Option func(*config) error

// RetryPolicy bounds the retries of one request (429, 5xx except 501, connection
// errors). A request is never retried after its context ends.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt. Zero disables retries.
	MaxRetries int
	// MinWait and MaxWait bound the exponential backoff between attempts.
	MinWait, MaxWait time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured. A server asking
	// for longer gets no retry: the 429 or 503 is returned at once, its Retry-After
	// reported in [ResponseError.RetryAfter].
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is the policy a Client uses unless [WithRetryPolicy] says
// otherwise: 5 retries, backoff from 200 ms doubling to 5 s, Retry-After honoured up
// to 60 s.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 5, MinWait: 200 * time.Millisecond, MaxWait: 5 * time.Second, MaxRetryAfter: 60 * time.Second}

type config struct {
	credentials   CredentialStore
	userAgent     string
	transport     http.RoundTripper
	tlsConfig     *tls.Config
	rootCAs       *x509.CertPool
	insecureHosts map[string]bool // TLS verification skipped; "*" means every host
	plainHosts    map[string]bool // plain HTTP; "*" means every host
	pageSize      int
	maxPages      int
	retry         RetryPolicy
	logger        *slog.Logger
	readTimeout   time.Duration
	headerTimeout time.Duration
	maxBlobSize   int64
	maxResumes    int
	concurrency   int
	hosts         HostResolver
	retryNotify   func(RetryNotice)
	parallel      ParallelDownload
}

func defaultConfig() config {
	return config{
		userAgent:     "ocistream/" + Version,
		insecureHosts: map[string]bool{},
		plainHosts:    map[string]bool{},
		maxPages:      10000,
		retry:         DefaultRetryPolicy,
		readTimeout:   60 * time.Second,
		headerTimeout: 30 * time.Second,
		maxBlobSize:   DefaultMaxBlobSize,
		maxResumes:    64,
		parallel:      DefaultParallelDownload,
	}
}

// Version is the SDK's version, sent in the default User-Agent.
const Version = "0.1.0"

// WithCredentials sets where the client finds credentials for each registry host.
// The default is anonymous access for every host; [NewKeychain] reads Docker's and
// podman's credential files and helpers.
func WithCredentials(store CredentialStore) Option {
	return func(c *config) error {
		if store == nil {
			return errors.New("WithCredentials: nil store")
		}
		c.credentials = store
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every request. The default is
// "ocistream/<Version>".
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		c.userAgent = ua
		return nil
	}
}

// WithTransport replaces the base transport (the one that makes connections); the
// client still layers its user agent, auth and retries over it. The default is a
// clone of http.DefaultTransport tuned for large downloads. WithTransport cannot be
// combined with [WithTLSConfig], [WithRootCAs] or [WithInsecureSkipVerify], which
// configure the default transport.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *config) error {
		if rt == nil {
			return errors.New("WithTransport: nil transport")
		}
		c.transport = rt
		return nil
	}
}

// WithTLSConfig sets the TLS configuration of the default transport (client
// certificates, minimum version, ...). The default is Go's.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) error {
		c.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithRootCAs sets the certificate authorities trusted for registries and token
// servers, replacing the system pool. The default is the system pool.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *config) error {
		c.rootCAs = pool
		return nil
	}
}

// WithInsecureSkipVerify disables TLS certificate verification for the given hosts
// ("host" or "host:port"), or for every host when none is given. The default verifies
// every host.
func WithInsecureSkipVerify(hosts ...string) Option {
	return func(c *config) error {
		return addHosts(c.insecureHosts, hosts)
	}
}

// WithPlainHTTP makes the client talk plain HTTP to the given registry hosts ("host" or
// "host:port"), or to every host when none is given. Credentials are sent over plain
// HTTP only to those hosts. The default is HTTPS everywhere, except that a loopback
// registry (localhost, 127.0.0.0/8, ::1) answering HTTPS in plain HTTP is asked again
// over HTTP, as docker and crane do; the client remembers it for that host:port, and
// credentials may go to it (they never leave the machine).
func WithPlainHTTP(hosts ...string) Option {
	return func(c *config) error {
		return addHosts(c.plainHosts, hosts)
	}
}

func addHosts(set map[string]bool, hosts []string) error {
	if len(hosts) == 0 {
		set["*"] = true
		return nil
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("invalid host %q: want host or host:port", h)
		}
		set[strings.ToLower(registryHost(h))] = true
	}
	return nil
}

// WithPageSize sets the page size (the n parameter) asked of paginated endpoints when
// a call's [ListOptions] does not set one. The default, zero, lets the registry choose.
func WithPageSize(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("WithPageSize: negative size %d", n)
		}
		c.pageSize = n
		return nil
	}
}

// WithMaxPages bounds the number of pages one walk of [Client.Tags] or [Client.Catalog]
// requests before it fails with [ErrTooManyPages]. The default is 10000.
func WithMaxPages(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxPages: %d is not positive", n)
		}
		c.maxPages = n
		return nil
	}
}

// WithRetryPolicy sets how requests are retried. The default is [DefaultRetryPolicy].
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) error {
		if p.MaxRetries < 0 || p.MinWait < 0 || p.MaxWait < p.MinWait || p.MaxRetryAfter < 0 {
			return fmt.Errorf("WithRetryPolicy: invalid policy %+v", p)
		}
		c.retry = p
		return nil
	}
}

// WithLogger sends a debug record for every HTTP exchange (method, redacted URL,
// status, duration, retries, token fetches) to l. Credentials are never logged. The
// default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithReadTimeout sets how long any response body (a blob, a manifest, a tag list, a
// token) may go without delivering a byte before the connection is abandoned: a blob
// download is then resumed, any other request fails with an error wrapping
// [ErrStalled]. A body must also deliver 1 KiB for every second of d in each span of
// d (60 KiB a minute by default), so that a server trickling a byte now and then
// cannot hold it open. The default is 60 s.
func WithReadTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithReadTimeout: %s is not positive", d)
		}
		c.readTimeout = d
		return nil
	}
}

// WithResponseHeaderTimeout sets how long the client waits for the response headers of
// each attempt of each request (registry, token server, storage redirect) after
// sending it. An attempt that times out is tried once more; a second one fails the
// request with an error wrapping [ErrStalled], so that a server that accepts
// connections and answers nothing costs two timeouts (plus a backoff), not one per
// retry. The default is 30 s.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithResponseHeaderTimeout: %s is not positive", d)
		}
		c.headerTimeout = d
		return nil
	}
}

// DefaultMaxBlobSize is the largest blob a client downloads unless [WithMaxBlobSize]
// says otherwise: 64 GiB, far above any real layer.
const DefaultMaxBlobSize = 64 << 30

// WithMaxBlobSize sets the largest blob size the client accepts from a descriptor. A
// descriptor claiming more (a hostile manifest streaming until the disk fills) fails
// before any byte of it is requested, with an error wrapping [ErrSizeExceedsLimit].
// The default is [DefaultMaxBlobSize].
func WithMaxBlobSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxBlobSize: %d is not positive", n)
		}
		c.maxBlobSize = n
		return nil
	}
}

// WithMaxResumes bounds how many times one blob download is resumed with a Range
// request after its connection breaks. The default is 64; a resume that makes no
// progress counts three times.
func WithMaxResumes(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("WithMaxResumes: negative count %d", n)
		}
		c.maxResumes = n
		return nil
	}
}

// WithConcurrency sets the default number of blobs [Client.Pull] downloads at once
// (and the connections kept per host). The default is [DefaultConcurrency].
func WithConcurrency(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithConcurrency: %d is not positive", n)
		}
		c.concurrency = n
		return nil
	}
}

// HostResolver says where requests for a registry host go: its mirrors, then its
// server, each with its own TLS settings and headers. [*hosts.Config], which reads
// containerd's hosts directories and Docker's certs.d, implements it.
type HostResolver interface {
	// Endpoints returns the endpoints of registry host (as in a reference:
	// "docker.io", "ghcr.io", "localhost:5000") in the order to try them, the server
	// last; nil and no error when nothing is configured for host. It is called for
	// every request, so it must be cheap after the first call for a host, and return
	// the same *tls.Config for the same endpoint each time.
	Endpoints(host string) ([]hosts.Endpoint, error)
}

// WithHosts routes requests through the mirrors r names for each registry host:
// manifests by tag go to the endpoints with the resolve capability, blobs and
// manifests by digest to those with pull, each in order, falling back to the next on
// any error or any status but success; when all fail the error names each (see
// [EndpointsError]). Ping, the catalog and tag lists go to the server alone. A mirror
// is asked with ?ns=<registry> (as containerd does) and authenticated as its own host:
// its challenge gets the keychain's credentials for the mirror, never the upstream's.
// Each endpoint's TLS settings (CAs added to the system pool, client certificates,
// skip_verify) and dial_timeout apply to connections to that endpoint, on top of
// [WithTLSConfig]; they are not applied with [WithTransport]. The default routes
// every request to the registry itself.
func WithHosts(r HostResolver) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("WithHosts: nil resolver")
		}
		c.hosts = r
		return nil
	}
}

// RetryNotice describes a request about to be sent again after a failure.
type RetryNotice struct {
	// Method and URL (credentials redacted) of the request.
	Method, URL string
	// StatusCode is the status that earned the retry, 0 when Err is set.
	StatusCode int
	// Err is the network error that earned the retry, nil when StatusCode is set.
	Err error
	// Attempt is the attempt about to be made (2 for the first retry) of MaxAttempts.
	Attempt, MaxAttempts int
	// Wait is how long the client waits before it.
	Wait time.Duration
}

// String reads "retrying GET https://... (503, attempt 2 of 6) in 1.2s".
func (n RetryNotice) String() string {
	why := strconv.Itoa(n.StatusCode)
	if n.Err != nil {
		why = n.Err.Error()
	}
	return fmt.Sprintf("retrying %s %s (%s, attempt %d of %d) in %s", n.Method, n.URL, why, n.Attempt, n.MaxAttempts, n.Wait.Round(100*time.Millisecond))
}

// WithRetryNotify calls f before each retry of a request, on the goroutine that makes
// it; f must return quickly. The default tells nobody (retries are logged at debug
// level with [WithLogger]).
func WithRetryNotify(f func(RetryNotice)) Option {
	return func(c *config) error {
		c.retryNotify = f
		return nil
	}
}

// WithParallelDownload sets how [Client.Pull] fetches a large blob over several
// connections at once, into destinations that take byte ranges (layout.Dir); zero
// fields keep [DefaultParallelDownload]'s values. A registry that ignores Range, or
// answers it wrongly, gets one stream per blob from then on. Connections 1 turns it
// off. The default is [DefaultParallelDownload].
func WithParallelDownload(p ParallelDownload) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("WithParallelDownload: %w", err)
		}
		c.parallel = p.withDefaults(DefaultParallelDownload)
		return nil
	}
}
