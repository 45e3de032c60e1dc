package ocistream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ocistream/ocistream/ocitypes"
)

// recorder is a server on another origin that notes every request it receives, with
// its Authorization header and body, and answers a token.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, fmt.Sprintf("%s %s auth=%q body=%q", r.Method, r.URL.Path, r.Header.Get("Authorization"), body))
	rec.mu.Unlock()
	if strings.Contains(r.URL.Path, "/manifests/") {
		w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
		io.WriteString(w, testManifest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"token":"good","access_token":"good","refresh_token":"rt"}`)
}

func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.seen...)
}

// newServer starts h over TLS or plain HTTP.
func newServer(t *testing.T, tlsOn bool, h http.Handler) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestTokenRedirectKeepsSecrets sends every kind of secret a token request carries to
// a token server that redirects to another origin: the secret must never reach it,
// whatever the status and the scheme, and the error must say why. An anonymous token
// request may still follow the redirect.
func TestTokenRedirectKeepsSecrets(t *testing.T) {
	cases := []struct {
		name string
		cred Credential
		// getOnly: the token server refuses POST (404), so the client falls back to
		// GET with Basic credentials, which is then redirected.
		getOnly bool
		// exchange: the ACR exchange at the registry's /oauth2/exchange is redirected.
		exchange bool
		refused  bool
	}{
		{name: "password grant", cred: Credential{Username: "alice", Password: "s3cret"}, refused: true},
		{name: "refresh token grant", cred: Credential{RefreshToken: "s3cret"}, refused: true},
		{name: "GET with basic", cred: Credential{Username: "alice", Password: "s3cret"}, getOnly: true, refused: true},
		{name: "ACR exchange", cred: Credential{AzureADToken: "s3cret"}, exchange: true, refused: true},
		{name: "anonymous", cred: Credential{}},
	}
	for _, tlsOn := range []bool{false, true} {
		for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("tls=%v/%d/%s", tlsOn, status, tc.name), func(t *testing.T) {
					rec := &recorder{}
					evil := newServer(t, tlsOn, rec)
					tokens := newServer(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.Method == http.MethodPost && tc.getOnly {
							http.NotFound(w, r)
							return
						}
						http.Redirect(w, r, evil.URL+"/token", status)
					}))
					registry := newServer(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.URL.Path == "/oauth2/exchange" {
							http.Redirect(w, r, evil.URL+"/oauth2/exchange", status)
							return
						}
						if r.Header.Get("Authorization") != "Bearer good" {
							w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="registry.test"`, tokens.URL+"/token"))
							w.WriteHeader(http.StatusUnauthorized)
							return
						}
						w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
						io.WriteString(w, testManifest)
					}))
					opts := []Option{WithCredentials(StaticCredentials(hostOf(registry), tc.cred)),
						WithRetryPolicy(RetryPolicy{MaxWait: 1})}
					if tlsOn {
						opts = append(opts, WithInsecureSkipVerify())
					} else {
						opts = append(opts, WithPlainHTTP())
					}
					c, err := New(opts...)
					if err != nil {
						t.Fatal(err)
					}
					_, _, err = c.Manifest(t.Context(), hostOf(registry)+"/a/b:v1")
					seen := rec.requests()
					for _, s := range seen {
						if strings.Contains(s, "s3cret") || strings.Contains(s, "YWxpY2U6czNjcmV0") {
							t.Errorf("the other origin received the secret: %s", s)
						}
					}
					if !tc.refused {
						if err != nil {
							t.Fatalf("anonymous token request: %v", err)
						}
						return
					}
					if !errors.Is(err, ErrCrossOrigin) {
						t.Fatalf("err = %v, want ErrCrossOrigin", err)
					}
					if len(seen) > 0 {
						t.Errorf("the other origin received %d requests: %q", len(seen), seen)
					}
					if !strings.Contains(err.Error(), "carrying credentials") || strings.Contains(err.Error(), "s3cret") {
						t.Errorf("error does not say why, or leaks the secret: %v", err)
					}
				})
			}
		}
	}
}

// TestRedirectDropsAuthorization follows a registry's redirect of an authenticated
// request to another origin, with each redirect status: the registry's credentials
// (bearer token or Basic) never go along, and a redirect on the same origin keeps them.
func TestRedirectDropsAuthorization(t *testing.T) {
	for _, scheme := range []string{"bearer", "basic"} {
		for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			for _, sameOrigin := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/same=%v", scheme, status, sameOrigin), func(t *testing.T) {
					rec := &recorder{}
					other := newServer(t, true, rec)
					tokens := newServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						io.WriteString(w, `{"token":"tok"}`)
					}))
					wantAuth := "Bearer tok"
					if scheme == "basic" {
						wantAuth = "Basic " + basicAuth("alice", "s3cret")
					}
					var sawAuthAfterHop bool
					registry := newServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.Header.Get("Authorization") != wantAuth {
							if scheme == "basic" {
								w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
							} else {
								w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="registry.test"`, tokens.URL+"/token"))
							}
							w.WriteHeader(http.StatusUnauthorized)
							return
						}
						if strings.HasPrefix(r.URL.Path, "/moved/") {
							sawAuthAfterHop = true
							w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
							io.WriteString(w, testManifest)
							return
						}
						to := other.URL + "/moved" + r.URL.Path
						if sameOrigin {
							to = "/moved" + r.URL.Path
						}
						http.Redirect(w, r, to, status)
					}))
					c, err := New(WithInsecureSkipVerify(), WithRetryPolicy(RetryPolicy{MaxWait: 1}),
						WithCredentials(StaticCredentials(hostOf(registry), Credential{Username: "alice", Password: "s3cret"})))
					if err != nil {
						t.Fatal(err)
					}
					if _, _, err := c.Manifest(t.Context(), hostOf(registry)+"/a/b:v1"); err != nil {
						t.Fatal(err)
					}
					for _, s := range rec.requests() {
						if !strings.Contains(s, `auth=""`) {
							t.Errorf("the other origin received credentials: %s", s)
						}
					}
					if sameOrigin && !sawAuthAfterHop {
						t.Error("a redirect on the same origin lost the credentials")
					}
					if !sameOrigin && len(rec.requests()) == 0 {
						t.Error("the redirect was not followed")
					}
				})
			}
		}
	}
}
