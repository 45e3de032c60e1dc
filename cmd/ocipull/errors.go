package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// usageError is a command line that cannot run: wrong arguments or flags. It exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// target describes what a failed command was working on, for its error message.
type target struct {
	// name is the reference, repository, blob or registry as printed in messages:
	// "docker.io/library/alpine:3.20", "localhost:5000/app", "localhost:5000".
	name string
	// host is the registry's API host: "registry-1.docker.io", "localhost:5000".
	host string
	// dest is where output went: a directory, a file, or "stdout".
	dest string
	// dir is set when dest is an OCI layout directory (which keeps partial blobs).
	dir bool
	// credsFrom says where the credentials sent to host came from ("-u", "the
	// keychain"); "" when the command went anonymously.
	credsFrom string
	// login is set for ocipull login, whose credentials are on trial.
	login bool
}

// commandError is an error of a command together with what it was working on.
type commandError struct {
	target target
	err    error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// fail wraps err, when not nil, with the command's target and what the run learnt
// about credentials.
func (st *state) fail(t target, err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	if from := st.credsFrom.Load(); from != nil {
		t.credsFrom = *from
	}
	return &commandError{target: t, err: err}
}

// report prints err as one line on w, "ocipull: " and what failed and why, plus the
// full error chain with verbose, and returns the exit status.
func report(ctx context.Context, w io.Writer, err error, verbose bool) int {
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "ocipull: %s\n", ue.err)
		return exitUsage
	}
	var t target
	var ce *commandError
	if errors.As(err, &ce) {
		t, err = ce.target, ce.err
	}
	msg := errorMessage(err, t)
	fmt.Fprintf(w, "ocipull: %s\n", msg)
	if verbose && msg != err.Error() {
		fmt.Fprintf(w, "ocipull: error chain: %v\n", err)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitFailure
}

// errorMessage says in a user's words what went wrong when the command working on t
// failed with err, an error of the SDK, the file system or the network.
func errorMessage(err error, t target) string {
	name := t.name
	if name == "" {
		name = t.host
	}
	hostName := t.host
	if hostName == "" {
		hostName = "the registry"
	}
	var (
		re     *ocistream.ResponseError
		noPlat *ocitypes.NoMatchingPlatformError
		dnsErr *net.DNSError
		opErr  *net.OpError
		recErr tls.RecordHeaderError

		endpoints *ocistream.EndpointsError
	)
	switch {
	case errors.Is(err, context.Canceled):
		if t.dir {
			return fmt.Sprintf("interrupted: partial downloads are kept in %s; run the same command to resume", t.dest)
		}
		return "interrupted"

	case errors.Is(err, ocistream.ErrStalled):
		// Not "interrupted": nobody stopped the command, the server went quiet.
		msg := fmt.Sprintf("%s stopped answering: no response within the timeout, even when asked again", hostName)
		if t.dir {
			msg += fmt.Sprintf("; partial downloads are kept in %s: run the same command to resume", t.dest)
		}
		return msg

	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out talking to %s", hostName)

	case errors.As(err, &endpoints):
		// Mirrors from a hosts directory, then the server: say what each answered.
		parts := make([]string, len(endpoints.Failures))
		for i, f := range endpoints.Failures {
			ft := t
			if u, perr := url.Parse(f.Endpoint); perr == nil {
				ft.host = u.Host
			}
			kind := "server"
			if f.Mirror {
				kind = "mirror"
			}
			parts[i] = kind + " " + f.Endpoint + ": " + errorMessage(f.Err, ft)
		}
		return fmt.Sprintf("no endpoint could serve %s: %s", name, strings.Join(parts, "; "))

	case errors.Is(err, syscall.ENOSPC):
		dest := t.dest
		if dest == "" {
			dest = "the output"
		}
		return fmt.Sprintf("no space left on device writing %s", dest)

	case errors.Is(err, ocistream.ErrInvalidReference), errors.Is(err, ocistream.ErrInvalidPlatform):
		return err.Error()

	case errors.As(err, &noPlat):
		return fmt.Sprintf("no matching platform: %s has no image for %s; available: %s (choose one with --platform)",
			name, ocitypes.FormatPlatform(noPlat.Want), formatPlatforms(noPlat.Available))

	case errors.Is(err, ocistream.ErrUnauthorized) && t.login:
		return fmt.Sprintf("login to %s failed: unauthorized: incorrect username or password (nothing was stored)", hostName)

	case errors.Is(err, ocistream.ErrUnauthorized):
		if t.credsFrom != "" {
			return fmt.Sprintf("unauthorized: %s refused the credentials from %s for %s", hostName, t.credsFrom, name)
		}
		return fmt.Sprintf("unauthorized: authentication required for %s — run ocipull login or pass -u", name)

	case errors.Is(err, ocistream.ErrDenied):
		if t.credsFrom != "" {
			return fmt.Sprintf("denied: the credentials from %s give no access to %s", t.credsFrom, name)
		}
		return fmt.Sprintf("denied: access to %s is denied — run ocipull login or pass -u", name)

	case errors.Is(err, ocistream.ErrTooManyRequests):
		return rateLimitMessage(err, t)

	case errors.As(err, &re) && errors.Is(err, ocistream.ErrNotFound):
		switch {
		case hasCode(re, "NAME_UNKNOWN"):
			return fmt.Sprintf("repository unknown: %s not found on %s", repositoryOf(name), hostName)
		case hasCode(re, "MANIFEST_UNKNOWN"):
			return fmt.Sprintf("manifest unknown: %s not found", name)
		case hasCode(re, "BLOB_UNKNOWN"):
			return fmt.Sprintf("blob unknown: %s not found", name)
		case strings.HasSuffix(re.URL, "/v2/"), strings.Contains(re.URL, "/v2/_catalog"):
			return fmt.Sprintf("not found: %s does not serve the registry API at %s", hostName, re.URL)
		// A HEAD answer has no body, hence no code: the path says what was asked.
		case strings.Contains(re.URL, "/blobs/"):
			return fmt.Sprintf("blob unknown: %s not found", name)
		case strings.Contains(re.URL, "/manifests/"):
			return fmt.Sprintf("manifest unknown: %s not found", name)
		case strings.Contains(re.URL, "/tags/list"):
			return fmt.Sprintf("repository unknown: %s not found on %s", repositoryOf(name), hostName)
		}
		return fmt.Sprintf("not found: %s", name)

	case errors.As(err, &re):
		msg := fmt.Sprintf("%s answered %d %s to %s %s", hostName, re.StatusCode, http.StatusText(re.StatusCode), re.Method, re.URL)
		if detail := responseDetail(re); detail != "" {
			msg += ": " + detail
		}
		return msg

	case isCertificateError(err):
		return fmt.Sprintf("cannot verify the TLS certificate of %s: %s (--insecure skips verification)", hostName, certificateReason(err))

	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http has no sentinel for the second one.
		return fmt.Sprintf("cannot reach %s over HTTPS: it does not speak TLS (pass --plain-http for a plain HTTP registry)", hostName)

	case errors.As(err, &dnsErr):
		host := dnsErr.Name
		if host == "" {
			host = hostName
		}
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot reach %s: no such host", host)
		}
		return fmt.Sprintf("cannot reach %s: %s", host, dnsErr.Err)

	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach %s: connection refused", hostName)

	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot reach %s: %s", hostName, errnoText(err))

	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return fmt.Sprintf("cannot reach %s: connection timed out", hostName)
		}
		return fmt.Sprintf("cannot reach %s: %v", hostName, opErr.Err)

	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		msg := fmt.Sprintf("the connection to %s broke off too often: %s", hostName, errnoText(err))
		if t.dir {
			msg += "; run the same command to resume"
		}
		return msg

	case errors.Is(err, ocistream.ErrInvalidLayout) && t.dir:
		return fmt.Sprintf("%v (choose another directory with -o)", err)
	}
	return err.Error()
}

// hasCode reports whether the registry error body of e carried code.
func hasCode(e *ocistream.ResponseError, code string) bool {
	for _, re := range e.Errors {
		if re.Code == code {
			return true
		}
	}
	return false
}

// responseDetail returns the registry's own words about a failed request: its error
// codes and messages, or the start of a non-envelope body.
func responseDetail(re *ocistream.ResponseError) string {
	var parts []string
	for _, e := range re.Errors {
		if s := e.Error(); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 && re.Detail != "" {
		parts = append(parts, re.Detail)
	}
	return strings.Join(parts, "; ")
}

// rateLimitMessage explains a 429: when to retry and what is left of the quota.
func rateLimitMessage(err error, t target) string {
	host := t.host
	if host == "" {
		host = "the registry"
	}
	msg := fmt.Sprintf("rate limited: %s refused more requests", host)
	var re *ocistream.ResponseError
	if !errors.As(err, &re) {
		return msg
	}
	var notes []string
	if re.RetryAfter > 0 {
		notes = append(notes, "retry after "+formatDuration(re.RetryAfter))
	}
	if rl := re.RateLimit; rl != nil {
		s := fmt.Sprintf("%d of %d requests left", rl.Remaining, rl.Limit)
		if rl.Window > 0 {
			s += " per " + formatDuration(rl.Window)
		}
		notes = append(notes, s)
	}
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, "; ") + ")"
	}
	if t.credsFrom == "" && ref.IsHub(host) {
		msg += " — logging in raises the limit"
	}
	return msg
}

// formatDuration prints d rounded to the second, without zero units: "6h", "1m30s".
func formatDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatPlatforms joins platforms as "linux/amd64, linux/arm64/v8", or "none".
func formatPlatforms(ps []ocitypes.Platform) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = ocitypes.FormatPlatform(p)
	}
	return strings.Join(s, ", ")
}

// repositoryOf strips the tag or digest from a reference as printed.
func repositoryOf(name string) string {
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if slash := strings.LastIndexByte(name, '/'); slash >= 0 {
		if i := strings.IndexByte(name[slash:], ':'); i >= 0 {
			name = name[:slash+i]
		}
	}
	return name
}

// isCertificateError reports whether err is a failed TLS certificate verification.
func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr)
}

// certificateReason is why verification failed, without the error's prefixes.
func certificateReason(err error) string {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &verr) && verr.Err != nil:
		return verr.Err.Error()
	case errors.As(err, &uerr):
		return uerr.Error()
	case errors.As(err, &herr):
		return herr.Error()
	case errors.As(err, &ierr):
		return ierr.Error()
	}
	return err.Error()
}

// errnoText is the text of the system error in err's chain, else err's own.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected EOF"
	}
	return err.Error()
}
