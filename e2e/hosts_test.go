package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// netGuard is an HTTP proxy that refuses everything and records what it was asked.
// With HTTP_PROXY and HTTPS_PROXY pointing at it, a program that tries to reach any
// non-loopback host (Docker Hub included) reaches the guard instead of the network,
// and the test sees it. Go never proxies loopback addresses.
type netGuard struct {
	mu    sync.Mutex
	hosts []string
	srv   *httptest.Server
}

func newNetGuard(t *testing.T) *netGuard {
	g := &netGuard{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.hosts = append(g.hosts, r.Host)
		g.mu.Unlock()
		http.Error(w, "this test must not reach the network", http.StatusBadGateway)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// env returns the proxy variables that send every non-loopback request to the guard.
func (g *netGuard) env() []string {
	return []string{"HTTP_PROXY=" + g.srv.URL, "HTTPS_PROXY=" + g.srv.URL, "http_proxy=" + g.srv.URL, "https_proxy=" + g.srv.URL, "NO_PROXY=", "no_proxy="}
}

func (g *netGuard) reached() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.hosts...)
}

// writeHostsToml writes DIR/host/hosts.toml.
func writeHostsToml(t *testing.T, dir, host, content string) {
	t.Helper()
	writeTestFile(t, filepath.Join(dir, host, "hosts.toml"), content)
}

// testPKI is a CA and a client certificate it signed, as PEM.
type testPKI struct {
	caPEM, clientCertPEM, clientKeyPEM []byte
	pool                               *x509.CertPool
}

// newTestPKI makes a CA and a client certificate signed by it (ECDSA P-256, one day).
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "e2e client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caPEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		clientCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		clientKeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pool:          pool,
	}
}

// frontServer puts a server in front of reg (TLS when tlsConfig is set) that passes
// every request on, unless fault (when set) answers it and returns true.
func frontServer(t *testing.T, reg *testRegistry, tlsConfig *tls.Config, fault func(http.ResponseWriter, *http.Request) bool) *httptest.Server {
	t.Helper()
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = discardLogger
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault != nil && fault(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = discardLogger
	if tlsConfig != nil {
		srv.TLS = tlsConfig
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestHostsCLI(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	guard := newNetGuard(t)
	ocipull := func(t *testing.T, args ...string) cliRun {
		t.Helper()
		return runProgram(t, bin, cliOptions{env: guard.env()}, args...)
	}
	noNetwork := func(t *testing.T) {
		t.Helper()
		if got := guard.reached(); len(got) > 0 {
			t.Fatalf("the program tried to reach %q", got)
		}
	}

	reg := newRegistry(t, registryOptions{})
	f := seedCLIRegistry(t, reg)
	pushImage(t, reg, "library/busybox", "1.36", f.app)

	t.Run("docker.io from a mirror, offline", func(t *testing.T) {
		// A Spegel-style file: the mirror first, Docker Hub (implicit) behind it.
		dir := t.TempDir()
		writeHostsToml(t, dir, "docker.io", fmt.Sprintf(`[host."http://%s"]
  capabilities = ["pull", "resolve"]
  dial_timeout = "200ms"
`, reg.Host))
		for _, ref := range []string{"docker.io/library/busybox:1.36", "busybox:1.36"} {
			out := filepath.Join(t.TempDir(), "out")
			ocipull(t, "--hosts-dir", dir, "-q", "pull", ref, "-o", out).mustSucceed(t, "pull "+ref)
			checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "1.36")
		}
		noNetwork(t)

		// The guard works: without the hosts directory the same pull heads for Docker
		// Hub and is stopped there.
		r := ocipull(t, "--hosts-dir", "", "-q", "pull", "busybox:1.36", "-o", filepath.Join(t.TempDir(), "out"))
		got := guard.reached()
		if r.code == 0 || len(got) == 0 || !strings.Contains(got[0], "docker.io") {
			t.Fatalf("without the mirror: exit %d, guard saw %q; want a failure at the guard", r.code, got)
		}
		guard.mu.Lock()
		guard.hosts = nil
		guard.mu.Unlock()
	})

	t.Run("pull-through cache with override_path", func(t *testing.T) {
		// Harbor's and Artifactory's proxy caches serve the API under a path of their own.
		const prefix = "/v2/hub-proxy/"
		front := frontServer(t, reg, nil, func(w http.ResponseWriter, r *http.Request) bool {
			rest, ok := strings.CutPrefix(r.URL.Path, prefix)
			if !ok || r.URL.Query().Get("ns") != "docker.io" {
				http.Error(w, "not under the proxy path", http.StatusNotFound)
				return true
			}
			r.URL.Path = "/v2/" + rest
			return false
		})
		dir := t.TempDir()
		writeHostsToml(t, dir, "docker.io", fmt.Sprintf(`server = "https://registry-1.docker.io"

[host."%s/v2/hub-proxy"]
  capabilities = ["pull", "resolve"]
  override_path = true
`, front.URL))
		out := filepath.Join(t.TempDir(), "out")
		ocipull(t, "--hosts-dir", dir, "-q", "pull", "busybox:1.36", "-o", out).mustSucceed(t, "pull through the cache")
		checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "1.36")
		noNetwork(t)
	})

	t.Run("mirror down falls back to the server", func(t *testing.T) {
		dir := t.TempDir()
		down := closedLocalPort(t)
		writeHostsToml(t, dir, "registry.test", fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, reg.Host, down))
		out := filepath.Join(t.TempDir(), "out")
		ocipull(t, "--hosts-dir", dir, "-q", "pull", "registry.test/team/app:v1", "-o", out).mustSucceed(t, "pull")
		checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v1")

		r := ocipull(t, "--hosts-dir", dir, "resolve", "registry.test/team/app:nope")
		want := fmt.Sprintf("ocipull: no endpoint could serve registry.test/team/app:nope: "+
			"mirror http://%s/v2: cannot reach %s: connection refused; "+
			"server http://%s/v2: manifest unknown: registry.test/team/app:nope not found\n", down, down, reg.Host)
		if r.code != 1 || r.stderr != want {
			t.Errorf("all endpoints failing: exit %d, stderr\n%q\nwant\n%q", r.code, r.stderr, want)
		}
		noNetwork(t)
	})

	t.Run("TLS registry trusted through the hosts directory, client certificate", func(t *testing.T) {
		pki := newTestPKI(t)
		front := frontServer(t, reg, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}, nil)
		host := strings.TrimPrefix(front.URL, "https://")
		serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})

		dir := t.TempDir()
		writeTestFile(t, filepath.Join(dir, host, "ca.crt"), string(serverCA))
		writeTestFile(t, filepath.Join(dir, host, "client.cert"), string(pki.clientCertPEM))
		writeTestFile(t, filepath.Join(dir, host, "client.key"), string(pki.clientKeyPEM))
		out := filepath.Join(t.TempDir(), "out")
		ocipull(t, "--hosts-dir", dir, "-q", "pull", host+"/team/app:v1", "-o", out).mustSucceed(t, "pull over TLS")
		checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v1")

		// The same through hosts.toml, with the environment variable.
		dir2 := t.TempDir()
		writeTestFile(t, filepath.Join(dir2, host, "certs", "registry-ca.pem"), string(serverCA))
		writeTestFile(t, filepath.Join(dir2, host, "certs", "me.pem"), string(pki.clientCertPEM)+string(pki.clientKeyPEM))
		writeHostsToml(t, dir2, host, `ca = "certs/registry-ca.pem"
client = "certs/me.pem"
`)
		r := runProgram(t, bin, cliOptions{env: append(guard.env(), "OCIPULL_HOSTS_DIR="+dir2)}, "resolve", host+"/team/app:v1").mustSucceed(t, "resolve with hosts.toml")
		if !strings.Contains(string(r.stdout), f.app.ManifestDesc.Digest.String()) {
			t.Errorf("resolve printed %s", r.stdout)
		}

		// Without the client certificate the server refuses; without the CA the
		// certificate is unknown.
		dir3 := t.TempDir()
		writeTestFile(t, filepath.Join(dir3, host, "ca.crt"), string(serverCA))
		if r := ocipull(t, "--hosts-dir", dir3, "resolve", host+"/team/app:v1"); r.code != 1 {
			t.Errorf("without a client certificate: exit %d, stderr %s", r.code, r.stderr)
		}
		r = ocipull(t, "--hosts-dir", "", "resolve", host+"/team/app:v1")
		if r.code != 1 || !strings.Contains(r.stderr, "cannot verify the TLS certificate of "+host) {
			t.Errorf("without the CA: exit %d, stderr %s", r.code, r.stderr)
		}
		noNetwork(t)
	})

	t.Run("loopback registry on plain HTTP without --plain-http", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(reg.Host)
		for _, host := range []string{reg.Host, "localhost:" + port} {
			out := filepath.Join(t.TempDir(), "out")
			ocipull(t, "--hosts-dir", "", "-q", "pull", host+"/team/app:v2", "-o", out).mustSucceed(t, "pull "+host)
			checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v2")
			r := ocipull(t, "--hosts-dir", "", "tags", host+"/team/app").mustSucceed(t, "tags "+host)
			if string(r.stdout) != "v1\nv2\nv3\n" {
				t.Errorf("tags %s: %q", host, r.stdout)
			}
		}
		// A hosts.toml that says https is not second-guessed.
		dir := t.TempDir()
		writeHostsToml(t, dir, reg.Host, fmt.Sprintf("server = %q\n", "https://"+reg.Host))
		r := ocipull(t, "--hosts-dir", dir, "tags", reg.Host+"/team/app")
		if r.code != 1 || !strings.Contains(r.stderr, "does not speak TLS") {
			t.Errorf("https named in hosts.toml: exit %d, stderr %s", r.code, r.stderr)
		}
		noNetwork(t)
	})

	t.Run("refused connection fails fast", func(t *testing.T) {
		down := closedLocalPort(t)
		start := time.Now()
		r := ocipull(t, "--hosts-dir", "", "pull", down+"/team/app:v1", "-o", filepath.Join(t.TempDir(), "out"))
		elapsed := time.Since(start)
		t.Logf("refused connection reported after %s", elapsed.Round(time.Millisecond))
		if want := "ocipull: cannot reach " + down + ": connection refused\n"; r.code != 1 || r.stderr != want {
			t.Errorf("exit %d, stderr %q; want exit 1 and %q (no retry notice)", r.code, r.stderr, want)
		}
		if elapsed > 30*time.Second { // a hang guard, not a measurement
			t.Errorf("took %s", elapsed)
		}
	})

	t.Run("retries are shown", func(t *testing.T) {
		var failed atomic.Bool
		front := frontServer(t, reg, nil, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/manifests/") && !failed.Swap(true) {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		host := strings.TrimPrefix(front.URL, "http://")
		r := ocipull(t, "--hosts-dir", "", "resolve", host+"/team/app:v1").mustSucceed(t, "resolve through a 503")
		want := "ocipull: retrying HEAD http://" + host + "/v2/team/app/manifests/v1 (503, attempt 2 of 6) in "
		if !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("stderr %q, want one line starting with %q", r.stderr, want)
		}
		failed.Store(false)
		if r := ocipull(t, "--hosts-dir", "", "-q", "resolve", host+"/team/app:v1"); r.stderr != "" {
			t.Errorf("-q printed %q", r.stderr)
		}
	})
}
