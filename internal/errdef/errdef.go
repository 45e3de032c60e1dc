// Package errdef holds the sentinel errors shared by every package of the module.
// The root package re-exports each of them; callers match them with errors.Is
// against the root names (ocistream.ErrNotFound and so on).
package errdef

import (
	"errors"

	"github.com/opencontainers/go-digest"
)

// The sentinels, documented where the root package re-exports them.
var (
	ErrNotFound            = errors.New("not found")
	ErrUnauthorized        = errors.New("unauthorized")
	ErrDenied              = errors.New("denied")
	ErrTooManyRequests     = errors.New("too many requests")
	ErrDigestMismatch      = errors.New("digest mismatch")
	ErrUnsupported         = errors.New("unsupported")
	ErrTooManyPages        = errors.New("too many pages")
	ErrSizeExceedsLimit    = errors.New("size exceeds limit")
	ErrInvalidReference    = errors.New("invalid reference")
	ErrInvalidChallenge    = errors.New("invalid challenge")
	ErrInvalidScope        = errors.New("invalid scope")
	ErrInvalidManifest     = errors.New("invalid manifest")
	ErrInvalidPlatform     = errors.New("invalid platform")
	ErrNoMatchingPlatform  = errors.New("no matching platform")
	ErrCrossOrigin         = errors.New("cross-origin request refused")
	ErrInsecureCredentials = errors.New("credentials refused over plain http")
	ErrAlreadyExists       = errors.New("already exists")
	ErrBlobMissing         = errors.New("blob missing")
	ErrInvalidLayout       = errors.New("invalid image layout")
	ErrStalled             = errors.New("the registry stopped answering")
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
