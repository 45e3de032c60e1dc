package serve

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzServeHTTP sends arbitrary paths and queries: the handler must never panic, never
// answer outside the statuses a read-only registry uses, and never serve a blob whose
// bytes do not match the digest it was asked for.
func FuzzServeHTTP(f *testing.F) {
	fx := newFixture(f)
	h, err := New(fx.dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	for _, seed := range []string{
		"/v2/", "/v2/_catalog?n=1&last=a", "/v2/many/tags/list?n=2&last=t00",
		"/v2/many/manifests/latest", "/v2/many/blobs/" + string(fx.small.Digest),
		"/v2/many/referrers/" + string(fx.amd64.Digest) + "?artifactType=x",
		"/v2/../../etc/passwd", "/v2/many/blobs/sha256:..%2F..", "/v2//blobs/", "/v2/a/manifests/",
	} {
		f.Add("GET", seed, "")
	}
	f.Add("HEAD", "/v2/many/blobs/"+string(fx.large.Digest), "bytes=-1")
	f.Add("POST", "/v2/many/blobs/uploads/", "")
	f.Fuzz(func(t *testing.T, method, target, rng string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method, req.URL, req.RequestURI = method, u, target
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 206, 304, 400, 404, 405, 416:
		default:
			t.Fatalf("%s %s (Range %q) = %d", method, target, rng, w.Code)
		}
		if w.Code == 200 && method == http.MethodGet {
			if _, arg, ok := strings.Cut(u.Path, "/blobs/"); ok {
				if dg, err := digest.Parse(arg); err == nil && digest.FromBytes(w.Body.Bytes()) != dg {
					t.Fatalf("GET %s served %d bytes that do not match", target, w.Body.Len())
				}
			}
		}
	})
}

// FuzzParseHtpasswd parses arbitrary htpasswd files: no panic, and a file it accepts
// refuses a wrong password.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:$2y$04$e7V0vWmB6nE3B2qF0hGqUe0ZqKpJ8l7g5m0l0Yy2cQeTzq6dQ1rKq\n")
	f.Add("# comment\n\nbob:$2a$10$\n")
	f.Add("carol:{SHA}abc\n")
	f.Add(":\n")
	f.Fuzz(func(t *testing.T, file string) {
		h, err := ParseHtpasswd(strings.NewReader(file))
		if err != nil {
			return
		}
		for user := range h.users {
			if h.Check(user, "\x00not the password\x00") {
				t.Errorf("user %q accepted a wrong password", user)
			}
		}
	})
}
