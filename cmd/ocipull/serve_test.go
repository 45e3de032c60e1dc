package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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

var servingLine = regexp.MustCompile(`serving \S+ \(\d+ repositories\) at (https?://\S+)\n`)

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
