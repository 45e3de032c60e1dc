package ocistream

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/ocitypes"
)

// replayFixture answers w with the raw HTTP response recorded in
// testdata/quirks/name (see its README).
func replayFixture(t *testing.T, w http.ResponseWriter, name string) {
	f, err := os.Open(filepath.Join("testdata", "quirks", name))
	if err != nil {
		t.Errorf("fixture %s: %v", name, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	resp, err := http.ReadResponse(bufio.NewReader(f), nil)
	if err != nil {
		t.Errorf("fixture %s: %v", name, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// tokenServer is a token endpoint with the behaviours protocol.md records for real
// registries; it counts GET and POST requests and records what they carried.
type tokenServer struct {
	mu       sync.Mutex
	gets     int
	posts    int
	forms    []url.Values
	queries  []url.Values
	basic    []string
	postCode int    // non-zero: answer POST with this status (Harbor 405, GCR 404)
	body     string // the JSON answered; default {"token":"tok"}
	fixture  string // when set, answer 200s with this recorded response instead of body
	t        *testing.T
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		ts.posts++
		if ts.postCode == http.StatusMethodNotAllowed {
			replayFixture(ts.t, w, "harbor-token-post.http")
			return
		}
		if ts.postCode != 0 {
			http.Error(w, http.StatusText(ts.postCode), ts.postCode)
			return
		}
		r.ParseForm()
		ts.forms = append(ts.forms, r.PostForm)
	case http.MethodGet:
		ts.gets++
		ts.queries = append(ts.queries, r.URL.Query())
		ts.basic = append(ts.basic, r.Header.Get("Authorization"))
	}
	if ts.fixture != "" {
		replayFixture(ts.t, w, ts.fixture)
		return
	}
	body := ts.body
	if body == "" {
		body = `{"token":"tok"}`
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

func (ts *tokenServer) counts() (gets, posts int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.gets, ts.posts
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

const testManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`

// bearerAuth is the access control of the fake registry of newBearerPair: a Bearer
// challenge naming the token server tsrv, accepting only token.
func bearerAuth(tsrv *httptest.Server, token string) fakeregistry.Auth {
	return fakeregistry.Auth{Scheme: "bearer", Realm: tsrv.URL + "/token", Service: "registry.test", Token: token}
}

// newBearerPair starts ts and a fake registry that answers 401 with a Bearer challenge
// naming ts unless the request carries "Bearer <token>"; then it serves testManifest
// as a/b:v1 and library/app:v1.
func newBearerPair(t *testing.T, ts *tokenServer, token string) (*fakeregistry.Registry, *httptest.Server, *httptest.Server) {
	t.Helper()
	tsrv := httptest.NewServer(ts)
	t.Cleanup(tsrv.Close)
	rg := fakeregistry.Start(t)
	rg.SetAuth(bearerAuth(tsrv, token))
	for _, repo := range []string{"a/b", "library/app"} {
		rg.PutManifest(repo, "v1", ocitypes.MediaTypeOCIManifest, []byte(testManifest))
	}
	return rg, rg.Server, tsrv
}

// unauthorized counts the requests rg answered 401.
func unauthorized(rg *fakeregistry.Registry) int {
	n := 0
	for _, q := range rg.Log() {
		if q.Status == http.StatusUnauthorized {
			n++
		}
	}
	return n
}

func TestBearerAnonymousGet(t *testing.T) {
	ts := &tokenServer{fixture: "quay-token.http", t: t}
	rg, rsrv, tsrv := newBearerPair(t, ts, "tok")
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)))
	ref := hostOf(rsrv) + "/library/app:v1"
	for range 5 {
		if _, _, err := c.Manifest(t.Context(), ref); err != nil {
			t.Fatal(err)
		}
	}
	gets, posts := ts.counts()
	if gets != 1 || posts != 0 {
		t.Errorf("token requests: %d GET, %d POST; want one GET (cached after)", gets, posts)
	}
	if n := unauthorized(rg); n != 1 {
		t.Errorf("401s = %d, want 1 (only the first request)", n)
	}
	q := ts.queries[0]
	if q.Get("service") != "registry.test" || q.Get("scope") != "repository:library/app:pull" || ts.basic[0] != "" {
		t.Errorf("token GET carried %v, Authorization %q", q, ts.basic[0])
	}
}

func TestBearerDualTokenFields(t *testing.T) {
	// Docker Hub answers both token and access_token; access_token wins (as in
	// distribution, containerd, ggcr and regclient).
	ts := &tokenServer{fixture: "dockerhub-token.http", t: t}
	_, rsrv, tsrv := newBearerPair(t, ts, "new")
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)))
	if _, _, err := c.Manifest(t.Context(), hostOf(rsrv)+"/a/b:v1"); err != nil {
		t.Fatal(err)
	}
}

func TestBearerPasswordGrantAndFallbacks(t *testing.T) {
	tests := []struct {
		name      string
		postCode  int
		cred      Credential
		wantGets  int
		wantPosts int
		wantGrant string
	}{
		{"post password grant", 0, Credential{Username: "u", Password: "p"}, 0, 1, "password"},
		{"post refresh grant", 0, Credential{RefreshToken: "rt"}, 0, 1, "refresh_token"},
		{"harbor 405 then GET", http.StatusMethodNotAllowed, Credential{Username: "u", Password: "p"}, 1, 1, ""},
		{"gcr 404 then GET", http.StatusNotFound, Credential{Username: "oauth2accesstoken", Password: "p"}, 1, 1, ""},
		{"artifactory 401 then GET", http.StatusUnauthorized, Credential{Username: "u", Password: "p"}, 1, 1, ""},
		{"acr 400 then GET", http.StatusBadRequest, Credential{Username: "u", Password: "p"}, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := &tokenServer{postCode: tt.postCode, t: t}
			_, rsrv, tsrv := newBearerPair(t, ts, "tok")
			c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)), WithCredentials(StaticCredentials(hostOf(rsrv), tt.cred)))
			if _, _, err := c.Manifest(t.Context(), hostOf(rsrv)+"/a/b:v1"); err != nil {
				t.Fatal(err)
			}
			gets, posts := ts.counts()
			if gets != tt.wantGets || posts != tt.wantPosts {
				t.Errorf("token requests: %d GET, %d POST; want %d, %d", gets, posts, tt.wantGets, tt.wantPosts)
			}
			if tt.wantGrant != "" {
				f := ts.forms[0]
				if f.Get("grant_type") != tt.wantGrant || f.Get("client_id") == "" || f.Get("service") != "registry.test" || f.Get("scope") != "repository:a/b:pull" {
					t.Errorf("POST form = %v", f)
				}
			}
			if tt.wantGets > 0 {
				if want := "Basic " + basicAuth(tt.cred.Username, tt.cred.Password); ts.basic[0] != want {
					t.Errorf("GET fallback Authorization = %q, want %q", ts.basic[0], want)
				}
				if ts.queries[0].Get("account") != tt.cred.Username {
					t.Errorf("GET fallback account = %q", ts.queries[0].Get("account"))
				}
			}
		})
	}
}

func TestBearerTokenRenegotiatedOnceOn401(t *testing.T) {
	// A token the registry stops accepting (expired, revoked) earns a 401: the client
	// fetches one new token and retries once. A registry that refuses every token
	// costs a bounded number of requests and ends in ErrUnauthorized.
	ts := &tokenServer{body: `{"token":"tok","expires_in":3600}`}
	rg, rsrv, tsrv := newBearerPair(t, ts, "tok")
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)))
	ref := hostOf(rsrv) + "/a/b:v1"
	if _, _, err := c.Manifest(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	rg.SetAuth(bearerAuth(tsrv, "rotated")) // the cached "tok" is now refused
	ts.mu.Lock()
	ts.body = `{"token":"rotated","expires_in":3600}`
	ts.mu.Unlock()
	if _, _, err := c.Manifest(t.Context(), ref); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if gets, _ := ts.counts(); gets != 2 {
		t.Errorf("token GETs = %d, want 2", gets)
	}
	rg.SetAuth(bearerAuth(tsrv, "never")) // no token works any more
	before := rg.Requests()
	_, _, err := c.Manifest(t.Context(), ref)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := rg.Requests() - before; n != 2 {
		t.Errorf("requests for a refused token = %d, want 2 (one re-negotiation, no loop)", n)
	}
}

func TestTokenExpiryRenewsBeforeUse(t *testing.T) {
	ts := &tokenServer{body: `{"token":"tok","expires_in":1}`}
	rg, rsrv, tsrv := newBearerPair(t, ts, "tok")
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)))
	if _, _, err := c.Manifest(t.Context(), hostOf(rsrv)+"/a/b:v1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, _, err := c.Manifest(t.Context(), hostOf(rsrv)+"/a/b:v1"); err != nil {
		t.Fatal(err)
	}
	if gets, _ := ts.counts(); gets != 2 {
		t.Errorf("token GETs = %d, want 2 (renewed after expiry)", gets)
	}
	if n := unauthorized(rg); n != 1 {
		t.Errorf("401s = %d, want 1: an expired token must be renewed before it is sent", n)
	}
}

func TestBasicChallengeECR(t *testing.T) {
	// ECR challenges with Basic; the realm is not a token endpoint. The refusal body
	// is plain text.
	var authz atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Basic "+basicAuth("AWS", "secret") {
			authz.Store(r.Header.Get("Authorization"))
			replayFixture(t, w, "ecr-unauthorized.http")
			return
		}
		w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
		io.WriteString(w, testManifest)
	}))
	defer srv.Close()
	ref := hostOf(srv) + "/a/b:v1"

	anon := newTestClient(t, srv)
	_, _, err := anon.Manifest(t.Context(), ref)
	var re *ResponseError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &re) || re.Detail != "Not Authorized" {
		t.Fatalf("anonymous: err = %v, want ErrUnauthorized with detail %q", err, "Not Authorized")
	}

	c := newTestClient(t, srv, WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "AWS", Password: "secret"})))
	if _, _, err := c.Manifest(t.Context(), ref); err != nil {
		t.Fatalf("with credentials: %v", err)
	}
}

func TestBasicRefusedOverPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials reached a plain-http host that was not marked plain")
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	// The client talks plain HTTP to every host (a testing convenience) but only the
	// explicitly named ones may receive Basic credentials.
	c, err := New(WithPlainHTTP(), WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "u", Password: "p"})))
	if err != nil {
		t.Fatal(err)
	}
	c.auth.plainHosts = map[string]bool{}
	c.auth.plainOK = nil // and loopback counts as a remote host here
	err = c.Ping(t.Context(), hostOf(srv))
	if !errors.Is(err, ErrInsecureCredentials) {
		t.Errorf("Ping = %v, want ErrInsecureCredentials", err)
	}
}

func TestBlobRedirectDropsAuthorization(t *testing.T) {
	// ECR and S3: a presigned URL answers 400 when an Authorization header is present.
	blob := []byte("layer bytes")
	var sawAuth atomic.Bool
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			sawAuth.Store(true)
			http.Error(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>", http.StatusBadRequest)
			return
		}
		w.Write(blob)
	}))
	defer storage.Close()
	ts := &tokenServer{}
	rg, rsrv, tsrv := newBearerPair(t, ts, "tok")
	rg.AddFault(fakeregistry.Fault{Path: "/blobs/", Redirect: storage.URL + "/blobs/data?X-Amz-Signature=abc"})
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv), hostOf(storage)))
	d := ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digestOf(blob), Size: int64(len(blob))}
	rc, err := c.Blob(t.Context(), hostOf(rsrv)+"/a/b", d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(blob) {
		t.Fatalf("blob = %q, %v", got, err)
	}
	if sawAuth.Load() {
		t.Error("the storage host received the registry's Authorization header")
	}
}

func TestBlobRelativeRedirectSameHost(t *testing.T) {
	// Artifact Registry: a relative 302 on the same host.
	blob := []byte("artifact registry layer")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			w.Header().Set("Location", "/artifacts-downloads/namespaces/p/repositories/r/downloads/SIGNATURE")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Write(blob)
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	d := ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digestOf(blob), Size: int64(len(blob))}
	rc, err := c.Blob(t.Context(), hostOf(srv)+"/p/r", d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != string(blob) {
		t.Errorf("blob = %q, %v", got, err)
	}
}

func TestResolveWithoutDockerContentDigest(t *testing.T) {
	ts := &tokenServer{}
	rg, rsrv, tsrv := newBearerPair(t, ts, "tok")
	rg.AddFault(fakeregistry.Fault{Path: "/manifests/", OmitDigest: true}) // ECR, Red Hat
	c := newTestClient(t, rsrv, WithPlainHTTP(hostOf(rsrv), hostOf(tsrv)))
	d, err := c.Resolve(t.Context(), hostOf(rsrv)+"/a/b:v1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest.String() != sha256Digest([]byte(testManifest)) || d.Size != int64(len(testManifest)) || d.MediaType != ocitypes.MediaTypeOCIManifest {
		t.Errorf("Resolve = %+v", d)
	}
}

func TestManifestDigestMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
		w.Header().Set("Docker-Content-Digest", sha256Digest([]byte("something else")))
		io.WriteString(w, testManifest)
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	if _, _, err := c.Manifest(t.Context(), hostOf(srv)+"/a/b:v1"); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("tag with lying Docker-Content-Digest: %v, want ErrDigestMismatch", err)
	}
	wrong := hostOf(srv) + "/a/b@" + sha256Digest([]byte("other"))
	if _, _, err := c.Manifest(t.Context(), wrong); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("by digest: %v, want ErrDigestMismatch", err)
	}
}

func TestManifestSizeLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
		w.Write([]byte(`{"schemaVersion":2,"x":"`))
		w.Write([]byte(strings.Repeat("a", ocitypes.MaxManifestSize)))
		w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	if _, _, err := c.Manifest(t.Context(), hostOf(srv)+"/a/b:v1"); !errors.Is(err, ErrSizeExceedsLimit) {
		t.Errorf("Manifest = %v, want ErrSizeExceedsLimit", err)
	}
}

func TestRetryAndRateLimit(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/flaky/tags/list":
			if n.Add(1) <= 2 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, `{"name":"flaky","tags":["a"]}`)
		case "/v2/limited/tags/list":
			replayFixture(t, w, "dockerhub-ratelimited.http")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	tags, err := Collect(c.Tags(t.Context(), hostOf(srv)+"/flaky", nil))
	if err != nil || len(tags) != 1 || n.Load() != 3 {
		t.Errorf("flaky: %v, %v after %d requests; want [a] after 3", tags, err, n.Load())
	}
	start := time.Now()
	_, err = Collect(c.Tags(t.Context(), hostOf(srv)+"/limited", nil))
	var re *ResponseError
	if !errors.Is(err, ErrTooManyRequests) || !errors.As(err, &re) {
		t.Fatalf("limited: %v, want ErrTooManyRequests", err)
	}
	if re.RateLimit == nil || re.RateLimit.Limit != 100 || re.RateLimit.Remaining != 0 || re.RateLimit.Window != 6*time.Hour || re.RateLimit.Source != "192.0.2.1" {
		t.Errorf("RateLimit = %+v", re.RateLimit)
	}
	if re.RetryAfter != time.Hour {
		t.Errorf("RetryAfter = %v, want 1h", re.RetryAfter)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("a Retry-After beyond the cap must not be waited for")
	}
	if !strings.Contains(re.Error(), "rate limit 100, remaining 0") {
		t.Errorf("Error() = %q does not surface the rate limit", re.Error())
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := newTestClient(t, srv, WithRetryPolicy(RetryPolicy{MaxRetries: 10, MinWait: time.Second, MaxWait: time.Second, MaxRetryAfter: 10 * time.Second}))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx, hostOf(srv))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping = %v, want context.DeadlineExceeded", err)
	}
	if n.Load() != 1 {
		t.Errorf("requests = %d, want 1: no retry after the context ended", n.Load())
	}
}

func TestCheckRealm(t *testing.T) {
	at := &authTransport{plainHosts: map[string]bool{}}
	tests := []struct {
		registry, realm string
		creds           bool
		want            error
	}{
		{"93.184.216.34:443", "https://127.0.0.1/token", false, ErrCrossOrigin},
		{"93.184.216.34:443", "https://10.0.0.5/token", false, ErrCrossOrigin},
		{"93.184.216.34:443", "https://[::1]/token", false, ErrCrossOrigin},
		{"93.184.216.34:443", "https://93.184.216.35/token", false, nil},
		{"127.0.0.1:5000", "https://127.0.0.1:5001/token", false, nil},
		{"localhost:5000", "http://127.0.0.1:5001/token", false, nil},
		{"127.0.0.1:5000", "http://127.0.0.1:5001/token", true, nil}, // a plain registry's own host
		{"127.0.0.2:5000", "http://127.0.0.1:5001/token", true, ErrInsecureCredentials},
		{"93.184.216.34:443", "http://93.184.216.35/token", true, ErrInsecureCredentials},
		{"93.184.216.34:443", "ftp://93.184.216.35/token", false, ErrInvalidChallenge},
		{"93.184.216.34:443", "/relative", false, ErrInvalidChallenge},
	}
	for _, tt := range tests {
		ha := &hostAuth{host: tt.registry, secure: true, plain: strings.HasPrefix(tt.registry, "127.")}
		_, err := at.checkRealm(t.Context(), ha, tt.realm, tt.creds)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("checkRealm(%s, %s, creds=%v) = %v, want %v", tt.registry, tt.realm, tt.creds, err, tt.want)
		}
	}
}

func TestResponseErrorIs(t *testing.T) {
	tests := []struct {
		status int
		codes  []string
		want   error
	}{
		{401, nil, ErrUnauthorized},
		{403, nil, ErrDenied},
		{404, []string{"MANIFEST_UNKNOWN"}, ErrNotFound},
		{400, []string{"NAME_UNKNOWN"}, ErrNotFound},
		{429, nil, ErrTooManyRequests},
		{405, []string{"UNSUPPORTED"}, ErrUnsupported},
		{403, []string{"DENIED"}, ErrDenied},
	}
	for _, tt := range tests {
		e := &ResponseError{Method: "GET", URL: "https://r/v2/", StatusCode: tt.status}
		for _, c := range tt.codes {
			e.Errors = append(e.Errors, ocitypes.RegistryError{Code: c})
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", e), tt.want) {
			t.Errorf("ResponseError{%d %v} is not %v", tt.status, tt.codes, tt.want)
		}
	}
	if errors.Is(&ResponseError{StatusCode: 500}, ErrNotFound) {
		t.Error("500 matched ErrNotFound")
	}
}

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://user:pass@s3.example/blob?X-Amz-Signature=abc&x=1")
	got := redactURL(u)
	if strings.Contains(got, "pass") || strings.Contains(got, "abc") || !strings.Contains(got, "x=1") {
		t.Errorf("redactURL = %q", got)
	}
}

func TestGCRTagsWithoutPagination(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		replayFixture(t, w, "gcr-tags.http") // GCR ignores n and adds non-standard fields
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	tags, err := Collect(c.Tags(t.Context(), hostOf(srv)+"/p/app", &ListOptions{PageSize: 1}))
	if err != nil || len(tags) != 3 || n.Load() != 1 {
		t.Errorf("tags = %v, %v after %d requests", tags, err, n.Load())
	}
}

func TestQuayAbsoluteLink(t *testing.T) {
	reg := fakeregistry.New()
	for _, tag := range []string{"a", "b", "c"} {
		reg.PutManifest("ns/repo", tag, ocitypes.MediaTypeOCIManifest, []byte(testManifest))
	}
	reg.SetNextLink(func(r *http.Request, last string, n int) string {
		return fmt.Sprintf(`<http://%s/v2/ns/repo/tags/list?n=%d&next_page=%s>; rel="next"`, r.Host, n, url.QueryEscape(last))
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if np := r.URL.Query().Get("next_page"); np != "" {
			q := r.URL.Query()
			q.Set("last", np)
			r.URL.RawQuery = q.Encode()
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	tags, err := Collect(c.Tags(t.Context(), hostOf(srv)+"/ns/repo", &ListOptions{PageSize: 1}))
	if err != nil || strings.Join(tags, ",") != "a,b,c" {
		t.Errorf("tags = %v, %v", tags, err)
	}
}

func TestHarborBasicAfterInsufficientScope(t *testing.T) {
	// Harbor answers any refused request that carried an Authorization header with
	// `Basic realm="harbor"` (goharbor/harbor#17930), and accepts Basic credentials.
	ts := &tokenServer{postCode: http.StatusMethodNotAllowed, body: `{"token":"weak"}`, t: t}
	tsrv := httptest.NewServer(ts)
	defer tsrv.Close()
	var basicOK atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		switch {
		case authz == "Basic "+basicAuth("u", "p"):
			basicOK.Add(1)
			w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
			io.WriteString(w, testManifest)
		case authz == "":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="harbor-registry",scope="repository:p/app:pull"`, tsrv.URL+"/service/token"))
			w.WriteHeader(http.StatusUnauthorized)
		default: // the token lacks the scope
			replayFixture(t, w, "harbor-insufficient-scope.http")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv, WithPlainHTTP(hostOf(srv), hostOf(tsrv)), WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "u", Password: "p"})))
	for range 2 {
		if _, _, err := c.Manifest(t.Context(), hostOf(srv)+"/p/app:v1"); err != nil {
			t.Fatal(err)
		}
	}
	if basicOK.Load() != 2 {
		t.Errorf("Basic requests = %d, want 2 (the client switched to Basic and stayed)", basicOK.Load())
	}
}

func TestAzureTokenExchange(t *testing.T) {
	// ACR: an Entra ID token is exchanged at /oauth2/exchange for a refresh token, which
	// the refresh_token grant turns into access tokens.
	var exchanged, refreshed atomic.Int64
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/exchange":
			r.ParseForm()
			if r.PostForm.Get("grant_type") != "access_token" || r.PostForm.Get("access_token") != "aad-token" || r.PostForm.Get("service") != "contoso.azurecr.io" {
				http.Error(w, "bad exchange "+r.PostForm.Encode(), http.StatusBadRequest)
				return
			}
			exchanged.Add(1)
			io.WriteString(w, `{"refresh_token":"acr-refresh"}`)
		case "/oauth2/token":
			r.ParseForm()
			if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "acr-refresh" {
				http.Error(w, "bad grant", http.StatusUnauthorized)
				return
			}
			refreshed.Add(1)
			io.WriteString(w, `{"access_token":"acr-access"}`)
		default:
			if r.Header.Get("Authorization") != "Bearer acr-access" {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="contoso.azurecr.io",scope="repository:hello-world:pull"`, srvURL+"/oauth2/token"))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
			io.WriteString(w, testManifest)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	c := newTestClient(t, srv, WithCredentials(StaticCredentials(hostOf(srv), Credential{AzureADToken: "aad-token"})))
	if _, _, err := c.Manifest(t.Context(), hostOf(srv)+"/hello-world:v1"); err != nil {
		t.Fatal(err)
	}
	if exchanged.Load() != 1 || refreshed.Load() != 1 {
		t.Errorf("exchanges = %d, refresh grants = %d; want 1 and 1", exchanged.Load(), refreshed.Load())
	}
}
