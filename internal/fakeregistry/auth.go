package fakeregistry

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// tokenPath is where the registry's own token endpoint answers.
const tokenPath = "/token"

// Auth is the access control of the registry. The zero Auth (the default) lets anyone
// do anything.
type Auth struct {
	// Scheme is "basic" (every /v2/ request needs Username and Password), "bearer"
	// (every /v2/ request needs "Authorization: Bearer Token"), or "" for none.
	Scheme string
	// Username and Password are the credentials Basic requires, and that the built-in
	// token endpoint requires before it issues Token; "" lets it issue Token to anyone.
	Username, Password string
	// Token is the one bearer token the registry accepts.
	Token string
	// Realm is the token endpoint the Bearer challenge names; "" names the registry's
	// own, http://HOST/token, which answers GET (Basic credentials) and POST (the
	// password grant of a form) with {"token": Token}.
	Realm string
	// Service is the service parameter of the Bearer challenge; "" sends "registry.test".
	Service string
}

// SetAuth replaces the registry's access control; it applies to the requests that
// follow (a test can rotate the accepted token between requests).
func (r *Registry) SetAuth(a Auth) {
	r.mu.Lock()
	r.auth = a
	r.mu.Unlock()
}

// authorize reports whether req may proceed, answering 401 with a challenge when not.
// A Bearer challenge names scope repository:NAME:pull for GET and HEAD, pull,push for
// other methods, when the request is for repository name.
func (r *Registry) authorize(w http.ResponseWriter, req *http.Request, name string) bool {
	r.mu.Lock()
	a := r.auth
	r.mu.Unlock()
	var challenge string
	switch a.Scheme {
	case "":
		return true
	case "basic":
		if u, p, ok := req.BasicAuth(); ok && u == a.Username && p == a.Password {
			return true
		}
		challenge = `Basic realm="fakeregistry"`
	case "bearer":
		if req.Header.Get("Authorization") == "Bearer "+a.Token {
			return true
		}
		realm, service := a.Realm, a.Service
		if realm == "" {
			realm = "http://" + req.Host + tokenPath
		}
		if service == "" {
			service = "registry.test"
		}
		challenge = fmt.Sprintf(`Bearer realm=%q,service=%q`, realm, service)
		if name != "" {
			actions := "pull"
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				actions = "pull,push"
			}
			challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, name, actions)
		}
	default:
		panic("fakeregistry: unknown auth scheme " + a.Scheme)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required", nil)
	return false
}

// serveToken is the built-in token endpoint.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	a := r.auth
	r.mu.Unlock()
	var user, pass string
	switch req.Method {
	case http.MethodGet:
		user, pass, _ = req.BasicAuth()
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		user, pass = req.PostForm.Get("username"), req.PostForm.Get("password")
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if a.Username != "" && (user != a.Username || pass != a.Password) {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": a.Token, "expires_in": 300})
}
