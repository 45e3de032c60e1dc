package ocistream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/hosts"
	"github.com/ocistream/ocistream/ocitypes"
)

// fakeRegistry serves testManifest for every manifest request, or status when set,
// and records what it was asked.
type fakeRegistry struct {
	status int
	// basic, when set, is the only Authorization the registry accepts; others get a
	// Basic challenge.
	basic string

	mu       sync.Mutex
	requests []*http.Request
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(context.Background()))
	f.mu.Unlock()
	if f.basic != "" && r.Header.Get("Authorization") != f.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
	w.Header().Set("Docker-Content-Digest", digest.FromString(testManifest).String())
	fmt.Fprint(w, testManifest)
}

func (f *fakeRegistry) asked() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

// resolverFunc is a HostResolver from a function.
type resolverFunc func(host string) ([]hosts.Endpoint, error)

func (f resolverFunc) Endpoints(host string) ([]hosts.Endpoint, error) { return f(host) }

// staticHosts configures registry with the given endpoints (mirrors first).
func staticHosts(registry string, eps ...hosts.Endpoint) resolverFunc {
	return func(host string) ([]hosts.Endpoint, error) {
		if host != registry {
			return nil, nil
		}
		return eps, nil
	}
}

func endpointOf(t *testing.T, rawURL string, caps hosts.Capability, mirror bool) hosts.Endpoint {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return hosts.Endpoint{URL: u, Capabilities: caps, Mirror: mirror}
}

const allCaps = hosts.CapabilityPull | hosts.CapabilityResolve | hosts.CapabilityPush

func TestCapabilityOf(t *testing.T) {
	d := digest.FromString("x").String()
	tests := []struct {
		path string
		want hosts.Capability
	}{
		{"/v2/", 0},
		{"/v2/_catalog", 0},
		{"/v2/a/b/tags/list", 0},
		{"/v2/a/manifests/v1", hosts.CapabilityResolve},
		{"/v2/a/manifests/" + d, hosts.CapabilityPull},
		{"/v2/a/blobs/" + d, hosts.CapabilityPull},
		{"/v2/manifests/blobs/manifests/latest", hosts.CapabilityResolve}, // "manifests" and "blobs" are valid path components
	}
	for _, tt := range tests {
		if got := capabilityOf(tt.path); got != tt.want {
			t.Errorf("capabilityOf(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestMirrorRouting checks the order of endpoints, capability filtering, override
// paths, the ns parameter, headers, and the error that names every endpoint.
func TestMirrorRouting(t *testing.T) {
	const registry = "upstream.test"
	refused := "http://" + closedPort(t)
	d := digest.FromString(testManifest)
	tests := []struct {
		name       string
		mirrorCaps hosts.Capability
		mirrorPath string // the mirror's API root
		mirrorDown bool
		mirrorCode int
		serverCode int
		reference  string
		wantMirror []string // paths the mirror saw (with query)
		wantServer int      // requests the server saw
		wantErr    string
	}{
		{name: "resolve from the mirror", mirrorCaps: hosts.CapabilityPull | hosts.CapabilityResolve, mirrorPath: "/v2",
			reference: "a/b:v1", wantMirror: []string{"/v2/a/b/manifests/v1?ns=upstream.test"}},
		{name: "pull-only mirror skipped for a tag", mirrorCaps: hosts.CapabilityPull, mirrorPath: "/v2",
			reference: "a/b:v1", wantServer: 1},
		{name: "pull-only mirror serves a digest", mirrorCaps: hosts.CapabilityPull, mirrorPath: "/v2",
			reference: "a/b@" + d.String(), wantMirror: []string{"/v2/a/b/manifests/" + d.String() + "?ns=upstream.test"}},
		{name: "override path", mirrorCaps: allCaps, mirrorPath: "/v2/proxy-cache",
			reference: "a/b:v1", wantMirror: []string{"/v2/proxy-cache/a/b/manifests/v1?ns=upstream.test"}},
		{name: "mirror 404 falls back", mirrorCaps: allCaps, mirrorPath: "/v2", mirrorCode: http.StatusNotFound,
			reference: "a/b:v1", wantMirror: []string{"/v2/a/b/manifests/v1?ns=upstream.test"}, wantServer: 1},
		{name: "mirror 500 falls back", mirrorCaps: allCaps, mirrorPath: "/v2", mirrorCode: http.StatusInternalServerError,
			reference: "a/b:v1", wantMirror: []string{"/v2/a/b/manifests/v1?ns=upstream.test", "/v2/a/b/manifests/v1?ns=upstream.test", "/v2/a/b/manifests/v1?ns=upstream.test"}, wantServer: 1},
		{name: "mirror down falls back", mirrorCaps: allCaps, mirrorDown: true, reference: "a/b:v1", wantServer: 1},
		{name: "all fail", mirrorCaps: allCaps, mirrorDown: true, serverCode: http.StatusNotFound, reference: "a/b:v1", wantServer: 1,
			wantErr: "all 2 endpoints failed: mirror " + refused + "/v2: GET " + refused + "/v2/a/b/manifests/v1?ns=upstream.test: dial tcp "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mirror := &fakeRegistry{status: tt.mirrorCode}
			msrv := httptest.NewServer(mirror)
			defer msrv.Close()
			server := &fakeRegistry{status: tt.serverCode}
			ssrv := httptest.NewServer(server)
			defer ssrv.Close()
			mirrorURL := msrv.URL + tt.mirrorPath
			if tt.mirrorDown {
				mirrorURL = refused + "/v2"
			}
			m := endpointOf(t, mirrorURL, tt.mirrorCaps, true)
			m.Header = http.Header{"X-Mirror": {"yes"}}
			c := newTestClient(t, ssrv, WithHosts(staticHosts(registry, m, endpointOf(t, ssrv.URL+"/v2", allCaps, false))))
			_, _, err := c.Manifest(t.Context(), registry+"/"+tt.reference)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Manifest: %v", err)
			}
			if tt.wantErr != "" {
				var ee *EndpointsError
				if !strings.Contains(fmt.Sprint(err), tt.wantErr) || !errors.As(err, &ee) || len(ee.Failures) != 2 || !errors.Is(err, ErrNotFound) {
					t.Fatalf("Manifest: %v\nwant an EndpointsError holding %q, unwrapping to the server's not found", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "; server "+ssrv.URL+"/v2: GET "+ssrv.URL+"/v2/a/b/manifests/v1?ns=upstream.test: 404") {
					t.Errorf("the server's error is not named: %v", err)
				}
			}
			var got []string
			for _, r := range mirror.asked() {
				got = append(got, r.URL.RequestURI())
				if r.Header.Get("X-Mirror") != "yes" {
					t.Errorf("mirror request without its configured header")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantMirror) {
				t.Errorf("mirror saw %q, want %q", got, tt.wantMirror)
			}
			if n := len(server.asked()); n != tt.wantServer {
				t.Errorf("server saw %d requests, want %d", n, tt.wantServer)
			}
			for _, r := range server.asked() {
				if r.Header.Get("X-Mirror") != "" {
					t.Errorf("server request %s carries the mirror's header", r.URL)
				}
			}
		})
	}
}

// TestMirrorServerOnly checks that ping and tag lists go to the server alone.
func TestMirrorServerOnly(t *testing.T) {
	mirror, server := &fakeRegistry{}, &fakeRegistry{}
	msrv, ssrv := httptest.NewServer(mirror), httptest.NewServer(server)
	defer msrv.Close()
	defer ssrv.Close()
	c := newTestClient(t, ssrv, WithHosts(staticHosts("upstream.test",
		endpointOf(t, msrv.URL+"/v2", allCaps, true), endpointOf(t, ssrv.URL+"/v2", allCaps, false))))
	if err := c.Ping(t.Context(), "upstream.test"); err != nil {
		t.Fatal(err)
	}
	for range c.Tags(t.Context(), "upstream.test/a", nil) {
	}
	if len(mirror.asked()) != 0 || len(server.asked()) != 2 {
		t.Errorf("mirror saw %d requests, server %d; want 0 and 2", len(mirror.asked()), len(server.asked()))
	}
}

// TestMirrorCredentials checks that a mirror's challenge gets the mirror's
// credentials: the keychain is asked for the mirror's host, and the upstream's
// credentials never reach the mirror.
func TestMirrorCredentials(t *testing.T) {
	mirror := &fakeRegistry{basic: "Basic " + basicAuth("mirror-user", "mirror-pass")}
	msrv := httptest.NewServer(mirror)
	defer msrv.Close()
	var mu sync.Mutex
	var asked []string
	creds := CredentialFunc(func(_ context.Context, host string) (Credential, error) {
		mu.Lock()
		asked = append(asked, host)
		mu.Unlock()
		switch host {
		case hostOf(msrv):
			return Credential{Username: "mirror-user", Password: "mirror-pass"}, nil
		case "upstream.test":
			return Credential{Username: "upstream-user", Password: "upstream-pass"}, nil
		}
		return Credential{}, nil
	})
	c := newTestClient(t, msrv, WithCredentials(creds), WithHosts(staticHosts("upstream.test",
		endpointOf(t, msrv.URL+"/v2", allCaps, true), endpointOf(t, "http://"+closedPort(t)+"/v2", allCaps, false))))
	if _, _, err := c.Manifest(t.Context(), "upstream.test/a:v1"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(asked) != fmt.Sprint([]string{hostOf(msrv)}) {
		t.Errorf("keychain asked for %q, want only the mirror %s", asked, hostOf(msrv))
	}
	for _, r := range mirror.asked() {
		if strings.Contains(r.Header.Get("Authorization"), basicAuth("upstream-user", "upstream-pass")) {
			t.Error("the upstream's credentials reached the mirror")
		}
	}
}

// TestEndpointTLS checks that an endpoint's CA and client certificate, read from a
// hosts directory, are used for it: the server requires a client certificate signed
// by the test CA, and its own certificate is trusted only through the hosts
// directory.
func TestEndpointTLS(t *testing.T) {
	caPEM, err := os.ReadFile("hosts/testdata/root1/combined.example.com/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca)
	srv := httptest.NewUnstartedServer(&fakeRegistry{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.StartTLS()
	defer srv.Close()

	root := t.TempDir()
	dir := filepath.Join(root, hostOf(srv))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, content := range map[string][]byte{"ca.crt": serverCA} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"client.cert", "client.key"} {
		b, err := os.ReadFile(filepath.Join("hosts/testdata/root1/combined.example.com", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := hosts.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ref := hostOf(srv) + "/a:v1"
	c, err := New(WithHosts(cfg), WithRetryPolicy(RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Manifest(t.Context(), ref); err != nil {
		t.Fatalf("with the hosts directory: %v", err)
	}
	// Without it, the certificate is unknown.
	plain, err := New(WithRetryPolicy(RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	var uae x509.UnknownAuthorityError
	if _, _, err := plain.Manifest(t.Context(), ref); !errors.As(err, &uae) {
		t.Errorf("without the hosts directory: %v, want an unknown authority", err)
	}
	// With the CA but without the client certificate, the server refuses the handshake.
	if err := os.Remove(filepath.Join(dir, "client.cert")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "client.key")); err != nil {
		t.Fatal(err)
	}
	cfg, _ = hosts.New(root)
	noCert, _ := New(WithHosts(cfg), WithRetryPolicy(RetryPolicy{}))
	if _, _, err := noCert.Manifest(t.Context(), ref); err == nil {
		t.Error("the server accepted a client without certificate")
	}
}

// TestLoopbackPlainFallback checks that a plain HTTP registry on a loopback address
// is reached without WithPlainHTTP, and that the answer is remembered.
func TestLoopbackPlainFallback(t *testing.T) {
	srv := httptest.NewUnstartedServer(&fakeRegistry{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(hostOf(srv))
	for _, host := range []string{hostOf(srv), "localhost:" + port} {
		c, err := New(WithRetryPolicy(RetryPolicy{}))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Manifest(t.Context(), host+"/a:v1"); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := c.scheme(host); got != "http" {
			t.Errorf("%s: scheme %s after the fallback, want http remembered", host, got)
		}
	}
}

// TestPlainFallbackRule checks who may fall back to plain HTTP: loopback registries
// whose scheme nobody chose, after the server answered TLS in HTTP.
func TestPlainFallbackRule(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	explicit := endpointOf(t, "https://127.0.0.1:5000/v2", allCaps, false)
	implicit := explicit
	implicit.Implicit = true
	tests := []struct {
		name string
		url  string
		ep   *hosts.Endpoint
		err  error
		want bool
	}{
		{"loopback v4", "https://127.0.0.1:5000/v2/", nil, http.ErrSchemeMismatch, true},
		{"loopback 127/8", "https://127.3.2.1:5000/v2/", nil, http.ErrSchemeMismatch, true},
		{"loopback v6", "https://[::1]:5000/v2/", nil, http.ErrSchemeMismatch, true},
		{"localhost", "https://localhost:5000/v2/", nil, http.ErrSchemeMismatch, true},
		{"record header", "https://localhost:5000/v2/", nil, tls.RecordHeaderError{RecordHeader: [5]byte{'H', 'T', 'T', 'P', '/'}}, true},
		{"implicit server", "https://127.0.0.1:5000/v2/", &implicit, http.ErrSchemeMismatch, true},
		{"https named in hosts.toml", "https://127.0.0.1:5000/v2/", &explicit, http.ErrSchemeMismatch, false},
		{"not loopback", "https://registry.example.com/v2/", nil, http.ErrSchemeMismatch, false},
		{"private address", "https://10.0.0.1:5000/v2/", nil, http.ErrSchemeMismatch, false},
		{"refused", "https://127.0.0.1:5000/v2/", nil, syscall.ECONNREFUSED, false},
		{"bad certificate", "https://127.0.0.1:5000/v2/", nil, x509.UnknownAuthorityError{}, false},
		{"other record header", "https://localhost:5000/v2/", nil, tls.RecordHeaderError{RecordHeader: [5]byte{0x15, 3, 1, 0, 2}}, false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		ctx := withRoute(t.Context(), u.Host, u)
		if tt.ep != nil {
			ctx = context.WithValue(ctx, endpointKey{}, tt.ep)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
		if got := c.plainFallback(req, fmt.Errorf("GET: %w", tt.err)); got != tt.want {
			t.Errorf("%s: plainFallback = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"no such host", &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}, true},
		{"temporary dns", &net.DNSError{Err: "server misbehaving", Name: "x.test", IsTemporary: true}, false},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "x.test", IsTimeout: true}, false},
		{"http on https", http.ErrSchemeMismatch, true},
		{"bad certificate", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{"handshake refused", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
		{"timeout", context.DeadlineExceeded, false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		if got := permanent(&url.Error{Op: "Get", URL: "https://x.test/v2/", Err: tt.err}); tt.err != nil && got != tt.want {
			t.Errorf("%s: permanent = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRetryNotice checks that retries are announced with their attempt and wait,
// and that a refused connection fails at once, without a retry.
func TestRetryNotice(t *testing.T) {
	var mu sync.Mutex
	var fails = 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var notices []RetryNotice
	notify := WithRetryNotify(func(n RetryNotice) { notices = append(notices, n) })
	policy := WithRetryPolicy(RetryPolicy{MaxRetries: 5, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxRetryAfter: time.Second})
	c := newTestClient(t, srv, notify, policy)
	if err := c.Ping(t.Context(), hostOf(srv)); err != nil {
		t.Fatal(err)
	}
	if len(notices) != 2 {
		t.Fatalf("notices %v, want 2", notices)
	}
	for i, n := range notices {
		if n.Attempt != i+2 || n.MaxAttempts != 6 || n.StatusCode != 503 || n.Method != "GET" || n.URL != srv.URL+"/v2/" || n.Wait <= 0 {
			t.Errorf("notice %d: %+v", i, n)
		}
	}
	if got, want := notices[0].String(), "retrying GET "+srv.URL+"/v2/ (503, attempt 2 of 6) in "; !strings.HasPrefix(got, want) {
		t.Errorf("String() = %q, want it to start with %q", got, want)
	}

	notices = nil
	closed := closedPort(t)
	c = newTestClient(t, srv, notify, policy)
	err := c.Ping(t.Context(), closed)
	if !errors.Is(err, syscall.ECONNREFUSED) || len(notices) != 0 {
		t.Errorf("refused: %v after %d retries, want ECONNREFUSED and none", err, len(notices))
	}
}

// closedPort returns "127.0.0.1:port" for a port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestEndpointTransportScope checks what of an endpoint's TLS settings reaches other
// hosts contacted on its behalf (its token server, a storage redirect): its CAs, but
// never its skip_verify, and its dial timeout only for itself.
func TestEndpointTransportScope(t *testing.T) {
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	other.Config.ErrorLog = log.New(io.Discard, "", 0)
	other.StartTLS()
	defer other.Close()
	pool := x509.NewCertPool()
	pool.AddCert(other.Certificate())

	cfg := defaultConfig()
	cfg.concurrency = 1
	et := &endpointTransport{next: newBaseTransport(&cfg), template: tunedTransport(&cfg), cfg: &cfg}
	mirror, _ := url.Parse("https://mirror.test/v2")
	tests := []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"the endpoint's CA is trusted for its token server", &tls.Config{RootCAs: pool}, true},
		{"its skip_verify is not", &tls.Config{InsecureSkipVerify: true}, false},
		{"no TLS settings", nil, false},
	}
	for _, tt := range tests {
		ep := &hosts.Endpoint{URL: mirror, TLS: tt.tls, DialTimeout: time.Second}
		ctx := context.WithValue(t.Context(), endpointKey{}, ep)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, other.URL+"/token", nil)
		resp, err := et.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	own := et.transport(&hosts.Endpoint{URL: mirror, DialTimeout: time.Second}, true)
	if own.DialContext == nil || et.transport(&hosts.Endpoint{URL: mirror, DialTimeout: time.Second}, true) != own {
		t.Error("the endpoint's own transport is not built once with its dial timeout")
	}
}
