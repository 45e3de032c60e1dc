package ocistream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenClientID is the OAuth2 client_id sent to token servers.
const tokenClientID = "ocistream"

// defaultTokenLifetime applies when a token response has no expires_in (the token
// spec's default).
const defaultTokenLifetime = 60 * time.Second

// maxTokenBody bounds a token server's response.
const maxTokenBody = 1 << 20

// authTarget travels in a request's context: the origin the client addressed and the
// scopes the request needs. Only requests to that origin are authenticated, so a
// redirect to a CDN or storage host never carries the registry's credentials.
type authTarget struct {
	origin *url.URL
	scopes []Scope
}

type authTargetKey struct{}

// secretKey marks the context of a token request that carries a secret in its body or
// headers; see tokenRedirect.
type secretKey struct{}

// withSecret marks ctx as that of a request carrying a secret.
func withSecret(ctx context.Context) context.Context {
	return context.WithValue(ctx, secretKey{}, true)
}

// carriesSecret reports whether req carries a secret: marked so, or with an
// Authorization header.
func carriesSecret(req *http.Request) bool {
	marked, _ := req.Context().Value(secretKey{}).(bool)
	return marked || req.Header.Get("Authorization") != ""
}

func withAuthTarget(ctx context.Context, u *url.URL, scopes ...Scope) context.Context {
	return context.WithValue(ctx, authTargetKey{}, &authTarget{origin: u, scopes: scopes})
}

// authTransport authenticates requests to the registry origin they were made for.
// It reacts to challenges: a request without known auth goes anonymous; a 401 is
// parsed, a token fetched (or Basic credentials chosen), and the request sent once
// more. Tokens are cached per host by scope set, reused for narrower scopes, renewed
// shortly before they expire, and re-negotiated once when a cached token earns a 401.
type authTransport struct {
	next        http.RoundTripper
	credentials CredentialStore
	tokenClient *http.Client
	plainHosts  map[string]bool
	plainOK     func(*url.URL) bool // more origins where plain http is allowed; may be nil
	logger      *slog.Logger

	mu    sync.Mutex
	hosts map[string]*hostAuth
}

// hostAuth is what the transport knows about one registry origin.
type hostAuth struct {
	host   string
	secure bool // https, or plain http explicitly allowed
	plain  bool // the registry is reached over plain http (allowed)

	mu        sync.Mutex
	challenge *Challenge // the last challenge chosen; nil before the first 401
	credOnce  bool
	cred      Credential
	credErr   error
	tokens    []*cachedToken
	inflight  map[string]*tokenCall
}

type cachedToken struct {
	value   string
	scopes  []Scope
	expires time.Time
}

type tokenCall struct {
	done chan struct{}
	tok  *cachedToken
	err  error
}

func (t *authTransport) hostAuth(u *url.URL) *hostAuth {
	key := strings.ToLower(u.Scheme + "://" + u.Host)
	t.mu.Lock()
	defer t.mu.Unlock()
	ha := t.hosts[key]
	if ha == nil {
		ha = &hostAuth{
			host:     strings.ToLower(u.Host),
			secure:   u.Scheme == "https" || t.plainAllowed(u),
			plain:    u.Scheme == "http" && t.plainAllowed(u),
			inflight: map[string]*tokenCall{},
		}
		t.hosts[key] = ha
	}
	return ha
}

// plainAllowed reports whether credentials may go to u over plain http: a host marked
// plain, or one the client's configuration allows (a loopback registry, a mirror
// configured with http://).
func (t *authTransport) plainAllowed(u *url.URL) bool {
	return hostIn(t.plainHosts, u) || (t.plainOK != nil && t.plainOK(u))
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target, _ := req.Context().Value(authTargetKey{}).(*authTarget)
	if target == nil || target.origin == nil || !sameOrigin(target.origin, req.URL) {
		// Not addressed to the registry this request was made for (a redirect to a
		// CDN, a foreign layer URL): no credentials, whatever the host asks.
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	ha := t.hostAuth(req.URL)
	scopes := target.scopes

	authz, used, err := t.authorization(ctx, ha, scopes, nil)
	if err != nil {
		return nil, err
	}
	// One re-negotiation per request; a second only when the registry switches to a
	// scheme it did not offer before (Harbor answers a token lacking scope with
	// `Basic realm="harbor"`). Never a loop.
	scheme := ""
	for renegotiations := 0; ; renegotiations++ {
		resp, err := t.next.RoundTrip(withAuthorization(req, authz))
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		challenges, perr := ParseChallenges(resp.Header.Values("Www-Authenticate")...)
		ch, ok := PreferredChallenge(challenges)
		if perr != nil || !ok {
			if perr != nil {
				t.logger.DebugContext(ctx, "auth: unusable challenge", "host", ha.host, "error", perr)
			}
			return resp, nil
		}
		if renegotiations == 2 || (renegotiations == 1 && ch.Scheme == scheme) {
			return resp, nil
		}
		scheme = ch.Scheme
		// Keep the 401 to hand back if no authentication can be had.
		saved := bufferResponse(resp)
		ha.forget(used)
		authz, used, err = t.authorization(ctx, ha, scopes, &ch)
		if err != nil {
			return nil, err
		}
		if authz == "" {
			return saved, nil
		}
	}
}

// withAuthorization returns req with its Authorization header set to authz (a clone;
// RoundTrippers must not modify their request).
func withAuthorization(req *http.Request, authz string) *http.Request {
	if authz == "" {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", authz)
	return r
}

// bufferResponse reads a bounded part of resp's body and returns an equivalent
// response whose body is in memory, closing the original.
func bufferResponse(resp *http.Response) *http.Response {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	r := *resp
	r.Body = io.NopCloser(bytes.NewReader(body))
	return &r
}

// authorization returns the Authorization value for a request needing scopes, and
// the cached token it used (to forget it on a 401). With a fresh challenge it
// re-negotiates: a new token (or Basic) according to that challenge.
func (t *authTransport) authorization(ctx context.Context, ha *hostAuth, scopes []Scope, fresh *Challenge) (string, *cachedToken, error) {
	ha.mu.Lock()
	if fresh != nil {
		ch := *fresh
		ha.challenge = &ch
	}
	ch := ha.challenge
	ha.mu.Unlock()
	if ch == nil {
		return "", nil, nil // no challenge seen yet: go anonymous and see what the registry says
	}
	cred, err := t.credential(ctx, ha)
	if err != nil {
		return "", nil, err
	}
	if cred.AccessToken != "" {
		return "Bearer " + cred.AccessToken, nil, nil
	}
	switch ch.Scheme {
	case "basic":
		if cred.Username == "" && cred.Password == "" {
			return "", nil, nil
		}
		if !ha.secure {
			return "", nil, fmt.Errorf("basic credentials for %s: %w", ha.host, ErrInsecureCredentials)
		}
		return "Basic " + basicAuth(cred.Username, cred.Password), nil, nil
	case "bearer":
		want := scopes
		if fresh != nil {
			// The registry may name the scope it wants (with a different action set or
			// resource class): ask for the union.
			if s, err := ParseScopes(ch.Params["scope"]); err == nil {
				want = MergeScopes(append(append([]Scope{}, scopes...), s...)...)
			}
		}
		tok, err := t.token(ctx, ha, *ch, cred, MergeScopes(want...))
		if err != nil {
			return "", nil, err
		}
		return "Bearer " + tok.value, tok, nil
	}
	return "", nil, nil
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// credential loads the host's credential once.
func (t *authTransport) credential(ctx context.Context, ha *hostAuth) (Credential, error) {
	ha.mu.Lock()
	defer ha.mu.Unlock()
	if !ha.credOnce {
		ha.credOnce = true
		if t.credentials != nil {
			ha.cred, ha.credErr = t.credentials.Credential(ctx, ha.host)
			if ha.credErr != nil {
				ha.credErr = fmt.Errorf("credentials for %s: %w", ha.host, ha.credErr)
			}
		}
	}
	return ha.cred, ha.credErr
}

// forget drops a token that earned a 401, so the next request negotiates anew.
func (ha *hostAuth) forget(tok *cachedToken) {
	if tok == nil {
		return
	}
	ha.mu.Lock()
	defer ha.mu.Unlock()
	for i, t := range ha.tokens {
		if t == tok {
			ha.tokens = append(ha.tokens[:i], ha.tokens[i+1:]...)
			return
		}
	}
}

// token returns a cached token that covers scopes and is not about to expire, or
// fetches one; concurrent callers wanting the same scopes share one fetch.
func (t *authTransport) token(ctx context.Context, ha *hostAuth, ch Challenge, cred Credential, scopes []Scope) (*cachedToken, error) {
	now := time.Now()
	key := ch.Params["realm"] + " " + ch.Params["service"] + " " + ScopeString(scopes)
	ha.mu.Lock()
	for _, tok := range ha.tokens {
		if now.Before(tok.expires) && ScopesContain(tok.scopes, scopes) {
			ha.mu.Unlock()
			return tok, nil
		}
	}
	if call, ok := ha.inflight[key]; ok {
		ha.mu.Unlock()
		select {
		case <-call.done:
			return call.tok, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &tokenCall{done: make(chan struct{})}
	ha.inflight[key] = call
	ha.mu.Unlock()

	call.tok, call.err = t.fetchToken(ctx, ha, ch, cred, scopes)

	ha.mu.Lock()
	delete(ha.inflight, key)
	if call.err == nil {
		// Drop expired tokens while adding the new one; the cache stays small.
		kept := ha.tokens[:0]
		for _, tok := range ha.tokens {
			if now.Before(tok.expires) {
				kept = append(kept, tok)
			}
		}
		ha.tokens = append(kept, call.tok)
	}
	ha.mu.Unlock()
	close(call.done)
	return call.tok, call.err
}

// tokenResponse is the union of the token spec's and OAuth2's response fields.
type tokenResponse struct {
	Token        string    `json:"token"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresIn    int64     `json:"expires_in"`
	IssuedAt     time.Time `json:"issued_at"`
}

// fetchToken asks the challenge's realm for a token. With a refresh token or a
// username and password it uses the OAuth2 POST form (refresh_token or password
// grant), falling back to GET with Basic credentials when the server answers 400,
// 401, 404 or 405 (Harbor, GCR, Quay, GitLab, older ACR); anonymous clients GET.
func (t *authTransport) fetchToken(ctx context.Context, ha *hostAuth, ch Challenge, cred Credential, scopes []Scope) (*cachedToken, error) {
	realm, err := t.checkRealm(ctx, ha, ch.Params["realm"], !cred.IsZero())
	if err != nil {
		return nil, err
	}
	service := ch.Params["service"]
	if cred.AzureADToken != "" && cred.RefreshToken == "" {
		rt, err := t.exchangeAzureToken(ctx, ha, service, cred.AzureADToken)
		if err != nil {
			return nil, err
		}
		cred.RefreshToken = rt
		ha.mu.Lock()
		ha.cred.RefreshToken = rt // exchanged once per client
		ha.mu.Unlock()
	}
	start := time.Now()
	var tr *tokenResponse
	switch {
	case cred.RefreshToken != "" || (cred.Username != "" && cred.Password != ""):
		tr, err = t.postToken(ctx, realm, service, cred, scopes)
		var re *ResponseError
		if errors.As(err, &re) && cred.Username != "" && cred.Password != "" {
			switch re.StatusCode {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed:
				t.logger.DebugContext(ctx, "auth: POST token refused, trying GET", "realm", redactURL(realm), "status", re.StatusCode)
				tr, err = t.getToken(ctx, realm, service, cred, scopes)
			}
		}
	default:
		tr, err = t.getToken(ctx, realm, service, Credential{}, scopes)
	}
	if err != nil {
		return nil, fmt.Errorf("token for %s from %s: %w", ha.host, redactURL(realm), err)
	}
	value := tr.AccessToken
	if value == "" {
		value = tr.Token
	}
	if value == "" {
		return nil, fmt.Errorf("token for %s from %s: the response holds no token: %w", ha.host, redactURL(realm), ErrUnauthorized)
	}
	if tr.RefreshToken != "" && cred.RefreshToken != "" && tr.RefreshToken != cred.RefreshToken {
		ha.mu.Lock()
		ha.cred.RefreshToken = tr.RefreshToken
		ha.mu.Unlock()
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if tr.ExpiresIn <= 0 {
		lifetime = defaultTokenLifetime
	}
	issued := tr.IssuedAt
	if issued.IsZero() || issued.After(time.Now()) || issued.Before(start.Add(-lifetime)) {
		issued = start // clock skew or no issued_at: count from the request
	}
	// Renew a little before the end so a request never leaves with a dying token.
	margin := min(5*time.Second, lifetime/5)
	t.logger.DebugContext(ctx, "auth: token", "host", ha.host, "scopes", ScopeString(scopes), "lifetime", lifetime)
	return &cachedToken{value: value, scopes: scopes, expires: issued.Add(lifetime - margin)}, nil
}

func (t *authTransport) postToken(ctx context.Context, realm *url.URL, service string, cred Credential, scopes []Scope) (*tokenResponse, error) {
	form := url.Values{}
	form.Set("client_id", tokenClientID)
	if service != "" {
		form.Set("service", service)
	}
	if len(scopes) > 0 {
		form.Set("scope", ScopeString(scopes))
	}
	if cred.RefreshToken != "" {
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", cred.RefreshToken)
	} else {
		form.Set("grant_type", "password")
		form.Set("username", cred.Username)
		form.Set("password", cred.Password)
	}
	req, err := http.NewRequestWithContext(withSecret(ctx), http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return t.doToken(req)
}

func (t *authTransport) getToken(ctx context.Context, realm *url.URL, service string, cred Credential, scopes []Scope) (*tokenResponse, error) {
	u := *realm
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s.String())
	}
	if cred.Username != "" {
		q.Set("account", cred.Username)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if cred.Username != "" || cred.Password != "" {
		req.SetBasicAuth(cred.Username, cred.Password)
	}
	return t.doToken(req)
}

func (t *authTransport) doToken(req *http.Request) (*tokenResponse, error) {
	resp, err := t.tokenClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newResponseError(resp)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxTokenBody)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		// issued_at may be malformed while the rest is fine: retry without it.
		var loose struct {
			Token        string `json:"token"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int64  `json:"expires_in"`
		}
		if err2 := json.Unmarshal(body, &loose); err2 != nil {
			return nil, fmt.Errorf("token response is not JSON: %w", err)
		}
		tr = tokenResponse{Token: loose.Token, AccessToken: loose.AccessToken, RefreshToken: loose.RefreshToken, ExpiresIn: loose.ExpiresIn}
	}
	return &tr, nil
}

// exchangeAzureToken trades a Microsoft Entra ID access token for an ACR refresh token
// at the registry's /oauth2/exchange endpoint.
func (t *authTransport) exchangeAzureToken(ctx context.Context, ha *hostAuth, service, aadToken string) (string, error) {
	if !ha.secure {
		return "", fmt.Errorf("azure token exchange with %s: %w", ha.host, ErrInsecureCredentials)
	}
	if service == "" {
		service = ha.host
	}
	scheme := "https"
	if ha.plain {
		scheme = "http"
	}
	form := url.Values{"grant_type": {"access_token"}, "service": {service}, "access_token": {aadToken}}
	u := url.URL{Scheme: scheme, Host: ha.host, Path: "/oauth2/exchange"}
	req, err := http.NewRequestWithContext(withSecret(ctx), http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := t.doToken(req)
	if err != nil {
		return "", fmt.Errorf("azure token exchange with %s: %w", ha.host, err)
	}
	if tr.RefreshToken == "" {
		return "", fmt.Errorf("azure token exchange with %s: the response holds no refresh_token: %w", ha.host, ErrUnauthorized)
	}
	return tr.RefreshToken, nil
}

// checkRealm validates a challenge's realm before anything is sent to it: an absolute
// http(s) URL; plain http only without credentials or to a host marked plain; and not
// a private or loopback address unless the registry itself is one (a public registry
// naming an internal realm is a server-side request forgery attempt).
func (t *authTransport) checkRealm(ctx context.Context, ha *hostAuth, realm string, withCreds bool) (*url.URL, error) {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("challenge from %s: realm %q is not an http(s) URL: %w", ha.host, realm, ErrInvalidChallenge)
	}
	// A plain registry's token server often listens on another port of the same host.
	samePlainHost := ha.plain && strings.EqualFold(u.Hostname(), hostOnly(ha.host))
	if u.Scheme == "http" && withCreds && !t.plainAllowed(u) && !samePlainHost {
		return nil, fmt.Errorf("challenge from %s: realm %s is plain http: %w", ha.host, redactURL(u), ErrInsecureCredentials)
	}
	if strings.EqualFold(u.Hostname(), hostOnly(ha.host)) {
		return u, nil
	}
	realmInternal, err := isInternalHost(ctx, u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("challenge from %s: realm %s: %w", ha.host, redactURL(u), err)
	}
	if realmInternal {
		registryInternal, err := isInternalHost(ctx, hostOnly(ha.host))
		if err != nil {
			return nil, fmt.Errorf("challenge from %s: %w", ha.host, err)
		}
		if !registryInternal {
			return nil, fmt.Errorf("public registry %s names a token realm on an internal address %s: %w", ha.host, u.Host, ErrCrossOrigin)
		}
	}
	return u, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// isInternalHost reports whether host is, or resolves only to, loopback, private,
// link-local or unspecified addresses.
func isInternalHost(ctx context.Context, host string) (bool, error) {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return isInternalAddr(ip), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if !isInternalAddr(a) {
			return false, nil
		}
	}
	return len(addrs) > 0, nil
}

func isInternalAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()
}
