package fakeregistry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/ocitypes"
)

// do sends one request to reg and returns the response with its body read.
func do(t *testing.T, reg *fakeregistry.Registry, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, reg.Server.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// Redirects are answers to check, never followed off loopback.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServe(t *testing.T) {
	reg := fakeregistry.Start(t)
	blob := []byte("0123456789")
	d := reg.PutBlob("a/b", fakeregistry.Bytes(blob))
	img := reg.PushImage("a/b", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, fakeregistry.Bytes(blob))
	for _, repo := range []string{"c", "d", "e"} {
		reg.PushImage(repo, "latest", ocitypes.Platform{OS: "linux", Architecture: "amd64"})
	}
	mt := ocitypes.MediaTypeOCIManifest
	tests := []struct {
		name, method, path string
		header             []string
		status             int
		want               map[string]string // response headers
		body               string            // "" skips the check
	}{
		{name: "manifest by tag", method: "GET", path: "/v2/a/b/manifests/v1", status: 200,
			want: map[string]string{"Content-Type": mt, "Docker-Content-Digest": img.Manifest.Digest.String(), "Content-Length": itoa(img.Manifest.Size)}},
		{name: "manifest HEAD by digest", method: "HEAD", path: "/v2/a/b/manifests/" + img.Manifest.Digest.String(), status: 200,
			want: map[string]string{"Content-Type": mt, "Content-Length": itoa(img.Manifest.Size)}},
		{name: "manifest unknown", method: "GET", path: "/v2/a/b/manifests/v2", status: 404, body: "MANIFEST_UNKNOWN"},
		{name: "blob", method: "GET", path: "/v2/a/b/blobs/" + d.String(), status: 200, body: "0123456789",
			want: map[string]string{"Docker-Content-Digest": d.String(), "Content-Length": "10"}},
		{name: "blob range", method: "GET", path: "/v2/a/b/blobs/" + d.String(), header: []string{"Range", "bytes=3-5"}, status: 206, body: "345",
			want: map[string]string{"Content-Range": "bytes 3-5/10", "Content-Length": "3"}},
		{name: "blob open range", method: "GET", path: "/v2/a/b/blobs/" + d.String(), header: []string{"Range", "bytes=8-"}, status: 206, body: "89"},
		{name: "blob range past the end", method: "GET", path: "/v2/a/b/blobs/" + d.String(), header: []string{"Range", "bytes=10-"}, status: 416,
			want: map[string]string{"Content-Range": "bytes */10"}},
		{name: "blob of another repository", method: "GET", path: "/v2/c/blobs/" + d.String(), status: 404, body: "BLOB_UNKNOWN"},
		{name: "tags", method: "GET", path: "/v2/a/b/tags/list", status: 200, body: `{"name":"a/b","tags":["v1"]}` + "\n"},
		{name: "tags of an unknown repository", method: "GET", path: "/v2/x/tags/list", status: 404, body: "NAME_UNKNOWN"},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=2&last=a/b", status: 200, body: `{"repositories":["c","d"]}` + "\n",
			want: map[string]string{"Link": `</v2/_catalog?last=d&n=2>; rel="next"`}},
		{name: "catalog last page", method: "GET", path: "/v2/_catalog?n=2&last=d", status: 200, body: `{"repositories":["e"]}` + "\n",
			want: map[string]string{"Link": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, reg, tt.method, tt.path, nil, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.body != "" && !strings.Contains(string(body), tt.body) {
				t.Errorf("body %q, want %q", body, tt.body)
			}
		})
	}
	if n := reg.Served(d.String()); n != 10+3+2 {
		t.Errorf("Served(blob) = %d, want 15", n)
	}
}

func TestGenerated(t *testing.T) {
	const size = 3<<20 + 5
	c := fakeregistry.Generated(7, size)
	var whole bytes.Buffer
	if err := c.WriteRange(&whole, 0, size); err != nil || whole.Len() != size {
		t.Fatalf("whole: %d bytes, %v", whole.Len(), err)
	}
	for _, r := range [][2]int64{{0, 1}, {5, 20}, {1<<20 - 3, 1<<20 + 20}, {2<<20 + 7, size}, {size - 1, size}} {
		var part bytes.Buffer
		if err := c.WriteRange(&part, r[0], r[1]); err != nil || !bytes.Equal(part.Bytes(), whole.Bytes()[r[0]:r[1]]) {
			t.Errorf("range %v differs from the whole content's bytes: %v", r, err)
		}
	}
	var other bytes.Buffer
	_ = fakeregistry.Generated(8, size).WriteRange(&other, 0, size)
	if bytes.Equal(other.Bytes(), whole.Bytes()) || fakeregistry.Digest(c) != digest.FromBytes(whole.Bytes()) {
		t.Error("contents of different ids are equal, or Digest disagrees with the bytes")
	}
}

func TestUploads(t *testing.T) {
	reg := fakeregistry.Start(t)
	layer := []byte("a layer pushed in two chunks")
	ld := digest.FromBytes(layer)

	resp, _ := do(t, reg, "POST", "/v2/dst/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("POST: %d, Location %q", resp.StatusCode, loc)
	}
	resp, _ = do(t, reg, "PATCH", loc, layer[:10], "Content-Range", "0-9")
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-9" {
		t.Fatalf("PATCH: %d, Range %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	if resp, _ = do(t, reg, "PATCH", loc, layer[10:], "Content-Range", "5-9"); resp.StatusCode != 416 {
		t.Errorf("PATCH out of order: %d, want 416", resp.StatusCode)
	}
	if resp, _ = do(t, reg, "PUT", loc+"?digest="+digest.FromString("x").String(), layer[10:]); resp.StatusCode != 400 {
		t.Errorf("PUT with a wrong digest: %d, want 400", resp.StatusCode)
	}
	resp, _ = do(t, reg, "POST", "/v2/dst/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	do(t, reg, "PATCH", loc, layer[:10])
	if resp, _ = do(t, reg, "PUT", loc+"?digest="+ld.String(), layer[10:]); resp.StatusCode != 201 || !reg.HasBlob("dst", ld) {
		t.Fatalf("PUT: %d, blob stored %v", resp.StatusCode, reg.HasBlob("dst", ld))
	}

	cfg := []byte(`{}`)
	cd := digest.FromBytes(cfg)
	if resp, _ = do(t, reg, "POST", "/v2/dst/blobs/uploads/?digest="+cd.String(), cfg); resp.StatusCode != 201 {
		t.Errorf("monolithic POST: %d, want 201", resp.StatusCode)
	}

	if resp, _ = do(t, reg, "POST", "/v2/other/blobs/uploads/?mount="+ld.String()+"&from=dst", nil); resp.StatusCode != 201 || !reg.HasBlob("other", ld) {
		t.Errorf("mount: %d, blob linked %v", resp.StatusCode, reg.HasBlob("other", ld))
	}
	if resp, _ = do(t, reg, "POST", "/v2/other/blobs/uploads/?mount="+cd.String()+"&from=nowhere", nil); resp.StatusCode != 202 {
		t.Errorf("mount from a repository without the blob: %d, want 202 (an upload starts)", resp.StatusCode)
	}

	m, _ := json.Marshal(ocitypes.Manifest{MediaType: ocitypes.MediaTypeOCIManifest,
		Config: ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIConfig, Digest: cd, Size: 2},
		Layers: []ocitypes.Descriptor{{MediaType: ocitypes.MediaTypeOCILayer, Digest: ld, Size: int64(len(layer))}}})
	if resp, body := do(t, reg, "PUT", "/v2/other/manifests/v1", m, "Content-Type", ocitypes.MediaTypeOCIManifest); resp.StatusCode != 400 || !strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") {
		t.Errorf("PUT of a manifest whose config is missing: %d %s", resp.StatusCode, body)
	}
	if resp, _ = do(t, reg, "PUT", "/v2/dst/manifests/v1", m, "Content-Type", ocitypes.MediaTypeOCIManifest); resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != digest.FromBytes(m).String() {
		t.Fatalf("PUT manifest: %d, digest %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	if mt, body, ok := reg.Manifest("dst", "v1"); !ok || mt != ocitypes.MediaTypeOCIManifest || !bytes.Equal(body, m) {
		t.Errorf("stored manifest: %q %s %v", mt, body, ok)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	reg := fakeregistry.Start(t)
	reg.PushImage("a/b", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"})
	reg.SetAuth(fakeregistry.Auth{Scheme: "bearer", Username: "u", Password: "p", Token: "t0k"})
	reg.AddFault(fakeregistry.Fault{Path: "/manifests/", Status: 503, RetryAfter: "0", Times: 2})

	resp, _ := do(t, reg, "GET", "/v2/a/b/manifests/v1", nil)
	if want := `Bearer realm="http://` + reg.Host() + `/token",service="registry.test",scope="repository:a/b:pull"`; resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("anonymous: %d, challenge %q; want 401, %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	// The client fetches a token from the built-in endpoint and retries past the 503s.
	c, err := ocistream.New(ocistream.WithPlainHTTP(reg.Host()),
		ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host(), ocistream.Credential{Username: "u", Password: "p"})),
		ocistream.WithRetryPolicy(ocistream.RetryPolicy{MaxRetries: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Manifest(t.Context(), reg.Host()+"/a/b:v1"); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, q := range reg.Log() {
		if strings.Contains(q.Path, "/manifests/") {
			statuses = append(statuses, q.Status)
		}
	}
	if want := []int{401, 401, 503, 503, 200}; !slices.Equal(statuses, want) {
		t.Errorf("manifest statuses %v, want %v", statuses, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestFaultResponses(t *testing.T) {
	blob := []byte("0123456789")
	tests := []struct {
		name   string
		fault  fakeregistry.Fault
		path   string
		header []string
		status int
		want   map[string]string // response headers; "" means absent
		body   string
	}{
		{name: "omit digest", fault: fakeregistry.Fault{Path: "/manifests/", OmitDigest: true}, path: "/v2/r/manifests/v1", status: 200,
			want: map[string]string{"Docker-Content-Digest": ""}},
		{name: "redirect", fault: fakeregistry.Fault{Path: "/blobs/", Redirect: "http://storage.test/x"}, path: "/v2/r/blobs/BLOB", status: 307,
			want: map[string]string{"Location": "http://storage.test/x"}},
		{name: "ignore range", fault: fakeregistry.Fault{IgnoreRange: true}, path: "/v2/r/blobs/BLOB", header: []string{"Range", "bytes=4-"}, status: 200,
			want: map[string]string{"Content-Range": ""}, body: "0123456789"},
		{name: "wrong content-range", fault: fakeregistry.Fault{WrongContentRange: true}, path: "/v2/r/blobs/BLOB", header: []string{"Range", "bytes=4-"}, status: 206,
			want: map[string]string{"Content-Range": "bytes 5-9/10"}, body: "456789"},
		{name: "flip", fault: fakeregistry.Fault{Flip: true, FlipAt: 5}, path: "/v2/r/blobs/BLOB", header: []string{"Range", "bytes=4-"}, status: 206,
			body: `4\xca6789`},
		{name: "status", fault: fakeregistry.Fault{Method: "GET", Status: 429, RetryAfter: "7"}, path: "/v2/r/blobs/BLOB", status: 429,
			want: map[string]string{"Retry-After": "7"}, body: "TOOMANYREQUESTS"},
		{name: "other method", fault: fakeregistry.Fault{Method: "HEAD", Status: 429}, path: "/v2/r/blobs/BLOB", status: 200},
		{name: "other path", fault: fakeregistry.Fault{Path: "/manifests/", Status: 429}, path: "/v2/r/blobs/BLOB", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := fakeregistry.Start(t)
			d := reg.PutBlob("r", fakeregistry.Bytes(blob))
			reg.PushImage("r", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"})
			reg.AddFault(tt.fault)
			resp, body := do(t, reg, "GET", strings.Replace(tt.path, "BLOB", d.String(), 1), nil, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := fmt.Sprintf("%+q", body); tt.body != "" && !strings.Contains(got, tt.body) {
				t.Errorf("body %s, want %s", got, tt.body)
			}
		})
	}
}
