package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/ocitypes"
)

// newTagRegistry starts a fake registry whose repository repo has tags, each naming a
// small manifest.
func newTagRegistry(t *testing.T, repo string, tags ...string) *fakeregistry.Registry {
	t.Helper()
	reg := fakeregistry.Start(t)
	for _, tag := range tags {
		reg.PutManifest(repo, tag, ocitypes.MediaTypeOCIManifest, []byte(`{"schemaVersion":2}`))
	}
	return reg
}

func newTestClient(t *testing.T, srv *httptest.Server, opts ...Option) *Client {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	opts = append([]Option{WithPlainHTTP(u.Host), WithRetryPolicy(RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, MaxRetryAfter: time.Second})}, opts...)
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hostOf(srv *httptest.Server) string {
	u, _ := url.Parse(srv.URL)
	return u.Host
}

func TestTagsPagination(t *testing.T) {
	var tags []string
	for i := range 7 {
		tags = append(tags, fmt.Sprintf("v%02d", i))
	}
	for _, pageSize := range []int{1, 2, len(tags), len(tags) + 10} {
		t.Run(fmt.Sprintf("n=%d", pageSize), func(t *testing.T) {
			reg := newTagRegistry(t, "a/b", tags...)
			c := newTestClient(t, reg.Server)
			seq := c.Tags(t.Context(), reg.Host()+"/a/b", &ListOptions{PageSize: pageSize})
			got, err := Collect(seq)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tags) {
				t.Errorf("tags = %v, want %v", got, tags)
			}
			wantPages := (len(tags) + pageSize - 1) / pageSize
			if n := reg.Requests(); n != wantPages {
				t.Errorf("requests = %d, want %d", n, wantPages)
			}
			// Re-ranging starts over.
			again, err := Collect(seq)
			if err != nil || !slices.Equal(again, tags) {
				t.Errorf("second range = %v, %v; want %v", again, err, tags)
			}
			// Breaking after the first tag costs exactly one request.
			before := reg.Requests()
			for tag, err := range seq {
				if err != nil || tag != tags[0] {
					t.Errorf("first = %q, %v", tag, err)
				}
				break
			}
			if n := reg.Requests() - before; n != 1 {
				t.Errorf("break after first item cost %d requests, want 1", n)
			}
		})
	}
}

func TestTagsLastAndLazy(t *testing.T) {
	reg := newTagRegistry(t, "r", "a", "b", "c", "d")
	c := newTestClient(t, reg.Server)
	seq := c.Tags(t.Context(), reg.Host()+"/r", &ListOptions{PageSize: 1, Last: "b"})
	if n := reg.Requests(); n != 0 {
		t.Fatalf("creating the iterator made %d requests", n)
	}
	got, err := Collect(seq)
	if err != nil || !slices.Equal(got, []string{"c", "d"}) {
		t.Errorf("Tags after b = %v, %v", got, err)
	}
}

func TestTagsHostileRegistry(t *testing.T) {
	tags := []string{"a", "b", "c"}
	tests := []struct {
		name    string
		link    func(r *http.Request, last string, n int) string
		body    func(w http.ResponseWriter)
		maxPage int
		want    error
		items   int // items yielded before the error
	}{
		{
			name: "link to another host",
			link: func(*http.Request, string, int) string {
				return `<http://evil.example:8080/v2/r/tags/list?n=1&last=a>; rel="next"`
			},
			want:  ErrCrossOrigin,
			items: 1,
		},
		{
			name: "link to another scheme",
			link: func(r *http.Request, _ string, _ int) string {
				return `<https://` + r.Host + `/v2/r/tags/list?n=1&last=a>; rel="next"`
			},
			want:  ErrCrossOrigin,
			items: 1,
		},
		{
			name:  "cursor loops",
			link:  func(*http.Request, string, int) string { return `</v2/r/tags/list?n=1&last=a>; rel="next"` },
			want:  ErrTooManyPages,
			items: 2,
		},
		{
			name:    "too many pages",
			maxPage: 2,
			want:    ErrTooManyPages,
			items:   2,
		},
		{
			name: "50 MiB body",
			body: func(w http.ResponseWriter) {
				w.Write([]byte(`{"name":"r","tags":["`))
				chunk := strings.Repeat("x", 1<<20)
				for range 50 {
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
				w.Write([]byte(`"]}`))
			},
			want: ErrSizeExceedsLimit,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTagRegistry(t, "r", tags...)
			reg.SetNextLink(tt.link)
			if tt.body != nil {
				reg.AddFault(fakeregistry.Fault{Path: "/tags/list", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.body(w) })})
			}
			c := newTestClient(t, reg.Server)
			var items, errs int
			var last error
			for _, err := range c.Tags(t.Context(), reg.Host()+"/r", &ListOptions{PageSize: 1, MaxPages: tt.maxPage}) {
				if err != nil {
					errs++
					last = err
					continue
				}
				if errs > 0 {
					t.Fatal("an item followed the error")
				}
				items++
			}
			if errs != 1 || !errors.Is(last, tt.want) {
				t.Fatalf("errors = %d, last = %v; want one error wrapping %v", errs, last, tt.want)
			}
			if items != tt.items {
				t.Errorf("items before the error = %d, want %d", items, tt.items)
			}
		})
	}
}

func TestTagsContextCanceled(t *testing.T) {
	reg := newTagRegistry(t, "r", "a", "b", "c")
	c := newTestClient(t, reg.Server)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	var gotErr error
	for tag, err := range c.Tags(ctx, reg.Host()+"/r", &ListOptions{PageSize: 1}) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, tag)
		cancel()
	}
	if !errors.Is(gotErr, context.Canceled) || len(got) != 1 {
		t.Errorf("got %v, %v; want one tag then context.Canceled", got, gotErr)
	}
}

func TestParseNextLink(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`</v2/test/tags/list?last=asj9e&n=2>; rel="next"`, "/v2/test/tags/list?last=asj9e&n=2", true},
		{`<https://quay.io/v2/ns/repo/tags/list?n=100&last=x>; rel="next"`, "https://quay.io/v2/ns/repo/tags/list?n=100&last=x", true},
		{`</v2/_catalog?last=contoso-marketing&n=2&orderby=>; rel="next"`, "/v2/_catalog?last=contoso-marketing&n=2&orderby=", true},
		{`</library/node/tags/list?n=10000&last=10000>; rel="next", `, "/library/node/tags/list?n=10000&last=10000", true},
		{`</a>; rel="prev", </b>; rel="next"`, "/b", true},
		{`</a>; rel=next`, "/a", true},
		{`</a>; rel="prev"`, "", false},
		{`garbage`, "", false},
		{`<unterminated; rel="next"`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := parseNextLink(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseNextLink(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseNextLink(f *testing.F) {
	for _, s := range []string{`</v2/t/tags/list?last=a&n=2>; rel="next"`, `</a>; rel="prev", </b>; rel="next"`, `<x>;rel=next,`, `<`, `<>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, ok := parseNextLink(s)
		if ok && strings.ContainsAny(target, "<>") {
			t.Errorf("parseNextLink(%q) = %q contains angle brackets", s, target)
		}
	})
}
