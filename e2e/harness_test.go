package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// get sends a GET for rawURL with the given headers through client and
// returns the response with its body read.
func get(t *testing.T, client *http.Client, rawURL string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("new request %s: %v", rawURL, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", rawURL, err)
	}
	return resp, body
}

// bearer returns a header set carrying tok as a Bearer token.
func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// tokenResponse is the JSON body of a token endpoint answer.
type tokenResponse struct {
	Token        string  `json:"token"`
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    *int64  `json:"expires_in"`
	IssuedAt     string  `json:"issued_at"`
	Scope        *string `json:"scope"`
	Details      string  `json:"details"`
}

// decodeToken parses a token endpoint body, failing the test on bad JSON.
func decodeToken(t *testing.T, body []byte) tokenResponse {
	t.Helper()
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("decode token response %q: %v", body, err)
	}
	return tr
}

// postForm sends a form POST to rawURL and returns the response and body.
func postForm(t *testing.T, client *http.Client, rawURL string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestRegistryModes(t *testing.T) {
	tests := []struct {
		name string
		opts registryOptions
	}{
		{"anonymous", registryOptions{}},
		{"anonymous-tls", registryOptions{TLS: true}},
		{"htpasswd", registryOptions{Auth: authHtpasswd}},
		{"htpasswd-tls", registryOptions{Auth: authHtpasswd, TLS: true}},
		{"token", registryOptions{Auth: authToken}},
		{"token-tls", registryOptions{Auth: authToken, TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t, tt.opts)
			wantScheme := "http://"
			if tt.opts.TLS {
				wantScheme = "https://"
			}
			if !strings.HasPrefix(reg.URL, wantScheme+"127.0.0.1:") || reg.URL != wantScheme+reg.Host {
				t.Errorf("URL = %q, Host = %q, want %s127.0.0.1:port", reg.URL, reg.Host, wantScheme)
			}
			if tt.opts.TLS {
				client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: reg.CertPool}}}
				defer client.CloseIdleConnections()
				resp, _ := get(t, client, reg.Endpoint("/v2/"), nil)
				if tt.opts.Auth == authAnonymous && resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ with CertPool: status %d, want 200", resp.StatusCode)
				}
				untrusting := &http.Client{Transport: &http.Transport{}}
				defer untrusting.CloseIdleConnections()
				if _, err := untrusting.Get(reg.Endpoint("/v2/")); err == nil {
					t.Errorf("GET /v2/ without the CA: no error, want a certificate error")
				}
				if tt.opts.Auth == authToken && !strings.HasPrefix(reg.Issuer.Realm, "https://") {
					t.Errorf("issuer realm %q is not https", reg.Issuer.Realm)
				}
			}

			resp, _ := get(t, reg.Client, reg.Endpoint("/v2/"), nil)
			if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
				t.Errorf("Docker-Distribution-API-Version = %q, want registry/2.0", got)
			}
			switch tt.opts.Auth {
			case authAnonymous:
				if resp.StatusCode != http.StatusOK {
					t.Errorf("anonymous GET /v2/: status %d, want 200", resp.StatusCode)
				}
			case authHtpasswd:
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET /v2/ without credentials: status %d, want 401", resp.StatusCode)
				}
				if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="test-registry"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				resp, _ = get(t, reg.Client, reg.Endpoint("/v2/"), http.Header{"Authorization": {basicAuth(testUser, "wrong")}})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET /v2/ with a wrong password: status %d, want 401", resp.StatusCode)
				}
				resp, _ = get(t, reg.Client, reg.Endpoint("/v2/"), http.Header{"Authorization": {basicAuth(testUser, testPassword)}})
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ with credentials: status %d, want 200", resp.StatusCode)
				}
			case authToken:
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET /v2/ without a token: status %d, want 401", resp.StatusCode)
				}
				want := `Bearer realm="` + reg.Issuer.Realm + `",service="test-registry"`
				if got := resp.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				tr := decodeToken(t, mustGetOK(t, reg.Client, reg.Issuer.Realm+"?service=test-registry", nil))
				resp, _ = get(t, reg.Client, reg.Endpoint("/v2/"), bearer(tr.Token))
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ with an anonymous token: status %d, want 200", resp.StatusCode)
				}
			}
		})
	}
}

// basicAuth renders an Authorization header value for user and password.
func basicAuth(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// mustGetOK GETs rawURL and fails the test unless the status is 200.
func mustGetOK(t *testing.T, client *http.Client, rawURL string, header http.Header) []byte {
	t.Helper()
	resp, body := get(t, client, rawURL, header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200: %s", rawURL, resp.StatusCode, body)
	}
	return body
}

func TestTokenIssuer(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	iss := reg.Issuer
	img := makeImage(1, []int64{1000}, platformAMD64)
	pushImage(t, reg, "team/app", "v1", img)
	manifestURL := reg.Endpoint("/v2/team/app/manifests/v1")
	accept := http.Header{"Accept": {ocispec.MediaTypeImageManifest}}

	t.Run("challenge names the scope", func(t *testing.T) {
		resp, _ := get(t, reg.Client, manifestURL, nil)
		want := `Bearer realm="` + iss.Realm + `",service="test-registry",scope="repository:team/app:pull"`
		if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != want {
			t.Errorf("GET manifest: %d %q, want 401 %q", resp.StatusCode, got, want)
		}
	})

	t.Run("anonymous GET grants pull only", func(t *testing.T) {
		body := mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&scope=repository:team/app:pull,push&scope=registry:catalog:*", nil)
		tr := decodeToken(t, body)
		if tr.Token == "" || tr.Token != tr.AccessToken {
			t.Fatalf("token = %q, access_token = %q, want both equal and non-empty", tr.Token, tr.AccessToken)
		}
		if tr.RefreshToken != "" {
			t.Errorf("anonymous refresh_token = %q, want none", tr.RefreshToken)
		}
		c := iss.Claims(t, tr.Token)
		want := []resourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}
		if c.Subject != "" || c.Audience != testService || c.Issuer != testIssuerName || !slices.EqualFunc(c.Access, want, equalAccess) {
			t.Errorf("claims = %+v, want anonymous pull on team/app only", c)
		}
		resp, got := get(t, reg.Client, manifestURL, withHeader(bearer(tr.Token), accept))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, img.Manifest) {
			t.Errorf("GET manifest with the anonymous token: status %d", resp.StatusCode)
		}
		resp, _ = get(t, reg.Client, reg.Endpoint("/v2/_catalog"), bearer(tr.Token))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("GET catalog with a pull token: %d %q, want 401 insufficient_scope", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("GET with Basic and offline_token", func(t *testing.T) {
		h := http.Header{"Authorization": {basicAuth(testUser, testPassword)}}
		body := mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&account="+testUser+"&client_id=e2e&offline_token=true&scope=registry:catalog:*", h)
		tr := decodeToken(t, body)
		if tr.RefreshToken == "" || tr.ExpiresIn == nil || *tr.ExpiresIn != 300 || tr.IssuedAt == "" {
			t.Errorf("response = %s, want refresh_token, expires_in 300 and issued_at", body)
		}
		resp, cat := get(t, reg.Client, reg.Endpoint("/v2/_catalog"), bearer(tr.Token))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(cat), `"team/app"`) {
			t.Errorf("GET catalog as %s: %d %s", testUser, resp.StatusCode, cat)
		}
		last := iss.Requests()[len(iss.Requests())-1]
		if last.Method != "GET" || last.Account != testUser || last.BasicUser != testUser || last.ClientID != "e2e" || !last.Offline || !slices.Equal(last.Scopes, []string{"registry:catalog:*"}) {
			t.Errorf("logged request = %+v", last)
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		resp, body := get(t, reg.Client, iss.Realm+"?service=test-registry", http.Header{"Authorization": {basicAuth(testUser, "nope")}})
		if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(body)) != `{"details":"incorrect username or password"}` {
			t.Errorf("GET token with a wrong password: %d %s", resp.StatusCode, body)
		}
		resp, body = postForm(t, reg.Client, iss.Realm, url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {"nope"}, "service": {testService}, "client_id": {"e2e"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "incorrect username or password") {
			t.Errorf("POST token with a wrong password: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("POST password then refresh_token", func(t *testing.T) {
		before := iss.Counts()
		resp, body := postForm(t, reg.Client, iss.Realm, url.Values{
			"grant_type": {"password"}, "username": {testUser}, "password": {testPassword},
			"service": {testService}, "client_id": {"e2e"}, "access_type": {"offline"},
			"scope": {"repository:team/app:pull repository:other:pull,push"},
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST password grant: %d %s", resp.StatusCode, body)
		}
		tr := decodeToken(t, body)
		if tr.AccessToken == "" || tr.RefreshToken == "" || tr.Scope == nil || *tr.Scope != "repository:team/app:pull repository:other:pull,push" {
			t.Fatalf("POST password grant body = %s", body)
		}
		if resp, _ := get(t, reg.Client, manifestURL, withHeader(bearer(tr.AccessToken), accept)); resp.StatusCode != http.StatusOK {
			t.Errorf("GET manifest with the POST token: status %d", resp.StatusCode)
		}
		resp, body = postForm(t, reg.Client, iss.Realm, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "access_type": {"offline"},
			"service": {testService}, "client_id": {"e2e"}, "scope": {"repository:team/app:pull"},
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST refresh grant: %d %s", resp.StatusCode, body)
		}
		tr2 := decodeToken(t, body)
		if tr2.RefreshToken != tr.RefreshToken {
			t.Errorf("refresh grant refresh_token = %q, want the same %q", tr2.RefreshToken, tr.RefreshToken)
		}
		if c := iss.Claims(t, tr2.AccessToken); c.Subject != testUser {
			t.Errorf("refreshed token subject = %q, want %q", c.Subject, testUser)
		}
		if resp, _ := get(t, reg.Client, manifestURL, withHeader(bearer(tr2.AccessToken), accept)); resp.StatusCode != http.StatusOK {
			t.Errorf("GET manifest with the refreshed token: status %d", resp.StatusCode)
		}
		resp, _ = postForm(t, reg.Client, iss.Realm, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"bogus"}, "service": {testService}, "client_id": {"e2e"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST with an unknown refresh token: status %d, want 401", resp.StatusCode)
		}
		after := iss.Counts()
		if after.POSTPassword-before.POSTPassword != 1 || after.POSTRefresh-before.POSTRefresh != 1 || after.Unauthorized-before.Unauthorized != 1 {
			t.Errorf("counts went from %+v to %+v", before, after)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tests := []struct {
			name string
			form url.Values
		}{
			{"no client_id", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "service": {testService}}},
			{"wrong service", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "service": {"x"}, "client_id": {"e2e"}}},
			{"unknown grant", url.Values{"grant_type": {"authorization_code"}, "service": {testService}, "client_id": {"e2e"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if resp, body := postForm(t, reg.Client, iss.Realm, tt.form); resp.StatusCode != http.StatusBadRequest {
					t.Errorf("POST %v: %d %s, want 400", tt.form, resp.StatusCode, body)
				}
			})
		}
	})

	t.Run("knobs", func(t *testing.T) {
		tests := []struct {
			name          string
			opts          issuerOptions
			wantPOST      int
			wantToken     bool
			wantAccess    bool
			wantExpiresIn int64 // -1: absent
		}{
			{"defaults", issuerOptions{}, 200, true, true, 300},
			{"both", issuerOptions{TokenField: tokenFieldBoth}, 200, true, true, 300},
			{"token only", issuerOptions{TokenField: tokenFieldToken}, 200, true, false, 300},
			{"access_token only", issuerOptions{TokenField: tokenFieldAccessToken}, 200, false, true, 300},
			{"no expires_in", issuerOptions{OmitExpiresIn: true}, 200, true, true, -1},
			{"lifetime", issuerOptions{Lifetime: 1500 * time.Millisecond}, 200, true, true, 2},
			{"POST 405", issuerOptions{DisablePOST: 405}, 405, true, true, 300},
			{"POST 404", issuerOptions{DisablePOST: 404}, 404, true, true, 300},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				iss.Update(func(o *issuerOptions) { *o = tt.opts })
				t.Cleanup(func() { iss.Update(func(o *issuerOptions) { *o = issuerOptions{} }) })
				body := mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&scope=repository:team/app:pull", nil)
				tr := decodeToken(t, body)
				if (tr.Token != "") != tt.wantToken || (tr.AccessToken != "") != tt.wantAccess {
					t.Errorf("GET body = %s, want token %v, access_token %v", body, tt.wantToken, tt.wantAccess)
				}
				gotExp := int64(-1)
				if tr.ExpiresIn != nil {
					gotExp = *tr.ExpiresIn
				}
				if gotExp != tt.wantExpiresIn || (tt.wantExpiresIn < 0) != (tr.IssuedAt == "") {
					t.Errorf("expires_in = %d, issued_at = %q, want expires_in %d", gotExp, tr.IssuedAt, tt.wantExpiresIn)
				}
				resp, body := postForm(t, reg.Client, iss.Realm, url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "service": {testService}, "client_id": {"e2e"}})
				if resp.StatusCode != tt.wantPOST {
					t.Errorf("POST: %d %s, want %d", resp.StatusCode, body, tt.wantPOST)
				}
			})
		}
	})

	t.Run("catalog policy", func(t *testing.T) {
		tests := []struct {
			name    string
			opts    issuerOptions
			user    bool
			want200 bool
		}{
			{"anonymous denied by default", issuerOptions{}, false, false},
			{"anonymous allowed", issuerOptions{AnonymousCatalog: true}, false, true},
			{"user allowed", issuerOptions{}, true, true},
			{"user denied with DenyCatalog", issuerOptions{DenyCatalog: true}, true, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				iss.Update(func(o *issuerOptions) { *o = tt.opts })
				t.Cleanup(func() { iss.Update(func(o *issuerOptions) { *o = issuerOptions{} }) })
				var h http.Header
				if tt.user {
					h = http.Header{"Authorization": {basicAuth(testUser, testPassword)}}
				}
				tr := decodeToken(t, mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&scope=registry:catalog:*", h))
				resp, _ := get(t, reg.Client, reg.Endpoint("/v2/_catalog"), bearer(tr.Token))
				if (resp.StatusCode == http.StatusOK) != tt.want200 {
					t.Errorf("GET catalog: status %d, want 200: %v", resp.StatusCode, tt.want200)
				}
			})
		}
	})

	t.Run("DenyAnonymous", func(t *testing.T) {
		iss.Update(func(o *issuerOptions) { o.DenyAnonymous = true })
		t.Cleanup(func() { iss.Update(func(o *issuerOptions) { o.DenyAnonymous = false }) })
		tr := decodeToken(t, mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&scope=repository:team/app:pull", nil))
		resp, _ := get(t, reg.Client, manifestURL, withHeader(bearer(tr.Token), accept))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("GET manifest with an empty-access token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("expired token", func(t *testing.T) {
		iss.Update(func(o *issuerOptions) { o.Lifetime = time.Second })
		t.Cleanup(func() { iss.Update(func(o *issuerOptions) { o.Lifetime = 0 }) })
		tr := decodeToken(t, mustGetOK(t, reg.Client, iss.Realm+"?service=test-registry&scope=repository:team/app:pull", nil))
		if tr.ExpiresIn == nil || *tr.ExpiresIn != 1 {
			t.Errorf("expires_in = %v, want 1", tr.ExpiresIn)
		}
		if resp, _ := get(t, reg.Client, manifestURL, withHeader(bearer(tr.Token), accept)); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET manifest with a fresh token: status %d, want 200", resp.StatusCode)
		}
		// The token stops working at most 2 s after it was signed (see issuerOptions.Lifetime).
		time.Sleep(2100 * time.Millisecond)
		resp, _ := get(t, reg.Client, manifestURL, withHeader(bearer(tr.Token), accept))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("GET manifest with an expired token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

// equalAccess compares two access entries.
func equalAccess(a, b resourceActions) bool {
	return a.Type == b.Type && a.Name == b.Name && slices.Equal(a.Actions, b.Actions)
}

// withHeader merges header sets.
func withHeader(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

func TestParseTokenScope(t *testing.T) {
	tests := []struct {
		in      string
		want    resourceActions
		wantErr bool
	}{
		{"repository:a/b:pull", resourceActions{"repository", "a/b", []string{"pull"}}, false},
		{"repository:localhost:5000/a/b:pull,push,pull", resourceActions{"repository", "localhost:5000/a/b", []string{"pull", "push"}}, false},
		{"repository(plugin):a:pull", resourceActions{"repository", "a", []string{"pull"}}, false},
		{"registry:catalog:*", resourceActions{"registry", "catalog", []string{"*"}}, false},
		{"repository:a:", resourceActions{"repository", "a", []string{}}, false},
		{"repository:a", resourceActions{}, true},
		{"::pull", resourceActions{}, true},
		{"", resourceActions{}, true},
	}
	for _, tt := range tests {
		got, err := parseTokenScope(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && !equalAccess(got, tt.want)) {
			t.Errorf("parseTokenScope(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseTokenScope checks that parseTokenScope never panics and that what
// it accepts renders back to a scope that parses to the same thing.
func FuzzParseTokenScope(f *testing.F) {
	for _, s := range []string{
		"repository:a/b:pull", "repository:localhost:5000/a/b:pull,push", "repository(plugin):a:pull",
		"registry:catalog:*", "repository:a:", "a:b", ":::", "x:y:z,,z", "(:a:b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ra, err := parseTokenScope(s)
		if err != nil {
			return
		}
		if ra.Type == "" || ra.Name == "" || strings.Contains(ra.Type, "(") {
			t.Fatalf("parseTokenScope(%q) = %+v: empty or unnormalized part", s, ra)
		}
		again, err := parseTokenScope(ra.Type + ":" + ra.Name + ":" + strings.Join(ra.Actions, ","))
		if err != nil || !equalAccess(again, ra) {
			t.Fatalf("parseTokenScope(%q) = %+v, re-parsed as %+v, %v", s, ra, again, err)
		}
	})
}

// acceptAll is the Accept header a client sends for any manifest kind.
var acceptAll = http.Header{"Accept": {
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, mediaTypeDockerManifest, mediaTypeDockerManifestList,
}}

// checkImage fetches img's manifest by ref and every blob from repo with
// hdr, and fails the test on any difference; layers must also be gzip'd tars
// whose uncompressed digest is the diff ID.
func checkImage(t *testing.T, reg *testRegistry, repo, ref string, img testImage, hdr http.Header) {
	t.Helper()
	resp, body := get(t, reg.Client, reg.Endpoint("/v2/"+repo+"/manifests/"+ref), withHeader(hdr, acceptAll))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, img.Manifest) {
		t.Fatalf("GET manifest %s:%s: status %d, body equal %v", repo, ref, resp.StatusCode, bytes.Equal(body, img.Manifest))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != img.ManifestDesc.Digest.String() {
		t.Errorf("Docker-Content-Digest = %q, want %q", got, img.ManifestDesc.Digest)
	}
	if got := resp.Header.Get("Content-Type"); got != img.ManifestDesc.MediaType {
		t.Errorf("Content-Type = %q, want %q", got, img.ManifestDesc.MediaType)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if !slices.Equal(cfg.RootFS.DiffIDs, img.DiffIDs) || cfg.OS != img.Platform.OS || cfg.Architecture != img.Platform.Architecture || cfg.Variant != img.Platform.Variant {
		t.Errorf("config = %s, want diff_ids %v and platform %+v", img.Config, img.DiffIDs, img.Platform)
	}
	for i, d := range img.Descriptors() {
		resp, blob := get(t, reg.Client, reg.Endpoint("/v2/"+repo+"/blobs/"+d.Digest.String()), hdr)
		if resp.StatusCode != http.StatusOK || digest.FromBytes(blob) != d.Digest || int64(len(blob)) != d.Size {
			t.Fatalf("GET blob %s: status %d, %d bytes, digest %s", d.Digest, resp.StatusCode, len(blob), digest.FromBytes(blob))
		}
		if i == 0 {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("layer %d: %v", i-1, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("layer %d: gunzip: %v", i-1, err)
		}
		if got := digest.FromBytes(raw); got != img.DiffIDs[i-1] {
			t.Errorf("layer %d diff ID = %s, want %s", i-1, got, img.DiffIDs[i-1])
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		h, err := tr.Next()
		if err != nil || h.Typeflag != tar.TypeReg || h.Name != fmt.Sprintf("layer-%d.bin", i-1) {
			t.Fatalf("layer %d: tar entry %+v, %v", i-1, h, err)
		}
		if _, err := tr.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("layer %d: more than one tar entry (%v)", i-1, err)
		}
	}
}

func TestSeed(t *testing.T) {
	t.Run("deterministic", func(t *testing.T) {
		a, b := makeImage(7, []int64{100, 0, 3000}, platformAMD64), makeImage(7, []int64{100, 0, 3000}, platformAMD64)
		if a.ManifestDesc.Digest != b.ManifestDesc.Digest {
			t.Errorf("makeImage digests differ: %s, %s", a.ManifestDesc.Digest, b.ManifestDesc.Digest)
		}
		if c := makeImage(8, []int64{100, 0, 3000}, platformAMD64); c.ManifestDesc.Digest == a.ManifestDesc.Digest {
			t.Errorf("makeImage(8) = makeImage(7)")
		}
		if a.LayerDescs[2].Size < 3000 || a.LayerDescs[2].Size > 3000+4096 {
			t.Errorf("layer of 3000 bytes has blob size %d", a.LayerDescs[2].Size)
		}
		ix := makeIndex(3, []int64{10})
		if len(ix.Images) != 3 {
			t.Fatalf("makeIndex made %d images, want 3", len(ix.Images))
		}
		for _, p := range defaultPlatforms {
			if _, ok := ix.Image(p); !ok {
				t.Errorf("index has no %+v image", p)
			}
		}
	})

	modes := []authMode{authAnonymous, authHtpasswd, authToken}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			reg := newRegistry(t, registryOptions{Auth: mode})
			var hdr http.Header
			switch mode {
			case authHtpasswd:
				hdr = http.Header{"Authorization": {basicAuth(testUser, testPassword)}}
			case authToken:
				hdr = bearer(reg.Issuer.mustMint(t, "", time.Minute, "repository:oci:pull", "repository:docker:pull", "repository:multi:pull", "repository:multi-docker:pull"))
			}
			oci := makeImage(1, []int64{2048, 0, 70000}, platformAMD64)
			pushImage(t, reg, "oci", "v1", oci)
			checkImage(t, reg, "oci", "v1", oci, hdr)
			checkImage(t, reg, "oci", oci.ManifestDesc.Digest.String(), oci, hdr)

			dock := makeDockerImage(2, []int64{5000}, platformARM64v8)
			pushImage(t, reg, "docker", "latest", dock)
			checkImage(t, reg, "docker", "latest", dock, hdr)

			for _, tc := range []struct {
				repo string
				ix   testIndex
			}{
				{"multi", makeIndex(3, []int64{1000, 2000})},
				{"multi-docker", makeDockerManifestList(4, []int64{1000})},
			} {
				pushIndex(t, reg, tc.repo, "v1", tc.ix)
				resp, body := get(t, reg.Client, reg.Endpoint("/v2/"+tc.repo+"/manifests/v1"), withHeader(hdr, acceptAll))
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, tc.ix.Index) || resp.Header.Get("Content-Type") != tc.ix.Desc.MediaType {
					t.Fatalf("GET index %s: status %d %q", tc.repo, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				for _, img := range tc.ix.Images {
					checkImage(t, reg, tc.repo, img.ManifestDesc.Digest.String(), img, hdr)
				}
			}
		})
	}
}

func TestTagsPagination(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(5, []int64{10}, platformAMD64)
	want := []string{"a", "b", "c"}
	for _, tag := range want {
		pushImage(t, reg, "paged", tag, img)
	}
	var got []string
	next := reg.Endpoint("/v2/paged/tags/list?n=1")
	for pages := 0; next != ""; pages++ {
		if pages > len(want)+1 {
			t.Fatalf("more than %d pages", pages)
		}
		resp, body := get(t, reg.Client, next, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", next, resp.StatusCode)
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		got = append(got, page.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			if !strings.HasPrefix(link, "</v2/paged/tags/list?") || !strings.HasSuffix(link, `>; rel="next"`) {
				t.Fatalf("Link = %q, want a relative </v2/paged/tags/list?...>; rel=\"next\"", link)
			}
			ref, err := url.Parse(link[1:strings.Index(link, ">")])
			if err != nil {
				t.Fatalf("Link %q: %v", link, err)
			}
			base, _ := url.Parse(reg.URL)
			next = base.ResolveReference(ref).String()
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("tags over pages = %v, want %v", got, want)
	}
}

func TestFaultProxy(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(9, []int64{100000}, platformAMD64)
	pushImage(t, reg, "faulty", "v1", img)
	layer := img.Layers[0]
	blobPathStr := "/v2/faulty/blobs/" + img.LayerDescs[0].Digest.String()
	target, _ := url.Parse(reg.URL)

	// fetch GETs the layer through fp with an optional Range and returns the
	// response, the body bytes read and the read error.
	fetch := func(t *testing.T, fp *faultProxy, rng string) (*http.Response, []byte, error) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fp.URL+blobPathStr, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := fp.Client.Do(req)
		if err != nil {
			t.Fatalf("GET through proxy: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}

	t.Run("passthrough and Range", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		resp, body, err := fetch(t, fp, "bytes=100-")
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, layer[100:]) {
			t.Errorf("Range through proxy: %d, %d bytes, %v", resp.StatusCode, len(body), err)
		}
		resp, _ = get(t, fp.Client, fp.URL+"/v2/faulty/manifests/v1", acceptAll)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET manifest through proxy: %d", resp.StatusCode)
		}
		if fp.RequestCount() != 2 || fp.BlobGetCount() != 1 || fp.FaultCount() != 0 {
			t.Errorf("counts: requests %d, blob GETs %d, faults %d; want 2, 1, 0", fp.RequestCount(), fp.BlobGetCount(), fp.FaultCount())
		}
		if got := fp.BytesServed(blobPathStr); got != int64(len(layer)-100) {
			t.Errorf("BytesServed = %d, want %d", got, len(layer)-100)
		}
		if log := fp.Requests(); len(log) != 2 || log[0].Range != "bytes=100-" || log[0].Status != http.StatusPartialContent {
			t.Errorf("Requests() = %+v", log)
		}
	})

	t.Run("DropAfter", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.DropAfter(4096, 1)
		resp, body, err := fetch(t, fp, "")
		if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, layer[:4096]) || resp.ContentLength != int64(len(layer)) {
			t.Errorf("dropped GET: %d bytes, Content-Length %d, err %v; want 4096 bytes then unexpected EOF", len(body), resp.ContentLength, err)
		}
		_, body, err = fetch(t, fp, "")
		if err != nil || !bytes.Equal(body, layer) {
			t.Errorf("second GET: %d bytes, %v; want the whole blob", len(body), err)
		}
		if fp.FaultCount() != 1 || fp.Requests()[0].Fault != "drop@4096" {
			t.Errorf("faults = %d, log %+v", fp.FaultCount(), fp.Requests())
		}
	})

	t.Run("DropAfter zero", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.DropAfter(0, 1)
		_, body, err := fetch(t, fp, "")
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 0 {
			t.Errorf("GET: %d bytes, %v; want none and unexpected EOF", len(body), err)
		}
	})

	t.Run("DropRandom", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.DropRandom(42, 3)
		for range 3 {
			_, body, err := fetch(t, fp, "")
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) >= len(layer) || !bytes.Equal(body, layer[:len(body)]) {
				t.Errorf("GET: %d bytes, %v; want a prefix then unexpected EOF", len(body), err)
			}
		}
		if _, body, err := fetch(t, fp, ""); err != nil || !bytes.Equal(body, layer) {
			t.Errorf("fourth GET: %d bytes, %v", len(body), err)
		}
	})

	t.Run("Truncate", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.Truncate(10, always)
		for _, rng := range []string{"", "bytes=1000-"} {
			_, body, err := fetch(t, fp, rng)
			start := 0
			if rng != "" {
				start = 1000
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, layer[start:len(layer)-10]) {
				t.Errorf("GET %q: %d bytes, %v; want all but 10 bytes then unexpected EOF", rng, len(body), err)
			}
		}
		fp.Reset()
		if _, body, err := fetch(t, fp, ""); err != nil || !bytes.Equal(body, layer) {
			t.Errorf("GET after Reset: %d bytes, %v", len(body), err)
		}
	})

	t.Run("IgnoreRange", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.IgnoreRange(1)
		resp, body, err := fetch(t, fp, "bytes=500-")
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
			t.Errorf("Range GET with IgnoreRange: %d, %d bytes, %v; want 200 and the whole blob", resp.StatusCode, len(body), err)
		}
		resp, _, _ = fetch(t, fp, "bytes=500-")
		if resp.StatusCode != http.StatusPartialContent {
			t.Errorf("second Range GET: %d, want 206", resp.StatusCode)
		}
	})

	t.Run("FlipByte", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		const off = 77777
		fp.FlipByte(off, 1)
		_, body, err := fetch(t, fp, "")
		if err != nil || len(body) != len(layer) {
			t.Fatalf("GET: %d bytes, %v", len(body), err)
		}
		var diffs []int
		for i := range body {
			if body[i] != layer[i] {
				diffs = append(diffs, i)
			}
		}
		if !slices.Equal(diffs, []int{off}) || body[off] != layer[off]^0xFF {
			t.Errorf("differing offsets = %v, want [%d]", diffs, off)
		}
		if digest.FromBytes(body) == img.LayerDescs[0].Digest {
			t.Errorf("digest unchanged")
		}
	})

	t.Run("Status", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.Status(http.StatusTooManyRequests, "1", 1)
		resp, _ := get(t, fp.Client, fp.URL+"/v2/faulty/manifests/v1", acceptAll)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("manifest GET with a blob-only Status: %d, want 200", resp.StatusCode)
		}
		resp, body, _ := fetch(t, fp, "")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"TOOMANYREQUESTS"`) {
			t.Errorf("blob GET: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if resp, _, _ := fetch(t, fp, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("blob GET after the fault: %d", resp.StatusCode)
		}
		fp.StatusAny(http.StatusServiceUnavailable, "", 2)
		for _, p := range []string{"/v2/", "/v2/faulty/tags/list"} {
			resp, body := get(t, fp.Client, fp.URL+p, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "" || !strings.Contains(string(body), `"UNAVAILABLE"`) {
				t.Errorf("GET %s with StatusAny: %d %q %s", p, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		}
		if resp, _ := get(t, fp.Client, fp.URL+"/v2/", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v2/ after StatusAny ran out: %d", resp.StatusCode)
		}
	})

	t.Run("Stall", func(t *testing.T) {
		fp := newFaultProxy(t, target)
		fp.Stall(1000, time.Minute, 1)
		client := &http.Client{Timeout: 300 * time.Millisecond}
		defer client.CloseIdleConnections()
		resp, err := client.Get(fp.URL + blobPathStr)
		if err != nil {
			t.Fatalf("GET: %v (headers should arrive before the stall)", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !bytes.Equal(body, layer[:len(body)]) || len(body) < 1000 || len(body) >= len(layer) {
			t.Errorf("stalled GET: %d bytes, %v; want at least 1000 bytes then a client timeout", len(body), err)
		}
		fp.Stall(0, 50*time.Millisecond, 1)
		if _, body, err := fetch(t, fp, ""); err != nil || !bytes.Equal(body, layer) {
			t.Errorf("short stall: %d bytes, %v; want the whole blob", len(body), err)
		}
	})

	t.Run("Redirect and Authorize", func(t *testing.T) {
		treg := newRegistry(t, registryOptions{Auth: authToken})
		pushImage(t, treg, "faulty", "v1", img)
		u, _ := url.Parse(treg.URL)
		front, cdn := newFaultProxy(t, u), newFaultProxy(t, u)
		cdnURL, _ := url.Parse(cdn.URL)
		front.Redirect(cdnURL, 1)
		cdn.Authorize("Bearer " + treg.Issuer.mustMint(t, "", time.Minute, "repository:faulty:pull"))
		clientTok := treg.Issuer.mustMint(t, testUser, time.Minute, "repository:faulty:pull")
		resp, body := get(t, front.Client, front.URL+blobPathStr+"?x=1", bearer(clientTok))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
			t.Errorf("redirected GET: %d, %d bytes", resp.StatusCode, len(body))
		}
		flog, clog := front.Requests(), cdn.Requests()
		if len(flog) != 1 || flog[0].Status != http.StatusTemporaryRedirect || flog[0].Fault != "redirect "+cdn.URL+blobPathStr+"?x=1" || flog[0].Authorization != "Bearer "+clientTok {
			t.Errorf("front log = %+v", flog)
		}
		if len(clog) != 1 || clog[0].Path != blobPathStr || clog[0].Status != http.StatusOK {
			t.Errorf("cdn log = %+v", clog)
		}
		cdn.ClearAuthorization()
		if resp, _ := get(t, cdn.Client, cdn.URL+blobPathStr, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET without credentials after ClearAuthorization: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("HTTPS target", func(t *testing.T) {
		treg := newRegistry(t, registryOptions{TLS: true})
		pushImage(t, treg, "faulty", "v1", img)
		u, _ := url.Parse(treg.URL)
		fp := newFaultProxy(t, u)
		if _, body, err := fetch(t, fp, ""); err != nil || !bytes.Equal(body, layer) {
			t.Errorf("GET through proxy to https: %d bytes, %v", len(body), err)
		}
	})
}

// TestNoLeaks runs a full round (token registry, proxy, a stalled and a
// dropped download) in a subtest, and checks that once its cleanups ran the
// goroutine count is back near where it was.
func TestNoLeaks(t *testing.T) {
	round := func(t *testing.T) {
		reg := newRegistry(t, registryOptions{Auth: authToken})
		img := makeImage(11, []int64{50000}, platformAMD64)
		pushImage(t, reg, "leak", "v1", img)
		target, _ := url.Parse(reg.URL)
		fp := newFaultProxy(t, target)
		fp.Stall(10, time.Hour, 1)
		tok := reg.Issuer.mustMint(t, "", time.Minute, "repository:leak:pull")
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fp.URL+"/v2/leak/blobs/"+img.LayerDescs[0].Digest.String(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := fp.Client.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		// Leave the stalled body unread: the cleanups must release it.
		t.Cleanup(func() { resp.Body.Close() })
	}
	t.Run("warm-up", round)
	base := runtime.NumGoroutine()
	t.Run("round", round)
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d after the round, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
