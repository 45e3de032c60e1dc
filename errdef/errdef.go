// Package errdef holds the sentinel errors of every package of the module, so that a
// program using only package layout (or unpack, serve, ...) can match them with
// errors.Is without importing the client. The root package re-exports each one under
// the same name (ocistream.ErrNotFound is errdef.ErrNotFound); an
// *ocistream.ResponseError matches the sentinel its HTTP status or registry error code
// implies.
package errdef

import (
	"errors"

	"github.com/opencontainers/go-digest"
)

// The sentinel errors. Every error the module returns wraps at most a few of them.
var (
	// ErrNotFound: the registry does not know the repository, manifest or blob (404,
	// or the codes NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: authentication is required or the credentials were refused (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: the credentials are valid but lack access (403, or the code DENIED).
	ErrDenied = errors.New("denied")
	// ErrTooManyRequests: the registry rate-limited the client (429, or TOOMANYREQUESTS)
	// and retries did not get through.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrDigestMismatch: content did not hash to the digest it was requested by, or was
	// longer than its descriptor's size.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsupported: a media type, scheme, algorithm or operation the SDK does not handle
	// (Docker schema 1 manifests, for one), or a registry that answered UNSUPPORTED.
	ErrUnsupported = errors.New("unsupported")
	// ErrTooManyPages: a paginated walk went past its page bound.
	ErrTooManyPages = errors.New("too many pages")
	// ErrSizeExceedsLimit: a body was larger than the bound for its kind (4 MiB for
	// manifests, for one).
	ErrSizeExceedsLimit = errors.New("size exceeds limit")
	// ErrInvalidReference: a reference that does not follow the docker reference grammar.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrInvalidChallenge: a WWW-Authenticate header that is not RFC 7235.
	ErrInvalidChallenge = errors.New("invalid challenge")
	// ErrInvalidScope: a token scope that is not type:name:actions.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidManifest: a manifest, index or config that breaks the image spec.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrInvalidPlatform: a platform string that is not os/arch[/variant].
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrNoMatchingPlatform: an index has no manifest for the requested platform.
	ErrNoMatchingPlatform = errors.New("no matching platform")
	// ErrCrossOrigin: a pagination link, token realm or redirect that the SDK refused to
	// follow because it leaves the origin it is allowed to talk to.
	ErrCrossOrigin = errors.New("cross-origin request refused")
	// ErrInsecureCredentials: credentials would have gone over plain HTTP to a host that
	// was not marked plain.
	ErrInsecureCredentials = errors.New("credentials refused over plain http")
	// ErrAlreadyExists: a destination already holds the complete blob.
	ErrAlreadyExists = errors.New("already exists")
	// ErrBlobMissing: a layout refers to a blob it does not hold.
	ErrBlobMissing = errors.New("blob missing")
	// ErrInvalidLayout: an OCI image layout on disk that breaks the layout spec.
	ErrInvalidLayout = errors.New("invalid image layout")
	// ErrStalled: a registry, token server or storage host stopped answering: no
	// response headers, or too few body bytes, within the client's timeouts, even when
	// asked again.
	ErrStalled = errors.New("the registry stopped answering")
)

// BlobError is an error about one blob. Every layer that reports a blob's failure
// wraps it with [Blob], which names the digest once however many layers the error
// passes through.
type BlobError struct {
	Digest digest.Digest
	Err    error
}

// Error returns "blob <digest>: " and the error.
func (e *BlobError) Error() string { return "blob " + e.Digest.String() + ": " + e.Err.Error() }

// Unwrap returns the error.
func (e *BlobError) Unwrap() error { return e.Err }

// Blob returns err as an error about blob d: err itself when its chain already names
// d, else a *BlobError. It returns nil for a nil err.
func Blob(d digest.Digest, err error) error {
	if err == nil {
		return nil
	}
	var be *BlobError
	if errors.As(err, &be) && be.Digest == d {
		return err
	}
	return &BlobError{Digest: d, Err: err}
}
