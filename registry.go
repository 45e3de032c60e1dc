// Package ocistream pulls container images from OCI and Docker registries: Docker Hub,
// GHCR, Quay, ECR, ACR, GCR and Artifact Registry, Harbor, a private registry:2.
//
// A [Client] speaks the distribution API (ping, catalog, tags, manifests, blobs) with the
// authentication every real registry needs, and [Client.Pull] streams an image into a
// [Destination] such as an OCI image layout directory or a tar stream (see package
// layout). Lists are Go iterators ([iter.Seq2]) that fetch pages lazily; blobs are
// readers that verify their digest as they stream; nothing is held whole in memory.
package ocistream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/internal/text"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// DefaultConcurrency is the number of blobs a pull downloads at once unless told
// otherwise: enough streams to fill a fast link without oversubscribing a small machine.
var DefaultConcurrency = max(4, runtime.GOMAXPROCS(0))

// maxListBody bounds one page of a tag list or catalog (a hostile registry could send
// gigabytes); 8 MiB holds about 60,000 maximal tags.
const maxListBody = 8 << 20

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Client talks to registries. It is safe for concurrent use by multiple goroutines;
// its token cache is shared by every call. Create one with [New] and reuse it.
type Client struct {
	cfg    config
	http   *http.Client // user agent → auth → retry → logging → base
	base   http.RoundTripper
	auth   *authTransport
	logger *slog.Logger

	loopbackPlain sync.Map   // host:port → true: a loopback registry found speaking plain HTTP
	plainOrigins  sync.Map   // host:port → true: an endpoint configured with http://
	rangeHosts    rangeHosts // registries found not to serve ranges (parallel.go)
	pushes        *pushState // upload modes and recent manifests (push.go)
}

// New returns a Client configured by opts. It makes no request.
func New(opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.transport != nil && (cfg.tlsConfig != nil || cfg.rootCAs != nil || len(cfg.insecureHosts) > 0) {
		return nil, errors.New("WithTransport cannot be combined with TLS options: configure TLS on the transport")
	}
	if cfg.concurrency == 0 {
		cfg.concurrency = DefaultConcurrency
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := cfg.transport
	if base == nil {
		base = newBaseTransport(&cfg)
		if cfg.hosts != nil {
			base = &endpointTransport{next: base, template: tunedTransport(&cfg), cfg: &cfg}
		}
	}
	bounded := &deadlineTransport{next: base, header: cfg.headerTimeout, read: cfg.readTimeout}
	logged := &loggingTransport{next: bounded, logger: logger}
	retried := &stallBudgetTransport{next: newRetryTransport(logged, cfg.retry, logger, cfg.retryNotify)}
	c := &Client{cfg: cfg, base: base, logger: logger, pushes: &pushState{modes: map[string]uploadMode{}}}
	c.auth = &authTransport{
		plainOK:     c.plainOK,
		next:        retried,
		credentials: cfg.credentials,
		tokenClient: &http.Client{Transport: &userAgentTransport{next: retried, userAgent: cfg.userAgent}, CheckRedirect: tokenRedirect},
		plainHosts:  cfg.plainHosts,
		logger:      logger,
		hosts:       map[string]*hostAuth{},
	}
	c.http = &http.Client{
		Transport:     &userAgentTransport{next: c.auth, userAgent: cfg.userAgent},
		CheckRedirect: checkRedirect,
	}
	return c, nil
}

// registryHost maps a registry name as users write it to the API host: Docker Hub's
// names become "registry-1.docker.io"; a scheme or trailing slash is dropped.
func registryHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if ref.IsHub(s) {
		return ref.HubRegistry
	}
	return s
}

// scheme returns "http" for hosts marked plain and for loopback registries found
// speaking plain HTTP, else "https".
func (c *Client) scheme(host string) string {
	if hostIn(c.cfg.plainHosts, &url.URL{Host: host}) {
		return "http"
	}
	if _, ok := c.loopbackPlain.Load(strings.ToLower(host)); ok {
		return "http"
	}
	return "https"
}

// endpoint builds the URL of path on host and tags ctx so the auth layer may
// authenticate requests to that origin (and only to it) for scopes, and so that
// [Client.do] may route the request to the host's mirrors.
func (c *Client) endpoint(ctx context.Context, host, path string, scopes ...Scope) (context.Context, *url.URL) {
	u := &url.URL{Scheme: c.scheme(host), Host: host, Path: path}
	return withRoute(withAuthTarget(ctx, u, scopes...), host, u), u
}

// send sends req and turns any status not in ok into a *ResponseError (reading and
// closing the body). On success the caller owns resp.Body. A loopback registry that
// answers HTTPS in plain HTTP is asked again over HTTP (see plainFallback).
func (c *Client) send(req *http.Request, ok ...int) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil && c.plainFallback(req, err) {
		req = asPlain(req)
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return nil, c.transportError(req, err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	return nil, newResponseError(resp)
}

// transportError names the request in a network error, keeping the chain intact.
func (c *Client) transportError(req *http.Request, err error) error {
	if ctxErr := req.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return ctxErr
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), err)
}

// newResponseError reads (a bounded part of) resp's body, closes it, and describes it.
func newResponseError(resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{
		Method:     resp.Request.Method,
		URL:        redactURL(resp.Request.URL),
		StatusCode: resp.StatusCode,
		RateLimit:  parseRateLimit(resp.Header),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if resp.Request.Method == http.MethodHead {
		return e
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if errs, ok := ocitypes.ParseErrorEnvelope(body); ok {
		e.Errors = errs
	} else {
		e.Detail = summarizeBody(body)
	}
	return e
}

// summarizeBody turns a non-envelope error body into one short line: Docker Hub's
// {"details": ...}, a plain-text message, nothing for HTML pages.
func summarizeBody(body []byte) string {
	var hub struct {
		Details string `json:"details"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &hub) == nil {
		for _, s := range []string{hub.Details, hub.Message, hub.Error} {
			if s != "" {
				return oneLine(s)
			}
		}
		return ""
	}
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") {
		return "" // HTML or XML: not worth a line
	}
	return oneLine(s)
}

func oneLine(s string) string { return text.OneLine(s, 200) }

// Ping checks that registry ("host[:port]", or "docker.io") speaks the distribution
// API and that the client may use it, authenticating if the registry asks. One GET of
// /v2/, plus a token request when the registry answers with a challenge.
func (c *Client) Ping(ctx context.Context, registry string) error {
	host := registryHost(registry)
	if host == "" {
		return errors.New("ping: empty registry name")
	}
	ctx, u := c.endpoint(ctx, host, "/v2/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", registry, err)
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return fmt.Errorf("ping %s: %w", registry, err)
	}
	drainClose(resp.Body)
	return nil
}

// ListOptions tunes one walk of [Client.Tags] or [Client.Catalog]. A nil *ListOptions
// means the client's defaults.
type ListOptions struct {
	// PageSize is the n parameter of each page. Zero uses the client's [WithPageSize].
	PageSize int
	// Last starts the walk after this name (exclusive), as the registry orders names.
	Last string
	// MaxPages bounds the pages of this walk. Zero uses the client's [WithMaxPages].
	MaxPages int
}

// PageRequest asks for one page of a list. The zero value asks for the first page with
// the registry's page size.
type PageRequest struct {
	// PageSize is the n parameter; zero lets the registry choose.
	PageSize int
	// Last asks for the names after this one.
	Last string
	// Next is the URL of a registry's Link rel="next" header, as returned in
	// [Page.Next]; when set, PageSize and Last are ignored. It must be on the
	// registry's origin.
	Next string
}

// Page is one page of a list.
type Page struct {
	// Items are the names on this page, in the registry's order.
	Items []string
	// Next asks for the following page; nil on the last page.
	Next *PageRequest
}

// TagsPage fetches one page of repository's tags: one GET of /v2/<name>/tags/list.
// When the page's Link header is refused (another origin) the page's items are
// returned with the error.
// repository is a name without tag, like "ubuntu" or "ghcr.io/owner/app". It is the
// primitive under [Client.Tags], for walks that resume later or in another process.
func (c *Client) TagsPage(ctx context.Context, repository string, p PageRequest) (Page, error) {
	r, err := ref.ParseRepository(repository)
	if err != nil {
		return Page{}, err
	}
	return c.listPage(ctx, r.Registry(), "/v2/"+r.Repository()+"/tags/list", RepositoryScope(r.Repository(), "pull"), p, func(body []byte) ([]string, error) {
		tl, err := ocitypes.ParseTagList(body)
		return tl.Tags, err
	})
}

// CatalogPage fetches one page of registry's repositories: one GET of /v2/_catalog.
// Many hosted registries (Docker Hub, GHCR, GitLab.com) refuse the catalog; they
// answer [ErrUnauthorized] or [ErrDenied].
func (c *Client) CatalogPage(ctx context.Context, registry string, p PageRequest) (Page, error) {
	host := registryHost(registry)
	if host == "" {
		return Page{}, errors.New("catalog: empty registry name")
	}
	return c.listPage(ctx, host, "/v2/_catalog", CatalogScope(), p, func(body []byte) ([]string, error) {
		cat, err := ocitypes.ParseCatalog(body)
		return cat.Repositories, err
	})
}

func (c *Client) listPage(ctx context.Context, host, path string, scope Scope, p PageRequest, parse func([]byte) ([]string, error)) (Page, error) {
	ctx, u := c.endpoint(ctx, host, path, scope)
	if p.Next != "" {
		next, err := url.Parse(p.Next)
		if err != nil {
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err // without the URL, which may hold userinfo
			}
			return Page{}, fmt.Errorf("page url %q: %w", ref.RedactUserinfo(p.Next), err)
		}
		if !sameOrigin(next, u) {
			return Page{}, fmt.Errorf("page url %s is not on %s: %w", redactURL(next), u.Host, ErrCrossOrigin)
		}
		u = next
	} else {
		q := url.Values{}
		if p.PageSize > 0 {
			q.Set("n", strconv.Itoa(p.PageSize))
		}
		if p.Last != "" {
			q.Set("last", p.Last)
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return Page{}, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxListBody)
	if err != nil {
		return Page{}, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	items, err := parse(body)
	if err != nil {
		return Page{}, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	page := Page{Items: items}
	next, err := nextLink(resp)
	if err != nil {
		return page, err // the items are good; only the way on is refused
	}
	if next != nil && len(items) > 0 {
		page.Next = &PageRequest{Next: next.String()}
	}
	return page, nil
}

// nextLink returns the rel="next" target of resp's Link headers resolved against the
// request URL, nil when there is none. A target on another origin is refused.
func nextLink(resp *http.Response) (*url.URL, error) {
	for _, v := range resp.Header.Values("Link") {
		target, ok := parseNextLink(v)
		if !ok {
			continue
		}
		u, err := resp.Request.URL.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("link header %q: %w", v, err)
		}
		if !sameOrigin(u, resp.Request.URL) {
			return nil, fmt.Errorf("next page %s is not on %s: %w", redactURL(u), resp.Request.URL.Host, ErrCrossOrigin)
		}
		return u, nil
	}
	return nil, nil
}

// parseNextLink finds the link with rel="next" in one Link header value (RFC 8288),
// tolerating several links, unquoted rel values and trailing separators.
func parseNextLink(v string) (string, bool) {
	for v != "" {
		v = strings.TrimLeft(v, " \t,")
		if !strings.HasPrefix(v, "<") {
			return "", false
		}
		end := strings.IndexByte(v, '>')
		if end < 0 {
			return "", false
		}
		target := v[1:end]
		if strings.ContainsAny(target, "<> ") {
			return "", false // not a URI reference (RFC 3986 excludes these)
		}
		v = v[end+1:]
		// The link's parameters run to the next "," that starts another link.
		params := v
		if i := strings.Index(v, ",<"); i >= 0 {
			params, v = v[:i], v[i+1:]
		} else if i := strings.Index(v, ", <"); i >= 0 {
			params, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		for _, p := range strings.Split(params, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			val = strings.Trim(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(val), ",")), `"`)
			for _, rel := range strings.Fields(val) {
				if strings.EqualFold(rel, "next") {
					return target, true
				}
			}
		}
	}
	return "", false
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort returns u's host with its port made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return net.JoinHostPort(u.Hostname(), "80")
	case "https":
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

// Tags returns an iterator over the tags of repository ("ubuntu", "ghcr.io/owner/app"),
// in the registry's order (lexical for conforming registries). Pages are requested
// lazily, one GET each, following the registry's Link headers on the same origin; each
// range starts again at the first page. Iteration stops at the first error, which is
// yielded as the final pair with an empty tag; breaking out of the loop costs no
// further request. A walk longer than MaxPages pages, or one whose cursor repeats,
// ends with [ErrTooManyPages].
func (c *Client) Tags(ctx context.Context, repository string, opts *ListOptions) iter.Seq2[string, error] {
	return c.walk(ctx, "tags "+repository, opts, func(ctx context.Context, p PageRequest) (Page, error) {
		return c.TagsPage(ctx, repository, p)
	})
}

// Catalog returns an iterator over the repositories of registry ("host[:port]"), with
// the same contract as [Client.Tags]. Many hosted registries refuse the catalog.
func (c *Client) Catalog(ctx context.Context, registry string, opts *ListOptions) iter.Seq2[string, error] {
	return c.walk(ctx, "catalog "+registry, opts, func(ctx context.Context, p PageRequest) (Page, error) {
		return c.CatalogPage(ctx, registry, p)
	})
}

func (c *Client) walk(ctx context.Context, what string, opts *ListOptions, page func(context.Context, PageRequest) (Page, error)) iter.Seq2[string, error] {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	if o.PageSize == 0 {
		o.PageSize = c.cfg.pageSize
	}
	if o.MaxPages == 0 {
		o.MaxPages = c.cfg.maxPages
	}
	return func(yield func(string, error) bool) {
		req := &PageRequest{PageSize: o.PageSize, Last: o.Last}
		seen := map[string]bool{}
		for pages := 0; req != nil; pages++ {
			if err := ctx.Err(); err != nil {
				yield("", err)
				return
			}
			if pages == o.MaxPages {
				yield("", fmt.Errorf("%s: more than %d pages: %w", what, o.MaxPages, ErrTooManyPages))
				return
			}
			p, err := page(ctx, *req)
			for _, item := range p.Items {
				if !yield(item, nil) {
					return
				}
			}
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				yield("", fmt.Errorf("%s: %w", what, err))
				return
			}
			req = p.Next
			if req != nil {
				if seen[req.Next] {
					yield("", fmt.Errorf("%s: registry repeated the page cursor %s: %w", what, req.Next, ErrTooManyPages))
					return
				}
				seen[req.Next] = true
			}
		}
	}
}

// Resolve returns the descriptor (media type, digest, size) of the manifest reference
// names, with one HEAD request; it does not count as a pull on Docker Hub. When the
// registry omits Docker-Content-Digest (some do) it falls back to [Client.Manifest].
func (c *Client) Resolve(ctx context.Context, reference string) (ocitypes.Descriptor, error) {
	r, err := ref.Parse(reference)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	return c.resolve(ctx, r)
}

func (c *Client) resolve(ctx context.Context, r ref.Reference) (ocitypes.Descriptor, error) {
	req, err := c.manifestRequest(ctx, http.MethodHead, r)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("resolve %s: %w", r, err)
	}
	drainClose(resp.Body)
	dg, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	mt := mediaTypeOnly(resp.Header.Get("Content-Type"))
	if derr != nil || resp.ContentLength < 0 || !(ocitypes.IsIndex(mt) || ocitypes.IsManifest(mt)) {
		desc, _, err := c.manifest(ctx, r)
		return desc, err
	}
	if r.Digest() != "" && dg != r.Digest() {
		return ocitypes.Descriptor{}, fmt.Errorf("resolve %s: registry answered digest %s: %w", r, dg, ErrDigestMismatch)
	}
	return ocitypes.Descriptor{MediaType: mt, Digest: dg, Size: resp.ContentLength}, nil
}

// Manifest fetches the manifest or index reference names (a tag or a digest) and
// returns its descriptor and raw bytes, with one GET. The bytes are verified against
// the digest in the reference, else against the registry's Docker-Content-Digest, and
// bounded by [ocitypes.MaxManifestSize]. Docker schema 1 manifests are refused with
// [ErrUnsupported].
func (c *Client) Manifest(ctx context.Context, reference string) (ocitypes.Descriptor, []byte, error) {
	r, err := ref.Parse(reference)
	if err != nil {
		return ocitypes.Descriptor{}, nil, err
	}
	return c.manifest(ctx, r)
}

func (c *Client) manifest(ctx context.Context, r ref.Reference) (ocitypes.Descriptor, []byte, error) {
	req, err := c.manifestRequest(ctx, http.MethodGet, r)
	if err != nil {
		return ocitypes.Descriptor{}, nil, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", r, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > ocitypes.MaxManifestSize {
		return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: %d bytes: %w", r, resp.ContentLength, ErrSizeExceedsLimit)
	}
	body, err := readLimited(resp.Body, ocitypes.MaxManifestSize)
	if err != nil {
		return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", r, err)
	}
	want := r.Digest()
	if want == "" {
		if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
			want, err = digest.Parse(h)
			if err != nil {
				return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: Docker-Content-Digest %q: %w", r, h, err)
			}
		}
	}
	got := digest.Canonical.FromBytes(body)
	if want != "" {
		if !want.Algorithm().Available() {
			return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: digest algorithm %s: %w", r, want.Algorithm(), ErrUnsupported)
		}
		if got = want.Algorithm().FromBytes(body); got != want {
			return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: body hashes to %s, want %s: %w", r, got, want, ErrDigestMismatch)
		}
	}
	mt, err := ocitypes.MediaTypeOf(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return ocitypes.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", r, err)
	}
	return ocitypes.Descriptor{MediaType: mt, Digest: got, Size: int64(len(body))}, body, nil
}

func (c *Client) manifestRequest(ctx context.Context, method string, r ref.Reference) (*http.Request, error) {
	ctx, u := c.endpoint(ctx, r.Registry(), "/v2/"+r.Repository()+"/manifests/"+r.Reference(), RepositoryScope(r.Repository(), "pull"))
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", strings.Join(ocitypes.ManifestAccept, ", "))
	return req, nil
}

// BlobDescriptor returns the descriptor of blob dgst in repository: its size from a
// HEAD request (one request, following redirects). Storage hosts that refuse HEAD on
// presigned URLs (GHCR's S3) are asked with a GET whose body is not read. The media
// type is "application/octet-stream": registries do not know what a blob is.
func (c *Client) BlobDescriptor(ctx context.Context, repository string, dgst digest.Digest) (ocitypes.Descriptor, error) {
	r, err := ref.ParseRepository(repository)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	if err := dgst.Validate(); err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("blob digest %q: %w", dgst, err)
	}
	var last error
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		ctx, u := c.endpoint(ctx, r.Registry(), "/v2/"+r.Repository()+"/blobs/"+dgst.String(), RepositoryScope(r.Repository(), "pull"))
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return ocitypes.Descriptor{}, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := c.do(req, http.StatusOK)
		if err != nil {
			last = err
			var re *ResponseError
			if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusMethodNotAllowed) && method == http.MethodHead {
				continue
			}
			break
		}
		resp.Body.Close()
		if resp.ContentLength < 0 {
			return ocitypes.Descriptor{}, fmt.Errorf("blob %s: the registry did not say its size", dgst)
		}
		return ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: resp.ContentLength}, nil
	}
	return ocitypes.Descriptor{}, errdef.Blob(dgst, last)
}

// mediaTypeOnly strips parameters from a Content-Type value.
func mediaTypeOnly(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// readLimited reads all of r, failing with ErrSizeExceedsLimit past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("body larger than %d bytes: %w", limit, ErrSizeExceedsLimit)
	}
	return body, nil
}

// drainClose reads a little of body so the connection can be reused, then closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}
