package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/golang-jwt/jwt/v5"
)

// defaultTokenLifetime is the lifetime of issued tokens when
// issuerOptions.Lifetime is zero.
const defaultTokenLifetime = 5 * time.Minute

// defaultPushTokenLifetime is the lifetime of tokens minted for seeding.
const defaultPushTokenLifetime = time.Hour

// Values of issuerOptions.TokenField.
const (
	// tokenFieldBoth answers with both "token" and "access_token" (Docker Hub).
	tokenFieldBoth = ""
	// tokenFieldToken answers with "token" only (Quay, Harbor, Gitea).
	tokenFieldToken = "token"
	// tokenFieldAccessToken answers with "access_token" only (ACR).
	tokenFieldAccessToken = "access_token"
)

// issuerOptions are the knobs of a tokenIssuer. The zero value issues tokens
// valid for 5 minutes with both token fields, expires_in and issued_at, and
// accepts POST.
type issuerOptions struct {
	// Lifetime is how long an issued token is accepted by the registry
	// (default 5 minutes; at least 1s is meaningful). The registry adds a
	// fixed 60 s leeway to the JWT's exp claim, so the issuer writes
	// exp = ceil(now+Lifetime) - 60s: the token really stops working between
	// Lifetime and Lifetime+1s after it is signed. expires_in is Lifetime rounded up
	// to whole seconds.
	Lifetime time.Duration
	// OmitExpiresIn leaves expires_in and issued_at out of responses (Quay).
	OmitExpiresIn bool
	// DisablePOST, when non-zero, is the status answered to every POST
	// (405 like Harbor and Quay, 404 like GCR and GitLab, 400, 401...).
	DisablePOST int
	// TokenField selects the response fields carrying the token:
	// tokenFieldBoth (default), tokenFieldToken or tokenFieldAccessToken.
	TokenField string
	// AnonymousCatalog grants registry:catalog:* to anonymous requests.
	AnonymousCatalog bool
	// DenyAnonymous makes anonymous requests get a token with no access at
	// all (Harbor-style private projects) instead of pull on repositories.
	DenyAnonymous bool
	// DenyCatalog grants registry:catalog:* to nobody, not even testUser
	// (Docker Hub, GitLab.com).
	DenyCatalog bool
}

// tokenRequest records one request the issuer answered, for assertions.
type tokenRequest struct {
	Method    string   // "GET" or "POST"
	GrantType string   // POST: "password" or "refresh_token"; GET: ""
	Account   string   // GET: the account parameter; POST: the username
	BasicUser string   // GET: the Basic auth user name, "" when none
	ClientID  string   // client_id
	Service   string   // service
	Scopes    []string // requested scopes, one per entry, in request order
	Offline   bool     // GET offline_token=true or POST access_type=offline
	Status    int      // status code answered
}

// issuerCounts is a snapshot of a tokenIssuer's counters.
type issuerCounts struct {
	GET           int64 // GET requests answered 200
	POSTPassword  int64 // POST grant_type=password answered 200
	POSTRefresh   int64 // POST grant_type=refresh_token answered 200
	POSTRejected  int64 // POST answered with the DisablePOST status
	Unauthorized  int64 // requests answered 401 (bad credentials or refresh token)
	BadRequest    int64 // requests answered 400 (bad service, grant type, form)
	RefreshIssued int64 // refresh tokens handed out (new or repeated)
}

// resourceActions is one entry of the JWT access claim, as the registry's
// token access controller reads it.
type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// tokenIssuer is a token server for a token-auth testRegistry: GET and POST
// on /token, ES256 JWTs carrying the issuer certificate in their x5c header.
// It grants everything requested to testUser, pull on repositories to
// anonymous requests, and counts and logs what it is asked.
type tokenIssuer struct {
	// Realm is the token endpoint URL, "<server URL>/token".
	Realm string
	// RootCertBundle is the path of the PEM file holding the issuer's
	// self-signed certificate, as the registry's rootcertbundle.
	RootCertBundle string
	// Server is the underlying httptest server.
	Server *httptest.Server

	key     *ecdsa.PrivateKey
	certDER []byte

	mu       sync.Mutex
	opts     issuerOptions
	refresh  map[string]string // refresh token -> subject
	requests []tokenRequest

	nGET, nPOSTPassword, nPOSTRefresh, nPOSTRejected atomic.Int64
	nUnauthorized, nBadRequest, nRefreshIssued       atomic.Int64
	nJTI                                             atomic.Int64
}

// newTokenIssuer starts a token issuer (over TLS with the httptest
// certificate when useTLS) and writes its certificate to a PEM file in
// t.TempDir(). It generates a P-256 key and a self-signed certificate, which
// costs about a millisecond. The server is closed by t.Cleanup.
func newTokenIssuer(t testing.TB, opts issuerOptions, useTLS bool) *tokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate issuer key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: testIssuerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create issuer certificate: %v", err)
	}
	bundle := filepath.Join(t.TempDir(), "issuer-root.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(bundle, pemBytes, 0o600); err != nil {
		t.Fatalf("write issuer certificate: %v", err)
	}

	iss := &tokenIssuer{
		RootCertBundle: bundle,
		key:            key,
		certDER:        der,
		opts:           opts,
		refresh:        map[string]string{},
	}
	srv := httptest.NewUnstartedServer(iss)
	srv.Config.ErrorLog = discardLogger
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	iss.Server = srv
	iss.Realm = srv.URL + testTokenPath
	return iss
}

// Update changes the issuer's options under its lock; later requests see the
// change. Use it to shorten the token lifetime or disable POST mid-test.
func (iss *tokenIssuer) Update(f func(o *issuerOptions)) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	f(&iss.opts)
}

// options returns a copy of the current options.
func (iss *tokenIssuer) options() issuerOptions {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.opts
}

// Counts returns a snapshot of the counters.
func (iss *tokenIssuer) Counts() issuerCounts {
	return issuerCounts{
		GET:           iss.nGET.Load(),
		POSTPassword:  iss.nPOSTPassword.Load(),
		POSTRefresh:   iss.nPOSTRefresh.Load(),
		POSTRejected:  iss.nPOSTRejected.Load(),
		Unauthorized:  iss.nUnauthorized.Load(),
		BadRequest:    iss.nBadRequest.Load(),
		RefreshIssued: iss.nRefreshIssued.Load(),
	}
}

// Requests returns a copy of the log of answered requests, oldest first.
func (iss *tokenIssuer) Requests() []tokenRequest {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	out := make([]tokenRequest, len(iss.requests))
	for i, r := range iss.requests {
		r.Scopes = slices.Clone(r.Scopes)
		out[i] = r
	}
	return out
}

// RequestedScopes returns every scope requested so far, in order, across all
// requests.
func (iss *tokenIssuer) RequestedScopes() []string {
	var out []string
	for _, r := range iss.Requests() {
		out = append(out, r.Scopes...)
	}
	return out
}

// RefreshToken returns a new refresh token for testUser, as if it had been
// obtained with offline access, without any HTTP request.
func (iss *tokenIssuer) RefreshToken() string {
	return iss.newRefreshToken(testUser)
}

// Mint signs a token for subject ("" for anonymous) granting the given
// scopes, exactly as requested (no policy applied), accepted by the registry
// for lifetime. It costs one ECDSA signature and no HTTP request.
func (iss *tokenIssuer) Mint(subject string, lifetime time.Duration, scopes ...string) (string, error) {
	var access []resourceActions
	for _, s := range scopes {
		ra, err := parseTokenScope(s)
		if err != nil {
			return "", err
		}
		access = append(access, ra)
	}
	return iss.sign(subject, lifetime, access)
}

// mustMint is Mint failing the test on error.
func (iss *tokenIssuer) mustMint(t testing.TB, subject string, lifetime time.Duration, scopes ...string) string {
	t.Helper()
	tok, err := iss.Mint(subject, lifetime, scopes...)
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	return tok
}

// sign builds and signs the JWT. See issuerOptions.Lifetime for the exp
// arithmetic.
func (iss *tokenIssuer) sign(subject string, lifetime time.Duration, access []resourceActions) (string, error) {
	now := time.Now()
	end := now.Add(lifetime)
	exp := end.Unix()
	if end.Nanosecond() != 0 {
		exp++
	}
	exp -= int64(token.Leeway / time.Second)
	if access == nil {
		access = []resourceActions{}
	}
	claims := jwt.MapClaims{
		"iss":    testIssuerName,
		"sub":    subject,
		"aud":    testService,
		"exp":    exp,
		"nbf":    now.Unix(),
		"iat":    now.Unix(),
		"jti":    fmt.Sprintf("e2e-%d-%d", now.UnixNano(), iss.nJTI.Add(1)),
		"access": access,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(iss.certDER)}
	s, err := tok.SignedString(iss.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// tokenClaims are the decoded claims of an issued token.
type tokenClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	ExpiresAt int64             `json:"exp"`
	NotBefore int64             `json:"nbf"`
	IssuedAt  int64             `json:"iat"`
	ID        string            `json:"jti"`
	Access    []resourceActions `json:"access"`
}

// Claims verifies raw with the issuer's key and returns its claims, failing
// the test when raw is not a token of this issuer. Expiry is not checked.
func (iss *tokenIssuer) Claims(t testing.TB, raw string) tokenClaims {
	t.Helper()
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &iss.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	b, err := json.Marshal(tok.Claims)
	if err != nil {
		t.Fatalf("encode claims: %v", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	return c
}

// parseTokenScope parses "type:name:actions" where name may hold one colon
// (a port): type ends at the first colon, actions start after the last.
func parseTokenScope(s string) (resourceActions, error) {
	first := strings.Index(s, ":")
	last := strings.LastIndex(s, ":")
	if first < 0 || first == last {
		return resourceActions{}, fmt.Errorf("invalid scope %q: want type:name:actions", s)
	}
	typ, name, acts := s[:first], s[first+1:last], s[last+1:]
	if i := strings.Index(typ, "("); i >= 0 { // "repository(plugin)" is "repository"
		typ = typ[:i]
	}
	if typ == "" || name == "" {
		return resourceActions{}, fmt.Errorf("invalid scope %q: empty type or name", s)
	}
	ra := resourceActions{Type: typ, Name: name, Actions: []string{}}
	for a := range strings.SplitSeq(acts, ",") {
		if a != "" && !slices.Contains(ra.Actions, a) {
			ra.Actions = append(ra.Actions, a)
		}
	}
	return ra, nil
}

// grant applies the issuer policy to the requested scopes: testUser gets
// everything (except the catalog with DenyCatalog), anonymous gets pull on
// repositories (nothing with DenyAnonymous) and the catalog only with
// AnonymousCatalog. Unparsable scopes are ignored, as partial grants are not
// errors in the token protocol.
func grant(opts issuerOptions, subject string, scopes []string) []resourceActions {
	var out []resourceActions
	for _, s := range scopes {
		ra, err := parseTokenScope(s)
		if err != nil {
			continue
		}
		catalog := ra.Type == "registry" && ra.Name == "catalog"
		switch {
		case catalog && opts.DenyCatalog:
			continue
		case subject != "":
		case opts.DenyAnonymous:
			continue
		case catalog && opts.AnonymousCatalog:
		case ra.Type == "repository":
			if slices.Contains(ra.Actions, "pull") {
				ra.Actions = []string{"pull"}
			} else {
				ra.Actions = []string{}
			}
		default:
			continue
		}
		out = append(out, ra)
	}
	return out
}

// grantedScope renders granted access as a space-separated scope string.
func grantedScope(access []resourceActions) string {
	parts := make([]string, 0, len(access))
	for _, a := range access {
		if len(a.Actions) > 0 {
			parts = append(parts, a.Type+":"+a.Name+":"+strings.Join(a.Actions, ","))
		}
	}
	return strings.Join(parts, " ")
}

// newRefreshToken creates and remembers an opaque refresh token for subject.
func (iss *tokenIssuer) newRefreshToken(subject string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	rt := "rt-" + hex.EncodeToString(b[:])
	iss.mu.Lock()
	iss.refresh[rt] = subject
	iss.mu.Unlock()
	return rt
}

// ServeHTTP answers GET and POST on /token; anything else is 404 or 405.
func (iss *tokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != testTokenPath {
		http.NotFound(w, r)
		return
	}
	opts := iss.options()
	rec := tokenRequest{Method: r.Method}
	var status int
	switch r.Method {
	case http.MethodGet:
		status = iss.serveGET(w, r, opts, &rec)
	case http.MethodPost:
		if opts.DisablePOST != 0 {
			iss.nPOSTRejected.Add(1)
			status = opts.DisablePOST
			http.Error(w, http.StatusText(status), status)
			break
		}
		status = iss.servePOST(w, r, opts, &rec)
	default:
		status = http.StatusMethodNotAllowed
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, http.StatusText(status), status)
	}
	rec.Status = status
	iss.mu.Lock()
	iss.requests = append(iss.requests, rec)
	iss.mu.Unlock()
}

// serveGET implements the Docker token spec GET and returns the status sent.
func (iss *tokenIssuer) serveGET(w http.ResponseWriter, r *http.Request, opts issuerOptions, rec *tokenRequest) int {
	q := r.URL.Query()
	rec.Account = q.Get("account")
	rec.ClientID = q.Get("client_id")
	rec.Service = q.Get("service")
	rec.Offline = q.Get("offline_token") == "true"
	for _, s := range q["scope"] {
		rec.Scopes = append(rec.Scopes, strings.Fields(s)...)
	}
	if rec.Service != testService {
		return iss.fail(w, http.StatusBadRequest, map[string]string{"details": "invalid service " + fmt.Sprintf("%q", rec.Service)})
	}
	subject := ""
	if user, pass, ok := r.BasicAuth(); ok {
		rec.BasicUser = user
		if user != testUser || pass != testPassword {
			return iss.fail(w, http.StatusUnauthorized, map[string]string{"details": "incorrect username or password"})
		}
		subject = user
	}
	refresh := ""
	if rec.Offline && subject != "" {
		refresh = iss.newRefreshToken(subject)
	}
	iss.nGET.Add(1)
	return iss.respond(w, opts, subject, rec.Scopes, refresh, false)
}

// servePOST implements the OAuth2 flavour and returns the status sent.
func (iss *tokenIssuer) servePOST(w http.ResponseWriter, r *http.Request, opts issuerOptions, rec *tokenRequest) int {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return iss.fail(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "content type must be application/x-www-form-urlencoded"})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		return iss.fail(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
	}
	f := r.PostForm
	rec.GrantType = f.Get("grant_type")
	rec.Account = f.Get("username")
	rec.ClientID = f.Get("client_id")
	rec.Service = f.Get("service")
	rec.Offline = f.Get("access_type") == "offline"
	rec.Scopes = strings.Fields(f.Get("scope"))
	if rec.Service != testService {
		return iss.fail(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "invalid service"})
	}
	if rec.ClientID == "" {
		return iss.fail(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "missing client_id"})
	}
	var subject, refresh string
	switch rec.GrantType {
	case "password":
		if f.Get("username") != testUser || f.Get("password") != testPassword {
			return iss.fail(w, http.StatusUnauthorized, map[string]string{"details": "incorrect username or password"})
		}
		subject = testUser
		if rec.Offline {
			refresh = iss.newRefreshToken(subject)
		}
		iss.nPOSTPassword.Add(1)
	case "refresh_token":
		rt := f.Get("refresh_token")
		iss.mu.Lock()
		sub, ok := iss.refresh[rt]
		iss.mu.Unlock()
		if rt == "" || !ok {
			return iss.fail(w, http.StatusUnauthorized, map[string]string{"details": "invalid refresh token"})
		}
		subject = sub
		if rec.Offline {
			refresh = rt
		}
		iss.nPOSTRefresh.Add(1)
	default:
		return iss.fail(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
	}
	return iss.respond(w, opts, subject, rec.Scopes, refresh, true)
}

// respond signs a token for the granted part of scopes and writes the JSON
// response. POST responses also carry the granted "scope".
func (iss *tokenIssuer) respond(w http.ResponseWriter, opts issuerOptions, subject string, scopes []string, refresh string, post bool) int {
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = defaultTokenLifetime
	}
	access := grant(opts, subject, scopes)
	now := time.Now()
	tok, err := iss.sign(subject, lifetime, access)
	if err != nil {
		return iss.fail(w, http.StatusInternalServerError, map[string]string{"details": err.Error()})
	}
	body := map[string]any{}
	switch opts.TokenField {
	case tokenFieldToken:
		body["token"] = tok
	case tokenFieldAccessToken:
		body["access_token"] = tok
	default:
		body["token"] = tok
		body["access_token"] = tok
	}
	if !opts.OmitExpiresIn {
		body["expires_in"] = int64((lifetime + time.Second - 1) / time.Second)
		body["issued_at"] = now.UTC().Format(time.RFC3339Nano)
	}
	if refresh != "" {
		body["refresh_token"] = refresh
		iss.nRefreshIssued.Add(1)
	}
	if post {
		body["scope"] = grantedScope(access)
	}
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

// fail writes a JSON error body with status and counts it.
func (iss *tokenIssuer) fail(w http.ResponseWriter, status int, body any) int {
	switch status {
	case http.StatusUnauthorized:
		iss.nUnauthorized.Add(1)
	case http.StatusBadRequest:
		iss.nBadRequest.Add(1)
	}
	writeJSON(w, status, body)
	return status
}

// writeJSON writes body as JSON with status.
func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
