package ocistream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/ocitypes"
)

// stallServer accepts every request and then stops answering: before the headers
// (silent), or after headers announcing a body that never comes. Requests whose path
// contains "/ok/" are answered normally by ok, if set.
type stallServer struct {
	afterHeaders bool
	attempts     atomic.Int64
	ok           http.Handler
}

func (s *stallServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.ok != nil && strings.Contains(r.URL.Path, "/ok/") {
		s.ok.ServeHTTP(w, r)
		return
	}
	s.attempts.Add(1)
	if s.afterHeaders {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	}
	<-r.Context().Done() // until the client gives up
}

// TestStalledRequestsFail points every kind of request at a server that stops
// answering, before or after its headers: each must fail with ErrStalled (not
// context.Canceled, which means the caller stopped it), and a silent server must be
// tried twice, not once per retry.
func TestStalledRequestsFail(t *testing.T) {
	ops := []struct {
		name string
		do   func(ctx context.Context, c *Client, host string) error
	}{
		{"ping", func(ctx context.Context, c *Client, host string) error { return c.Ping(ctx, host) }},
		{"manifest", func(ctx context.Context, c *Client, host string) error {
			_, _, err := c.Manifest(ctx, host+"/a/b:v1")
			return err
		}},
		{"resolve", func(ctx context.Context, c *Client, host string) error {
			_, err := c.Resolve(ctx, host+"/a/b:v1")
			return err
		}},
		{"tags", func(ctx context.Context, c *Client, host string) error {
			_, err := Collect(c.Tags(ctx, host+"/a/b", nil))
			return err
		}},
		{"catalog", func(ctx context.Context, c *Client, host string) error {
			_, err := Collect(c.Catalog(ctx, host, nil))
			return err
		}},
		{"blob", func(ctx context.Context, c *Client, host string) error {
			data := []byte("a blob that never comes")
			rc, err := c.Blob(ctx, host+"/a/b", ocitypes.Descriptor{Digest: digestOf(data), Size: int64(len(data))})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadAll(rc)
			return err
		}},
	}
	for _, afterHeaders := range []bool{false, true} {
		for _, op := range ops {
			if afterHeaders && (op.name == "resolve" || op.name == "ping") {
				continue // a HEAD has no body, and ping needs none
			}
			t.Run(fmt.Sprintf("afterHeaders=%v/%s", afterHeaders, op.name), func(t *testing.T) {
				s := &stallServer{afterHeaders: afterHeaders}
				srv := httptest.NewServer(s)
				t.Cleanup(srv.Close)
				c := newTestClient(t, srv, WithResponseHeaderTimeout(50*time.Millisecond), WithReadTimeout(50*time.Millisecond),
					WithRetryPolicy(RetryPolicy{MaxRetries: 5, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}), WithMaxResumes(2))
				err := op.do(t.Context(), c, hostOf(srv))
				if !errors.Is(err, ErrStalled) || errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want ErrStalled and not context.Canceled", err)
				}
				if !afterHeaders && s.attempts.Load() != maxStalls {
					t.Errorf("a silent server was asked %d times, want %d", s.attempts.Load(), maxStalls)
				}
			})
		}
	}
}

// TestStalledTokenServer makes the token server the one that stops answering.
func TestStalledTokenServer(t *testing.T) {
	for _, afterHeaders := range []bool{false, true} {
		t.Run(fmt.Sprintf("afterHeaders=%v", afterHeaders), func(t *testing.T) {
			tokens := httptest.NewServer(&stallServer{afterHeaders: afterHeaders})
			t.Cleanup(tokens.Close)
			rg := fakeregistry.Start(t)
			rg.SetAuth(bearerAuth(tokens, "tok"))
			rg.PutManifest("a/b", "v1", ocitypes.MediaTypeOCIManifest, []byte(testManifest))
			srv := rg.Server
			c := newTestClient(t, srv, WithPlainHTTP(hostOf(tokens)), WithResponseHeaderTimeout(50*time.Millisecond), WithReadTimeout(50*time.Millisecond))
			_, _, err := c.Manifest(t.Context(), hostOf(srv)+"/a/b:v1")
			if !errors.Is(err, ErrStalled) || errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want ErrStalled and not context.Canceled", err)
			}
		})
	}
}

func TestResponseHeaderTimeoutOption(t *testing.T) {
	if _, err := New(WithResponseHeaderTimeout(0)); err == nil {
		t.Error("WithResponseHeaderTimeout(0) accepted")
	}
}

// TestTricklingBody: a server that sends a byte of a blob now and then, always within
// the read timeout, is cut off like a silent one, and the download fails with
// ErrStalled once its resumes are spent.
func TestTricklingBody(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		for i := 0; ; i++ {
			if _, err := w.Write(data[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond): // well within the read timeout
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv, WithReadTimeout(time.Second), WithMaxResumes(1),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}))
	rc, err := c.Blob(t.Context(), hostOf(srv)+"/a/b", ocitypes.Descriptor{Digest: digestOf(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if n := attempts.Load(); n < 2 {
		t.Errorf("%d attempts, want the body resumed before giving up", n)
	}
}
