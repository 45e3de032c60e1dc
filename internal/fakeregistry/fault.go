package fakeregistry

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Fault is a misbehaviour of the registry. AddFault arms it for the requests it
// matches; when several armed faults match one request their effects combine (the
// first matching Status, Redirect or Handler wins). The zero Fault matches every
// request under /v2/ and changes nothing.
type Fault struct {
	// Method limits the fault to requests of this method; "" (the default) matches any.
	Method string
	// Path limits the fault to requests whose URL path contains it, such as "/blobs/",
	// "/manifests/", "/tags/list" or a digest; "" (the default) matches every request
	// under /v2/, including the ping.
	Path string
	// Times is how many matching requests the fault applies to; 0 (the default) is all.
	Times int

	// Status answers this HTTP status with an error envelope instead of serving the
	// request; 0 (the default) serves it. RetryAfter, when not "", is sent as the
	// Retry-After header with it.
	Status     int
	RetryAfter string
	// Redirect answers 307 Temporary Redirect to this URL instead of serving the request.
	Redirect string
	// Handler answers the request instead of the registry: a quirk it does not model.
	Handler http.Handler

	// OmitDigest leaves out the Docker-Content-Digest header (as ECR and Red Hat's
	// registries do for manifests).
	OmitDigest bool
	// IgnoreRange answers a blob Range request with 200 and the whole blob.
	IgnoreRange bool
	// WrongContentRange answers a blob Range request with a Content-Range whose first
	// byte is one past the requested one.
	WrongContentRange bool
	// Flip inverts the byte at offset FlipAt of the blob or manifest in every response
	// body that covers it (a corrupt registry or proxy); the stored content is unchanged.
	Flip   bool
	FlipAt int64
	// Drop closes the connection after After bytes of the response body, unless the body
	// is no longer than that.
	Drop bool
	// Stall writes After bytes of the body, at most, and then sends nothing more for
	// Stall or until the client goes away, and ends the response short.
	Stall time.Duration
	// After is the number of body bytes Drop and Stall let through (default 0).
	After int64
}

// fault is an armed Fault and how many more requests it applies to (<0: unlimited).
type fault struct {
	Fault
	left int
}

// AddFault arms f for the requests that follow.
func (r *Registry) AddFault(f Fault) {
	left := f.Times
	if left == 0 {
		left = -1
	}
	r.mu.Lock()
	r.faults = append(r.faults, &fault{Fault: f, left: left})
	r.mu.Unlock()
}

// ClearFaults disarms every fault.
func (r *Registry) ClearFaults() {
	r.mu.Lock()
	r.faults = nil
	r.mu.Unlock()
}

// faultsFor consumes the armed faults that match req and returns their combination.
func (r *Registry) faultsFor(req *http.Request) Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	var f Fault
	for _, a := range r.faults {
		if a.left == 0 || (a.Method != "" && a.Method != req.Method) || !strings.Contains(req.URL.Path, a.Path) {
			continue
		}
		if a.left > 0 {
			a.left--
		}
		if f.Status == 0 && f.Redirect == "" && f.Handler == nil {
			f.Status, f.RetryAfter, f.Redirect, f.Handler = a.Status, a.RetryAfter, a.Redirect, a.Handler
		}
		f.OmitDigest = f.OmitDigest || a.OmitDigest
		f.IgnoreRange = f.IgnoreRange || a.IgnoreRange
		f.WrongContentRange = f.WrongContentRange || a.WrongContentRange
		if a.Flip && !f.Flip {
			f.Flip, f.FlipAt = true, a.FlipAt
		}
		if (a.Drop || a.Stall > 0) && !f.Drop && f.Stall == 0 {
			f.Drop, f.Stall, f.After = a.Drop, a.Stall, a.After
		}
	}
	return f
}

// apply answers the request when the fault replaces the response, and reports whether
// it did.
func (f Fault) apply(w http.ResponseWriter, req *http.Request) bool {
	switch {
	case f.Handler != nil:
		f.Handler.ServeHTTP(w, req)
	case f.Redirect != "":
		http.Redirect(w, req, f.Redirect, http.StatusTemporaryRedirect)
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeError(w, f.Status, codeOf(f.Status), http.StatusText(f.Status), nil)
	default:
		return false
	}
	return true
}

// codeOf is the distribution error code registries send with status.
func codeOf(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusNotFound:
		return "NAME_UNKNOWN"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	default:
		return "UNAVAILABLE"
	}
}

// writeBody writes bytes [start, end) of c with the body faults of f.
func (f Fault) writeBody(w *recorder, req *http.Request, c Content, start, end int64) {
	var out io.Writer = w
	if f.Flip && f.FlipAt >= start && f.FlipAt < end {
		out = &flipper{w: w, at: f.FlipAt - start}
	}
	if f.Stall > 0 || (f.Drop && f.After < end-start) {
		_ = c.WriteRange(out, start, start+min(f.After, end-start))
		w.Flush()
		if f.Stall > 0 {
			select {
			case <-time.After(f.Stall):
			case <-req.Context().Done():
			}
			return
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	_ = c.WriteRange(out, start, end)
}

// flipper inverts the byte at offset at of the stream written through it, on a copy:
// the content's own buffers are never changed.
type flipper struct {
	w   io.Writer
	off int64
	at  int64
}

func (f *flipper) Write(b []byte) (int, error) {
	if i := f.at - f.off; i >= 0 && i < int64(len(b)) {
		c := make([]byte, len(b))
		copy(c, b)
		c[i] ^= 0xff
		b = c
	}
	n, err := f.w.Write(b)
	f.off += int64(n)
	return n, err
}
