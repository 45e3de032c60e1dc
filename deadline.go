package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// stallError is a request that the server stopped answering: no response headers, or
// no byte of the body, within the client's timeout. It wraps ErrStalled, never
// context.Canceled.
type stallError struct {
	what    string // "no response headers", "fewer than 60 KiB of the body"
	timeout time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("%s: %s within %s", ErrStalled, e.what, e.timeout)
}

func (e *stallError) Unwrap() error { return ErrStalled }

// deadlineTransport bounds every attempt of every request (metadata, tokens and
// blobs alike): headers must arrive within header, and a body must deliver at least
// read × minBodyRate bytes in every read, else the attempt is abandoned with a
// *stallError.
type deadlineTransport struct {
	next         http.RoundTripper
	header, read time.Duration
}

func (t *deadlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	headerStall := &stallError{what: "no response headers", timeout: t.header}
	timer := time.AfterFunc(t.header, func() { cancel(headerStall) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if context.Cause(ctx) == error(headerStall) {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		countStall(req.Context())
		return nil, headerStall
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	b := &stallBody{body: resp.Body, ctx: ctx, cancel: cancel, timeout: t.read, floor: max(1, int64(t.read.Seconds()*minBodyRate))}
	what := "no byte of the body"
	if b.floor > 1 {
		what = fmt.Sprintf("fewer than %d bytes of the body", b.floor)
		if b.floor%1024 == 0 {
			what = fmt.Sprintf("fewer than %d KiB of the body", b.floor>>10)
		}
	}
	b.stall = &stallError{what: what, timeout: t.read}
	b.timer = time.AfterFunc(t.read, func() { cancel(b.stall) })
	resp.Body = b
	return resp, nil
}

// minBodyRate is the least rate, in bytes per second, at which a body must arrive: a
// body that delivers fewer than timeout × minBodyRate bytes in a read timeout is
// abandoned, so that a server trickling a byte now and then cannot hold a download
// open forever.
const minBodyRate = 1 << 10

// stallBody ends a body that delivers fewer than floor bytes in timeout.
type stallBody struct {
	body    io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	floor   int64 // bytes due in every timeout
	got     int64 // bytes since the timer was last reset
	timer   *time.Timer
	stall   *stallError
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if b.got += int64(n); b.got >= b.floor {
		b.got = 0
		b.timer.Reset(b.timeout)
	}
	if err != nil && err != io.EOF && context.Cause(b.ctx) == error(b.stall) {
		return n, b.stall
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// stallCountKey holds, in a request's context, how many of its attempts stalled.
type stallCountKey struct{}

// withStallCount gives the attempts of one request a stall counter.
func withStallCount(ctx context.Context) context.Context {
	return context.WithValue(ctx, stallCountKey{}, new(atomic.Int32))
}

func countStall(ctx context.Context) {
	if n, ok := ctx.Value(stallCountKey{}).(*atomic.Int32); ok {
		n.Add(1)
	}
}

// stalls returns how many attempts of the request of ctx stalled.
func stalls(ctx context.Context) int32 {
	if n, ok := ctx.Value(stallCountKey{}).(*atomic.Int32); ok {
		return n.Load()
	}
	return 0
}

// maxStalls is how many attempts of one request may stall on their headers: a server
// that accepts connections and answers nothing costs two header timeouts, not one per
// retry.
const maxStalls = 2

// stallBudgetTransport gives each request that enters the retry layer its own stall
// counter.
type stallBudgetTransport struct{ next http.RoundTripper }

func (t *stallBudgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(req.WithContext(withStallCount(req.Context())))
}

// isStall reports whether err is a stalled attempt.
func isStall(err error) bool { return errors.Is(err, ErrStalled) }
