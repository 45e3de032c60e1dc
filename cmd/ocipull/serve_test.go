package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// lockedBuffer is a strings.Builder safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingLine = regexp.MustCompile(`serving \S+ at (https?://\S+) \(repositories: [^)]+\)\n`)

// startServe runs ocipull serve with args until the test ends, and returns the URL it
// listens on, its stderr and a function that stops it (as SIGINT does) and returns its
// exit status.
func startServe(t *testing.T, args ...string) (string, *lockedBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errOut := &lockedBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"ocipull", "serve", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), &lockedBuffer{}, errOut)
	}()
	stop := sync.OnceValue(func() int {
		cancel()
		return <-code
	})
	t.Cleanup(func() { stop() })
	for range 500 {
		if m := servingLine.FindStringSubmatch(errOut.String()); m != nil {
			return m[1], errOut, stop
		}
		select {
		case c := <-code:
			code <- c
			t.Fatalf("serve exited with %d: %s", c, errOut)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve printed no address: %s", errOut)
	return "", nil, nil
}

func TestServeAndPull(t *testing.T) {
	isolate(t)
	base, errOut, stop := startServe(t, filepath.Join("..", "..", "testdata", "hello"))
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v2/ = %d", resp.StatusCode)
	}
	out := filepath.Join(t.TempDir(), "hello")
	host := strings.TrimPrefix(base, "http://")
	if got := runCLI(t, "", "--plain-http", "pull", host+"/hello", "-o", out); got.code != 0 {
		t.Fatalf("pull from serve: exit %d: %s", got.code, got.stderr)
	}
	if got := runCLI(t, "", "verify", out); got.code != 0 {
		t.Fatalf("verify of the pulled layout: exit %d: %s", got.code, got.stderr)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve stopped with exit %d: %s", code, errOut)
	}
	log := errOut.String()
	if !strings.Contains(log, "method=GET path=/v2/hello/manifests/latest status=200") || !strings.HasSuffix(log, "stopped\n") {
		t.Errorf("stderr lacks the access log or the stop line:\n%s", log)
	}
}

func TestServeRefuses(t *testing.T) {
	isolate(t)
	empty := t.TempDir()
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(broken, "index.json"), []byte(`{"schemaVersion":2,"manifests":[`), 0o644)
	hello := filepath.Join("..", "..", "testdata", "hello")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not a layout", []string{empty}, exitFailure, "no oci-layout file"},
		{"broken index.json", []string{broken}, exitFailure, "index.json: invalid image layout"},
		{"absent", []string{filepath.Join(empty, "nothing")}, exitFailure, "no such file or directory"},
		{"cert without key", []string{"--tls-cert", "c.pem", hello}, exitUsage, "--tls-cert and --tls-key go together"},
		{"bad htpasswd", []string{"--htpasswd", filepath.Join(empty, "none"), hello}, exitFailure, "htpasswd"},
		{"no directory", nil, exitUsage, "serve wants one DIR"},
		{"bad address", []string{"--listen", "nonsense", hello}, exitFailure, "nonsense"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, "", append([]string{"serve"}, tt.args...)...)
			if got.code != tt.code || !strings.Contains(got.stderr, tt.want) || strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line saying %q", got.code, got.stderr, tt.code, tt.want)
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLSAndBasicAuth(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "htpasswd")
	os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600)
	base, _, _ := startServe(t, "--tls-cert", certFile, "--tls-key", keyFile, "--htpasswd", users, filepath.Join("..", "..", "testdata", "hello"))
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serving at %s, want https", base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	for _, tt := range []struct {
		user, password string
		status         int
	}{{"", "", 401}, {"alice", "wrong", 401}, {"alice", "s3cret", 200}} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/v2/hello/tags/list", nil)
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.ProtoMajor != 2 {
			t.Errorf("%s:%s: %s %d, want HTTP/2 %d", tt.user, tt.password, resp.Proto, resp.StatusCode, tt.status)
		}
	}
}
