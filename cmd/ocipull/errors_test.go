package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// responseError builds the error the SDK returns for a registry answer.
func responseError(method, url string, status int, codes ...string) *ocistream.ResponseError {
	re := &ocistream.ResponseError{Method: method, URL: url, StatusCode: status}
	for _, c := range codes {
		re.Errors = append(re.Errors, ocitypes.RegistryError{Code: c, Message: "message of " + c})
	}
	return re
}

func TestErrorMessage(t *testing.T) {
	const (
		host  = "registry.example.com"
		name  = "registry.example.com/team/app:v1"
		mfURL = "https://registry.example.com/v2/team/app/manifests/v1"
	)
	img := target{name: name, host: host}
	withCreds := target{name: name, host: host, credsFrom: "-u"}
	fromKeychain := target{name: name, host: host, credsFrom: "the keychain"}
	dir := target{name: name, host: host, dest: "app", dir: true}
	hub := target{name: "docker.io/library/alpine:3.20", host: "registry-1.docker.io"}

	_, refErr := ref.Parse("Team/App")
	_, platErr := ocitypes.ParsePlatform("linux")
	rateLimited := responseError("GET", mfURL, 429, "TOOMANYREQUESTS")
	rateLimited.RetryAfter = 90 * time.Second
	rateLimited.RateLimit = &ocistream.RateLimit{Limit: 100, Remaining: 0, Window: 6 * time.Hour}
	serverError := responseError("GET", mfURL, 500)
	serverError.Detail = "database is down"
	dial := func(err error) error {
		return fmt.Errorf("manifest %s: GET %s: %w", name, mfURL, &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}

	stalled := fmt.Errorf("manifest %s: GET %s: %w", name, mfURL, ocistream.ErrStalled)
	tests := []struct {
		name string
		err  error
		t    target
		want string
	}{
		{"stalled", stalled, img, "registry.example.com stopped answering: no response within the timeout, even when asked again"},
		{"stalled into a directory", stalled, dir, "registry.example.com stopped answering: no response within the timeout, even when asked again; partial downloads are kept in app: run the same command to resume"},
		{"manifest unknown", fmt.Errorf("manifest %s: %w", name, responseError("GET", mfURL, 404, "MANIFEST_UNKNOWN")), img,
			"manifest unknown: registry.example.com/team/app:v1 not found"},
		{"repository unknown", fmt.Errorf("pull %s: %w", name, responseError("GET", mfURL, 404, "NAME_UNKNOWN")), img,
			"repository unknown: registry.example.com/team/app not found on registry.example.com"},
		{"repository unknown by digest", responseError("GET", mfURL, 404, "NAME_UNKNOWN"),
			target{name: "h:5000/a/b@sha256:0123", host: "h:5000"},
			"repository unknown: h:5000/a/b not found on h:5000"},
		{"blob unknown", responseError("GET", "https://h/v2/a/blobs/sha256:0123", 404, "BLOB_UNKNOWN"),
			target{name: "h/a@sha256:0123", host: "h"}, "blob unknown: h/a@sha256:0123 not found"},
		{"no registry api", fmt.Errorf("ping h: %w", responseError("GET", "https://h/v2/", 404)), target{name: "h", host: "h"},
			"not found: h does not serve the registry API at https://h/v2/"},
		{"bare 404 on a manifest", responseError("HEAD", mfURL, 404), img, "manifest unknown: registry.example.com/team/app:v1 not found"},
		{"bare 404 on a blob", responseError("HEAD", "https://h/v2/a/blobs/sha256:0123", 404), target{name: "h/a@sha256:0123", host: "h"},
			"blob unknown: h/a@sha256:0123 not found"},
		{"bare 404 on tags", responseError("GET", "https://h/v2/a/b/tags/list", 404), target{name: "h/a/b", host: "h"},
			"repository unknown: h/a/b not found on h"},
		{"bare 404 elsewhere", responseError("GET", "https://h/v2/a/referrers/x", 404), img, "not found: registry.example.com/team/app:v1"},
		{"unauthorized anonymously", fmt.Errorf("manifest: %w", responseError("GET", mfURL, 401, "UNAUTHORIZED")), img,
			"unauthorized: authentication required for registry.example.com/team/app:v1 — run ocipull login or pass -u"},
		{"bad credentials", responseError("GET", mfURL, 401), withCreds,
			"unauthorized: registry.example.com refused the credentials from -u for registry.example.com/team/app:v1"},
		{"bad keychain credentials", fmt.Errorf("token: %w", ocistream.ErrUnauthorized), fromKeychain,
			"unauthorized: registry.example.com refused the credentials from the keychain for registry.example.com/team/app:v1"},
		{"denied anonymously", responseError("GET", mfURL, 403, "DENIED"), img,
			"denied: access to registry.example.com/team/app:v1 is denied — run ocipull login or pass -u"},
		{"denied with credentials", responseError("GET", mfURL, 403), withCreds,
			"denied: the credentials from -u give no access to registry.example.com/team/app:v1"},
		{"rate limited", fmt.Errorf("pull: %w", rateLimited), hub,
			"rate limited: registry-1.docker.io refused more requests (retry after 1m30s; 0 of 100 requests left per 6h) — logging in raises the limit"},
		{"rate limited bare", responseError("GET", mfURL, 429), withCreds, "rate limited: registry.example.com refused more requests"},
		{"server error", serverError, img,
			"registry.example.com answered 500 Internal Server Error to GET " + mfURL + ": database is down"},
		{"no matching platform", fmt.Errorf("pull %s: %w", name, &ocitypes.NoMatchingPlatformError{
			Want:      ocitypes.Platform{OS: "linux", Architecture: "s390x"},
			Available: []ocitypes.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}},
		}), img, "no matching platform: registry.example.com/team/app:v1 has no image for linux/s390x; available: linux/amd64, linux/arm64/v8 (choose one with --platform)"},
		{"bad reference", refErr, target{name: "Team/App"}, refErr.Error()},
		{"bad platform", platErr, img, platErr.Error()},
		{"connection refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), img,
			"cannot reach registry.example.com: connection refused"},
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "registry.example.com", IsNotFound: true}), img,
			"cannot reach registry.example.com: no such host"},
		{"dns failure", dial(&net.DNSError{Err: "server misbehaving", Name: "registry.example.com"}), img,
			"cannot reach registry.example.com: server misbehaving"},
		{"dial timeout", dial(os.ErrDeadlineExceeded), img, "cannot reach registry.example.com: connection timed out"},
		{"untrusted certificate", fmt.Errorf("GET %s: %w", mfURL, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), img,
			"cannot verify the TLS certificate of registry.example.com: x509: certificate signed by unknown authority (--insecure skips verification)"},
		{"plain http registry", fmt.Errorf("GET %s: %w", mfURL, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), img,
			"cannot reach registry.example.com over HTTPS: it does not speak TLS (pass --plain-http for a plain HTTP registry)"},
		{"plain http registry answering http", fmt.Errorf("GET %s: %w", mfURL, errors.New("http: server gave HTTP response to HTTPS client")), img,
			"cannot reach registry.example.com over HTTPS: it does not speak TLS (pass --plain-http for a plain HTTP registry)"},
		{"disk full", fmt.Errorf("pull: blob: %w", &fs.PathError{Op: "write", Path: "app/.ingest/x", Err: syscall.ENOSPC}), dir,
			"no space left on device writing app"},
		{"disk full on stdout", fmt.Errorf("write tar: %w", &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}),
			target{name: name, host: host, dest: "stdout"}, "no space left on device writing stdout"},
		{"interrupted into a directory", fmt.Errorf("pull: %w", context.Canceled), dir,
			"interrupted: partial downloads are kept in app; run the same command to resume"},
		{"interrupted", context.Canceled, img, "interrupted"},
		{"connection broke", fmt.Errorf("blob: %w", io.ErrUnexpectedEOF), dir,
			"the connection to registry.example.com broke off too often: unexpected EOF; run the same command to resume"},
		{"not a layout", fmt.Errorf("open layout app: %w: directory is not empty and has no oci-layout file", ocistream.ErrInvalidLayout), dir,
			"open layout app: invalid image layout: directory is not empty and has no oci-layout file (choose another directory with -o)"},
		{"digest mismatch passes through", fmt.Errorf("blob sha256:00: content hashes to sha256:11: %w", ocistream.ErrDigestMismatch), img,
			"blob sha256:00: content hashes to sha256:11: digest mismatch"},
		{"other errors pass through", errors.New("something odd"), img, "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorMessage(tt.err, tt.t); got != tt.want {
				t.Errorf("errorMessage(%q, %+v) =\n  %q\nwant\n  %q", tt.err, tt.t, got, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	notFound := &commandError{
		target: target{name: "h/a:v1", host: "h"},
		err:    fmt.Errorf("manifest h/a:v1: %w", responseError("GET", "https://h/v2/a/manifests/v1", 404, "MANIFEST_UNKNOWN")),
	}
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		verbose  bool
		wantCode int
		want     string
	}{
		{"usage", t.Context(), usagef("pull wants one REF"), false, exitUsage, "ocipull: pull wants one REF\n"},
		{"failure", t.Context(), notFound, false, exitFailure, "ocipull: manifest unknown: h/a:v1 not found\n"},
		{"failure verbose", t.Context(), notFound, true, exitFailure,
			"ocipull: manifest unknown: h/a:v1 not found\n" +
				"ocipull: error chain: manifest h/a:v1: GET https://h/v2/a/manifests/v1: 404 Not Found: manifest unknown: message of MANIFEST_UNKNOWN\n"},
		{"interrupted", canceled, &commandError{err: context.Canceled}, false, exitInterrupted, "ocipull: interrupted\n"},
		{"canceled without a signal", t.Context(), context.Canceled, false, exitFailure, "ocipull: interrupted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if code := report(tt.ctx, &buf, tt.err, tt.verbose); code != tt.wantCode || buf.String() != tt.want {
				t.Errorf("report(%v) = %d, %q; want %d, %q", tt.err, code, buf.String(), tt.wantCode, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{90 * time.Second, "1m30s"},
		{6 * time.Hour, "6h"},
		{2 * time.Minute, "2m"},
		{3*time.Hour + 5*time.Minute, "3h5m"},
		{1500 * time.Millisecond, "2s"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestRepositoryOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"docker.io/library/alpine:3.20", "docker.io/library/alpine"},
		{"localhost:5000/a/b:v1", "localhost:5000/a/b"},
		{"localhost:5000/a/b@sha256:0123", "localhost:5000/a/b"},
		{"localhost:5000/a/b:v1@sha256:0123", "localhost:5000/a/b"},
		{"localhost:5000/a/b", "localhost:5000/a/b"},
	} {
		if got := repositoryOf(tt.in); got != tt.want {
			t.Errorf("repositoryOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
