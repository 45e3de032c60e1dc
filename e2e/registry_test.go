package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Side effects: register the auth backends and the storage driver the
	// configurations below name.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// The credentials every authenticated registry and token issuer accept.
const (
	testUser     = "e2e-user"
	testPassword = "e2e-password"
)

// Names the token-auth registry and its issuer agree on.
const (
	testService    = "test-registry"
	testIssuerName = "test-issuer"
	testBasicRealm = "test-registry"
	testHTTPSecret = "e2e-http-secret-for-upload-state"
	testTokenPath  = "/token"
	seedUserAgent  = "ocistream-e2e-seed"
)

// authMode selects how a test registry authenticates clients.
type authMode int

const (
	// authAnonymous: no authentication, every request is allowed.
	authAnonymous authMode = iota
	// authHtpasswd: HTTP Basic with testUser/testPassword (bcrypt htpasswd
	// file); anything else gets 401 with `Basic realm="test-registry"`.
	authHtpasswd
	// authToken: Bearer tokens from a tokenIssuer; requests without a valid
	// token get 401 with `Bearer realm="<issuer>/token",service="test-registry",...`.
	authToken
)

// String names the mode, for subtest names.
func (m authMode) String() string {
	switch m {
	case authAnonymous:
		return "anonymous"
	case authHtpasswd:
		return "htpasswd"
	case authToken:
		return "token"
	default:
		return fmt.Sprintf("authMode(%d)", int(m))
	}
}

// registryOptions configures newRegistry. The zero value is an anonymous,
// plain-HTTP registry.
type registryOptions struct {
	// Auth selects the authentication scheme.
	Auth authMode
	// TLS serves the registry (and its token issuer) over HTTPS with the
	// httptest certificate; testRegistry.CertPool holds the CA to trust.
	TLS bool
	// Filesystem stores blobs on disk (in a test temp dir) instead of in memory: the
	// in-memory driver copies on every append and cannot hold large images quickly.
	Filesystem bool
	// Issuer configures the token issuer started for Auth == authToken; it is
	// ignored otherwise. It can be changed later with tokenIssuer.Update.
	Issuer issuerOptions
}

// testRegistry is one running distribution v3 registry with in-memory
// storage. Everything it started is stopped by t.Cleanup.
type testRegistry struct {
	// URL is the base URL, "http://127.0.0.1:port" (or "https://..." with TLS).
	URL string
	// Host is "127.0.0.1:port", the registry part of an image reference.
	Host string
	// Auth is the authentication scheme the registry enforces.
	Auth authMode
	// Issuer is the token issuer the registry trusts; nil unless Auth is
	// authToken.
	Issuer *tokenIssuer
	// CertPool holds the CA certificate of the TLS server certificate; nil
	// without TLS. The same CA signs the token issuer's certificate.
	CertPool *x509.CertPool
	// Client is an http.Client that trusts CertPool and carries no
	// credentials. It is closed with the server.
	Client *http.Client
	// Server is the underlying httptest server.
	Server *httptest.Server
}

// Ref returns the image reference "127.0.0.1:port/<repo>:<tag>", or
// "127.0.0.1:port/<repo>@<tag>" when tag is a digest ("sha256:...").
func (r *testRegistry) Ref(repo, tag string) string {
	if strings.Contains(tag, ":") {
		return r.Host + "/" + repo + "@" + tag
	}
	return r.Host + "/" + repo + ":" + tag
}

// Endpoint returns the registry URL of path (which starts with "/v2/").
func (r *testRegistry) Endpoint(path string) string {
	return r.URL + path
}

// authorize adds the credentials that give push and pull on repo (or, for an
// empty repo, access to /v2/ and the catalog) to req: nothing for an
// anonymous registry, Basic testUser/testPassword for htpasswd, and a Bearer
// token minted directly by the issuer (no HTTP round trip, not counted in its
// statistics) for token auth.
func (r *testRegistry) authorize(t testing.TB, req *http.Request, repo string) {
	t.Helper()
	switch r.Auth {
	case authHtpasswd:
		req.SetBasicAuth(testUser, testPassword)
	case authToken:
		scopes := []string{"registry:catalog:*"}
		if repo != "" {
			scopes = []string{"repository:" + repo + ":pull,push"}
		}
		req.Header.Set("Authorization", "Bearer "+r.Issuer.mustMint(t, testUser, defaultPushTokenLifetime, scopes...))
	}
}

// do sends req with r.Client after authorizing it for repo (see authorize)
// and fails the test on a transport error. The caller closes the body.
func (r *testRegistry) do(t testing.TB, req *http.Request, repo string) *http.Response {
	t.Helper()
	r.authorize(t, req, repo)
	req.Header.Set("User-Agent", seedUserAgent)
	resp, err := r.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

var silenceOnce sync.Once

// silenceRegistryLogs sends the registry's logrus output to io.Discard and
// raises its level, so that test output holds only test failures.
func silenceRegistryLogs() {
	silenceOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.PanicLevel)
	})
}

// discardLogger is an error log for httptest servers: TLS handshake failures
// and aborted connections are expected in these tests.
var discardLogger = log.New(io.Discard, "", 0)

// newRegistry starts a registry configured by opts and returns it. It costs
// one httptest server (two in token mode) and a few milliseconds; everything
// is closed by t.Cleanup. Delete is disabled, upload purging is off, the
// catalog and tag limits are distribution's defaults (1000).
func newRegistry(t testing.TB, opts registryOptions) *testRegistry {
	t.Helper()
	silenceRegistryLogs()

	reg := &testRegistry{Auth: opts.Auth}
	var authYAML string
	switch opts.Auth {
	case authAnonymous:
	case authHtpasswd:
		hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("bcrypt: %v", err)
		}
		path := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(path, []byte(testUser+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("write htpasswd file: %v", err)
		}
		authYAML = fmt.Sprintf("auth:\n  htpasswd:\n    realm: %q\n    path: %q\n", testBasicRealm, path)
	case authToken:
		reg.Issuer = newTokenIssuer(t, opts.Issuer, opts.TLS)
		authYAML = fmt.Sprintf("auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			reg.Issuer.Realm, testService, testIssuerName, reg.Issuer.RootCertBundle)
	default:
		t.Fatalf("newRegistry: unknown auth mode %v", opts.Auth)
	}

	storageYAML := "  inmemory: {}\n"
	if opts.Filesystem {
		storageYAML = fmt.Sprintf("  filesystem:\n    rootdirectory: %q\n", t.TempDir())
	}
	cfgYAML := `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
` + storageYAML + `  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
validation:
  manifests:
    urls:
      allow:
        - ^https?://
http:
  secret: ` + testHTTPSecret + "\n" + authYAML
	cfg, err := configuration.Parse(strings.NewReader(cfgYAML))
	if err != nil {
		t.Fatalf("parse registry configuration: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	srv := httptest.NewUnstartedServer(app)
	srv.Config.ErrorLog = discardLogger
	if opts.TLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
		cancel()
	})

	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatalf("parse server URL %q: %v", srv.URL, err)
	}
	reg.URL = srv.URL
	reg.Host = u.Host
	reg.Server = srv
	reg.Client = srv.Client()
	if opts.TLS {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		reg.CertPool = pool
	}
	return reg
}
