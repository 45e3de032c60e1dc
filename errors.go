package ocistream

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// The sentinel errors of the SDK. Match them with [errors.Is]; every error the SDK returns
// wraps at most a few of them, and a [*ResponseError] matches the one its status implies.
var (
	// ErrNotFound: the registry does not know the repository, manifest or blob (404,
	// or the codes NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
	ErrNotFound = errdef.ErrNotFound
	// ErrUnauthorized: authentication is required or the credentials were refused (401).
	ErrUnauthorized = errdef.ErrUnauthorized
	// ErrDenied: the credentials are valid but lack access (403, or the code DENIED).
	ErrDenied = errdef.ErrDenied
	// ErrTooManyRequests: the registry rate-limited the client (429, or TOOMANYREQUESTS)
	// and retries did not get through.
	ErrTooManyRequests = errdef.ErrTooManyRequests
	// ErrDigestMismatch: content did not hash to the digest it was requested by, or was
	// longer than its descriptor's size.
	ErrDigestMismatch = errdef.ErrDigestMismatch
	// ErrUnsupported: a media type, scheme, algorithm or operation the SDK does not handle
	// (Docker schema 1 manifests, for one), or a registry that answered UNSUPPORTED.
	ErrUnsupported = errdef.ErrUnsupported
	// ErrTooManyPages: a paginated walk went past its page bound.
	ErrTooManyPages = errdef.ErrTooManyPages
	// ErrSizeExceedsLimit: a body was larger than the bound for its kind (4 MiB for
	// manifests, for one).
	ErrSizeExceedsLimit = errdef.ErrSizeExceedsLimit
	// ErrInvalidReference: a reference that does not follow the docker reference grammar.
	ErrInvalidReference = errdef.ErrInvalidReference
	// ErrInvalidChallenge: a WWW-Authenticate header that is not RFC 7235.
	ErrInvalidChallenge = errdef.ErrInvalidChallenge
	// ErrInvalidScope: a token scope that is not type:name:actions.
	ErrInvalidScope = errdef.ErrInvalidScope
	// ErrInvalidManifest: a manifest, index or config that breaks the image spec.
	ErrInvalidManifest = errdef.ErrInvalidManifest
	// ErrInvalidPlatform: a platform string that is not os/arch[/variant].
	ErrInvalidPlatform = errdef.ErrInvalidPlatform
	// ErrNoMatchingPlatform: an index has no manifest for the requested platform.
	ErrNoMatchingPlatform = errdef.ErrNoMatchingPlatform
	// ErrCrossOrigin: a pagination link, token realm or redirect that the SDK refused to
	// follow because it leaves the origin it is allowed to talk to.
	ErrCrossOrigin = errdef.ErrCrossOrigin
	// ErrInsecureCredentials: credentials would have gone over plain HTTP to a host that
	// was not marked plain.
	ErrInsecureCredentials = errdef.ErrInsecureCredentials
	// ErrAlreadyExists: a destination already holds the complete blob.
	ErrAlreadyExists = errdef.ErrAlreadyExists
	// ErrBlobMissing: a layout refers to a blob it does not hold.
	ErrBlobMissing = errdef.ErrBlobMissing
	// ErrInvalidLayout: an OCI image layout on disk that breaks the layout spec.
	ErrInvalidLayout = errdef.ErrInvalidLayout
	// ErrStalled: a registry, token server or storage host accepted a request but sent
	// no response headers within [WithResponseHeaderTimeout], or too little of a body
	// within [WithReadTimeout], and asking once more did not help. It is not
	// context.Canceled: the caller did not stop the request.
	ErrStalled = errdef.ErrStalled
)

// BlobError is an error about one blob: its Digest and what went wrong with it (Err).
// Its text names the digest once ("blob sha256:...: digest mismatch: got ..."),
// however many layers (the download, the destination) report the failure. Find the
// blob of an error with [errors.As].
type BlobError = errdef.BlobError

// ResponseError is an unexpected HTTP response from a registry or token server. It
// matches, with [errors.Is], the sentinel its status or registry error codes imply:
// 401 [ErrUnauthorized], 403 [ErrDenied], 404 [ErrNotFound], 429 [ErrTooManyRequests],
// 405 with UNSUPPORTED [ErrUnsupported].
type ResponseError struct {
	// Method is the request method.
	Method string
	// URL is the request URL with any userinfo and query credentials redacted.
	URL string
	// StatusCode is the HTTP status code.
	StatusCode int
	// Errors are the registry error codes of a distribution-spec error body, if any.
	Errors []ocitypes.RegistryError
	// Detail is the start of a body that is not an error envelope (ECR's "Not Authorized",
	// Docker Hub's {"details":...}), trimmed to one line; empty otherwise.
	Detail string
	// RateLimit holds Docker Hub's ratelimit-* headers when the response carried them.
	RateLimit *RateLimit
	// RetryAfter is the delay the server asked for with Retry-After, zero if none.
	RetryAfter time.Duration
}

// RateLimit is Docker Hub's pull rate limit as its ratelimit-limit, ratelimit-remaining
// and docker-ratelimit-source headers report it.
type RateLimit struct {
	Limit     int           // pulls allowed per window
	Remaining int           // pulls left in the window
	Window    time.Duration // the window (the "w=" parameter), zero if absent
	Source    string        // the IP address or account the limit applies to
}

// Error describes the response in one line: method, redacted URL, status, the
// registry's error codes and messages (or the start of a non-JSON body) and, when
// present, Docker Hub's rate limit.
func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	for _, re := range e.Errors {
		if s := re.Error(); s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if len(e.Errors) == 0 && e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if rl := e.RateLimit; rl != nil {
		fmt.Fprintf(&b, " (rate limit %d, remaining %d", rl.Limit, rl.Remaining)
		if rl.Window > 0 {
			fmt.Fprintf(&b, " per %s", rl.Window)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the sentinel this response implies.
func (e *ResponseError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.hasCode("UNAUTHORIZED")
	case ErrDenied:
		return e.StatusCode == http.StatusForbidden || e.hasCode("DENIED")
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound ||
			e.hasCode("NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN")
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests || e.hasCode("TOOMANYREQUESTS")
	case ErrUnsupported:
		return e.hasCode("UNSUPPORTED")
	}
	return false
}

func (e *ResponseError) hasCode(codes ...string) bool {
	for _, re := range e.Errors {
		for _, c := range codes {
			if re.Code == c {
				return true
			}
		}
	}
	return false
}

// Code returns the first registry error code, or "" when the body carried none.
func (e *ResponseError) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// redactURL returns u as a string with userinfo and credential-like query values removed.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k := range q {
			switch strings.ToLower(k) {
			case "password", "refresh_token", "access_token", "token", "signature", "sig",
				"x-amz-signature", "x-amz-credential", "x-amz-security-token", "verify":
				q.Set(k, "REDACTED")
				changed = true
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}

// parseRateLimit reads Docker Hub's rate-limit headers; nil when absent.
func parseRateLimit(h http.Header) *RateLimit {
	limit, window, okLimit := parseRateLimitValue(h.Get("Ratelimit-Limit"))
	remaining, _, okRemaining := parseRateLimitValue(h.Get("Ratelimit-Remaining"))
	if !okLimit && !okRemaining {
		return nil
	}
	return &RateLimit{Limit: limit, Remaining: remaining, Window: window, Source: h.Get("Docker-Ratelimit-Source")}
}

// parseRateLimitValue parses "100;w=21600".
func parseRateLimitValue(v string) (int, time.Duration, bool) {
	if v == "" {
		return 0, 0, false
	}
	num, params, _ := strings.Cut(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil {
		return 0, 0, false
	}
	var window time.Duration
	for _, p := range strings.Split(params, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "w" {
			if s, err := strconv.Atoi(val); err == nil && s > 0 {
				window = time.Duration(s) * time.Second
			}
		}
	}
	return n, window, true
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; zero when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
