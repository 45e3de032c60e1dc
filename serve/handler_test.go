package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// fixture is a layout directory written by hand: repository many (an index of two
// platform manifests, tagged latest and t00…t04), a skopeo-style image named only by
// a tag, a large layer and a referrer.
type fixture struct {
	dir      string
	blobs    map[digest.Digest][]byte
	index    ocitypes.Descriptor // many:latest
	amd64    ocitypes.Descriptor // its first manifest
	small    ocitypes.Descriptor // a small layer
	large    ocitypes.Descriptor // a layer of 5 MiB
	sbom     ocitypes.Descriptor // a referrer of amd64
	dangling ocitypes.Descriptor // a referrer of a manifest the layout does not hold
	skopeo   ocitypes.Descriptor // the image tagged "only" in the default repository
}

const sbomType = "application/vnd.example.sbom+json"

func (f *fixture) blob(t testing.TB, mediaType string, b []byte) ocitypes.Descriptor {
	t.Helper()
	d := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := os.WriteFile(filepath.Join(f.dir, "blobs", "sha256", d.Digest.Encoded()), b, 0o644); err != nil {
		t.Fatal(err)
	}
	f.blobs[d.Digest] = b
	return d
}

func (f *fixture) json(t testing.TB, mediaType string, v any) ocitypes.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return f.blob(t, mediaType, b)
}

func (f *fixture) image(t testing.TB, arch string, layers ...ocitypes.Descriptor) ocitypes.Descriptor {
	cfg := f.json(t, ocitypes.MediaTypeOCIConfig, map[string]any{"architecture": arch, "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	return f.json(t, ocitypes.MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "config": cfg, "layers": layers,
	})
}

// writeIndex writes index.json atomically, as writers do.
func (f *fixture) writeIndex(t testing.TB, entries ...ocitypes.Descriptor) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": entries})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(f.dir, "index.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "index.json")); err != nil {
		t.Fatal(err)
	}
}

func named(d ocitypes.Descriptor, annotations ...string) ocitypes.Descriptor {
	d.Annotations = map[string]string{}
	for i := 0; i < len(annotations); i += 2 {
		d.Annotations[annotations[i]] = annotations[i+1]
	}
	return d
}

const (
	annRefName   = "org.opencontainers.image.ref.name"
	annImageName = "io.containerd.image.name"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{dir: filepath.Join(t.TempDir(), "Local_Images"), blobs: map[digest.Digest][]byte{}}
	if err := os.MkdirAll(filepath.Join(f.dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	f.small = f.blob(t, ocitypes.MediaTypeOCILayerGzip, []byte("a small layer, served verified"))
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	f.large = f.blob(t, ocitypes.MediaTypeOCILayerGzip, big)
	f.amd64 = f.image(t, "amd64", f.small, f.large)
	arm := f.image(t, "arm64", f.small)
	f.index = f.json(t, ocitypes.MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": []ocitypes.Descriptor{f.amd64, arm},
	})
	empty := f.blob(t, "application/vnd.oci.empty.v1+json", []byte("{}"))
	f.sbom = f.json(t, ocitypes.MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "artifactType": sbomType,
		"config": empty, "layers": []ocitypes.Descriptor{f.small}, "subject": f.amd64,
		"annotations": map[string]string{"org.example": "sbom"},
	})
	f.dangling = f.json(t, ocitypes.MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "artifactType": sbomType,
		"config": empty, "layers": []ocitypes.Descriptor{}, "subject": ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIManifest, Digest: digest.FromString("gone"), Size: 4},
	})
	f.skopeo = f.image(t, "s390x", f.small)
	entries := []ocitypes.Descriptor{named(f.index, annRefName, "latest", annImageName, "127.0.0.1:5000/many:latest")}
	for i := range 5 {
		tag := fmt.Sprintf("t%02d", i)
		entries = append(entries, named(f.index, annRefName, tag, annImageName, "127.0.0.1:5000/many:"+tag))
	}
	entries = append(entries,
		named(f.skopeo, annRefName, "only"),
		f.sbom,
		f.dangling,
		named(arm, annImageName, "docker.io/library/alpine:3.20", annRefName, "3.20"))
	f.writeIndex(t, entries...)
	return f
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func serveFixture(t *testing.T, f *fixture, opts *Options) (*httptest.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts == nil {
		opts = &Options{}
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h, err := New(f.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// errorCode returns the code of the only error of an envelope, "" when the body is
// not one.
func errorCode(b []byte) string {
	errs, ok := ocitypes.ParseErrorEnvelope(b)
	if !ok || len(errs) != 1 {
		return ""
	}
	return errs[0].Code
}

func TestHandler(t *testing.T) {
	f := newFixture(t)
	srv, _ := serveFixture(t, f, nil)
	big := f.blobs[f.large.Digest]
	size := f.large.Size
	manifest := func(d ocitypes.Descriptor) []byte { return f.blobs[d.Digest] }
	for _, tt := range []struct {
		name, method, path string
		header             []string
		status             int
		body               []byte            // nil: not checked
		code               string            // error code of the envelope
		want               map[string]string // response headers
	}{
		{name: "base", method: "GET", path: "/v2/", status: 200, body: []byte("{}\n")},
		{name: "manifest by tag", method: "GET", path: "/v2/many/manifests/latest", status: 200, body: manifest(f.index),
			want: map[string]string{"Content-Type": ocitypes.MediaTypeOCIIndex, "Docker-Content-Digest": string(f.index.Digest), "Content-Length": fmt.Sprint(f.index.Size)}},
		{name: "manifest by digest", method: "GET", path: "/v2/many/manifests/" + string(f.amd64.Digest), status: 200, body: manifest(f.amd64),
			want: map[string]string{"Content-Type": ocitypes.MediaTypeOCIManifest, "Docker-Content-Digest": string(f.amd64.Digest)}},
		{name: "manifest head", method: "HEAD", path: "/v2/many/manifests/t03", status: 200, body: []byte{},
			want: map[string]string{"Content-Length": fmt.Sprint(f.index.Size), "Docker-Content-Digest": string(f.index.Digest)}},
		{name: "manifest of another repository", method: "GET", path: "/v2/many/manifests/" + string(f.skopeo.Digest), status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown tag", method: "GET", path: "/v2/many/manifests/nope", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown tag head", method: "HEAD", path: "/v2/many/manifests/nope", status: 404, body: []byte{}},
		{name: "bad digest", method: "GET", path: "/v2/many/manifests/sha256:abc", status: 400, code: "DIGEST_INVALID"},
		{name: "unknown repository", method: "GET", path: "/v2/few/manifests/latest", status: 404, code: "NAME_UNKNOWN"},
		{name: "skopeo tag in default repository", method: "GET", path: "/v2/local_images/manifests/only", status: 200, body: manifest(f.skopeo)},
		{name: "docker hub name", method: "GET", path: "/v2/library/alpine/manifests/3.20", status: 200},
		{name: "docker hub short name", method: "GET", path: "/v2/alpine/manifests/3.20", status: 200},
		{name: "traversal in name", method: "GET", path: "/v2/../../etc/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "encoded traversal", method: "GET", path: "/v2/many%2F..%2F..%2Fetc/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "traversal in digest", method: "GET", path: "/v2/many/blobs/sha256:..%2F..%2Findex.json", status: 400, code: "DIGEST_INVALID"},
		{name: "no such endpoint", method: "GET", path: "/v2/many/other", status: 404},

		{name: "small blob", method: "GET", path: "/v2/many/blobs/" + string(f.small.Digest), status: 200, body: f.blobs[f.small.Digest],
			want: map[string]string{"Docker-Content-Digest": string(f.small.Digest), "Content-Type": "application/octet-stream"}},
		{name: "large blob", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), status: 200, body: big,
			want: map[string]string{"Content-Length": fmt.Sprint(size), "Accept-Ranges": "bytes"}},
		{name: "blob head", method: "HEAD", path: "/v2/many/blobs/" + string(f.large.Digest), status: 200, body: []byte{},
			want: map[string]string{"Content-Length": fmt.Sprint(size), "Docker-Content-Digest": string(f.large.Digest)}},
		{name: "config blob", method: "GET", path: "/v2/alpine/blobs/" + string(f.small.Digest), status: 200},
		{name: "blob not in repository", method: "GET", path: "/v2/alpine/blobs/" + string(f.large.Digest), status: 404, code: "BLOB_UNKNOWN"},
		{name: "unknown blob", method: "GET", path: "/v2/many/blobs/" + string(digest.FromString("x")), status: 404, code: "BLOB_UNKNOWN"},
		{name: "range", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", "bytes=10-19"}, status: 206, body: big[10:20],
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes 10-19/%d", size), "Content-Length": "10"}},
		{name: "open range", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", fmt.Sprintf("bytes=%d-", size-5)}, status: 206, body: big[size-5:],
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", size-5, size-1, size)}},
		{name: "suffix range", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", "bytes=-7"}, status: 206, body: big[size-7:],
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", size-7, size-1, size)}},
		{name: "range on a small blob", method: "GET", path: "/v2/many/blobs/" + string(f.small.Digest), header: []string{"Range", "bytes=2-4"}, status: 206, body: f.blobs[f.small.Digest][2:5]},
		{name: "range past the end", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", fmt.Sprintf("bytes=%d-", size)}, status: 416,
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", size)}},
		{name: "invalid range", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", "bytes=9-3"}, status: 416,
			want: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", size)}},
		{name: "garbage range", method: "GET", path: "/v2/many/blobs/" + string(f.large.Digest), header: []string{"Range", "bytes=x"}, status: 416},

		{name: "tags", method: "GET", path: "/v2/many/tags/list", status: 200, body: []byte(`{"name":"many","tags":["latest","t00","t01","t02","t03","t04"]}` + "\n")},
		{name: "tags page", method: "GET", path: "/v2/many/tags/list?n=2", status: 200, body: []byte(`{"name":"many","tags":["latest","t00"]}` + "\n"),
			want: map[string]string{"Link": `</v2/many/tags/list?last=t00&n=2>; rel="next"`}},
		{name: "tags after last", method: "GET", path: "/v2/many/tags/list?n=2&last=t02", status: 200, body: []byte(`{"name":"many","tags":["t03","t04"]}` + "\n"),
			want: map[string]string{"Link": ""}},
		{name: "tags after a missing last", method: "GET", path: "/v2/many/tags/list?last=t015", status: 200, body: []byte(`{"name":"many","tags":["t02","t03","t04"]}` + "\n")},
		{name: "tags past the end", method: "GET", path: "/v2/many/tags/list?last=zzz", status: 200, body: []byte(`{"name":"many","tags":[]}` + "\n")},
		{name: "tags n=0", method: "GET", path: "/v2/many/tags/list?n=0", status: 200, body: []byte(`{"name":"many","tags":[]}` + "\n"), want: map[string]string{"Link": ""}},
		{name: "tags bad n", method: "GET", path: "/v2/many/tags/list?n=-1", status: 400, code: "PAGINATION_NUMBER_INVALID"},
		{name: "catalog", method: "GET", path: "/v2/_catalog", status: 200, body: []byte(`{"repositories":["library/alpine","local_images","many"]}` + "\n")},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=1&last=library/alpine", status: 200, body: []byte(`{"repositories":["local_images"]}` + "\n"),
			want: map[string]string{"Link": `</v2/_catalog?last=local_images&n=1>; rel="next"`}},
		{name: "catalog n too large", method: "GET", path: "/v2/_catalog?n=100000", status: 400, code: "PAGINATION_NUMBER_INVALID"},

		{name: "referrers", method: "GET", path: "/v2/many/referrers/" + string(f.amd64.Digest), status: 200,
			want: map[string]string{"Content-Type": ocitypes.MediaTypeOCIIndex, "OCI-Filters-Applied": ""}},
		{name: "referrers filtered", method: "GET", path: "/v2/many/referrers/" + string(f.amd64.Digest) + "?artifactType=" + sbomType, status: 200,
			want: map[string]string{"OCI-Filters-Applied": "artifactType"}},
		{name: "referrers none", method: "GET", path: "/v2/many/referrers/" + string(digest.FromString("none")), status: 200,
			body: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` + "\n")},
		{name: "referrers bad digest", method: "GET", path: "/v2/many/referrers/latest", status: 400, code: "DIGEST_INVALID"},
		{name: "dangling referrer in the default repository", method: "GET", path: "/v2/local_images/referrers/" + string(digest.FromString("gone")), status: 200,
			body: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
				string(f.dangling.Digest) + `","size":` + fmt.Sprint(f.dangling.Size) + `,"artifactType":"` + sbomType + `"}]}` + "\n")},
		{name: "referrer by digest", method: "GET", path: "/v2/many/manifests/" + string(f.sbom.Digest), status: 200, body: manifest(f.sbom)},

		{name: "upload", method: "POST", path: "/v2/many/blobs/uploads/", status: 405, code: "UNSUPPORTED", want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "put manifest", method: "PUT", path: "/v2/many/manifests/latest", status: 405, code: "UNSUPPORTED"},
		{name: "patch", method: "PATCH", path: "/v2/many/blobs/uploads/x", status: 405, code: "UNSUPPORTED"},
		{name: "delete manifest", method: "DELETE", path: "/v2/many/manifests/" + string(f.index.Digest), status: 405, code: "UNSUPPORTED"},
		{name: "delete blob", method: "DELETE", path: "/v2/many/blobs/" + string(f.small.Digest), status: 405, code: "UNSUPPORTED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, tt.path, tt.header...)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if tt.body != nil && !bytes.Equal(r.body, tt.body) {
				t.Errorf("body = %.200q, want %.200q", r.body, tt.body)
			}
			if tt.code != "" {
				if got := errorCode(r.body); got != tt.code {
					t.Errorf("error code = %q in %s, want %q", got, r.body, tt.code)
				}
			}
			for k, v := range tt.want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("referrers content", func(t *testing.T) {
		r := do(t, srv, "GET", "/v2/many/referrers/"+string(f.amd64.Digest))
		idx, err := ocitypes.ParseIndex(ocitypes.MediaTypeOCIIndex, r.body)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != f.sbom.Digest || idx.Manifests[0].ArtifactType != sbomType ||
			idx.Manifests[0].Annotations["org.example"] != "sbom" {
			t.Errorf("referrers = %+v, want the sbom with its artifact type and annotations", idx.Manifests)
		}
		r = do(t, srv, "GET", "/v2/many/referrers/"+string(f.amd64.Digest)+"?artifactType=other")
		if idx, _ := ocitypes.ParseIndex(ocitypes.MediaTypeOCIIndex, r.body); len(idx.Manifests) != 0 {
			t.Errorf("referrers filtered on another type = %+v, want none", idx.Manifests)
		}
	})
}

func TestHandlerDamagedBlobs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(f *fixture) (path string)
		status int
	}{
		{"small blob flipped", func(f *fixture) string {
			b := bytes.Clone(f.blobs[f.small.Digest])
			b[0] ^= 1
			p := filepath.Join(f.dir, "blobs", "sha256", f.small.Digest.Encoded())
			os.WriteFile(p, b, 0o644)
			return "/v2/many/blobs/" + string(f.small.Digest)
		}, 500},
		{"large blob truncated", func(f *fixture) string {
			os.Truncate(filepath.Join(f.dir, "blobs", "sha256", f.large.Digest.Encoded()), 100)
			return "/v2/many/blobs/" + string(f.large.Digest)
		}, 500},
		{"large blob missing", func(f *fixture) string {
			os.Remove(filepath.Join(f.dir, "blobs", "sha256", f.large.Digest.Encoded()))
			return "/v2/many/blobs/" + string(f.large.Digest)
		}, 404},
		{"large blob a symlink", func(f *fixture) string {
			p := filepath.Join(f.dir, "blobs", "sha256", f.large.Digest.Encoded())
			os.Rename(p, p+".real")
			os.Symlink(p+".real", p)
			return "/v2/many/blobs/" + string(f.large.Digest)
		}, 500},
		{"manifest flipped", func(f *fixture) string {
			b := bytes.Clone(f.blobs[f.amd64.Digest])
			b[len(b)-1] = ' '
			os.WriteFile(filepath.Join(f.dir, "blobs", "sha256", f.amd64.Digest.Encoded()), b, 0o644)
			return "/v2/many/manifests/" + string(f.amd64.Digest)
		}, 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			// Damaged after the server started, so that nothing is cached yet for the
			// large blob, and the small blob is read again (cleared cache).
			srv, logs := serveFixture(t, f, &Options{CacheSize: 1})
			path := tt.damage(f)
			r := do(t, srv, "GET", path)
			if r.status != tt.status {
				t.Fatalf("GET %s = %d %s, want %d", path, r.status, r.body, tt.status)
			}
			if errorCode(r.body) == "" {
				t.Errorf("body %q is not an error envelope", r.body)
			}
			if !strings.Contains(logs.String(), "run ocipull verify "+f.dir) {
				t.Errorf("log does not name ocipull verify:\n%s", logs)
			}
		})
	}
}

func TestHandlerReload(t *testing.T) {
	f := newFixture(t)
	srv, logs := serveFixture(t, f, nil)
	if r := do(t, srv, "GET", "/v2/new/manifests/v9"); r.status != 404 {
		t.Fatalf("before: %d", r.status)
	}
	f.writeIndex(t, named(f.index, annImageName, "example.com/new:v9"))
	if r := do(t, srv, "GET", "/v2/new/manifests/v9"); r.status != 200 || !bytes.Equal(r.body, f.blobs[f.index.Digest]) {
		t.Fatalf("after index.json was replaced: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v2/many/manifests/latest"); r.status != 404 {
		t.Errorf("an image gone from index.json is still served: %d", r.status)
	}
	// A broken index.json keeps the last good one in service, and is logged once.
	os.WriteFile(filepath.Join(f.dir, "index.json.tmp"), []byte("{"), 0o644)
	os.Rename(filepath.Join(f.dir, "index.json.tmp"), filepath.Join(f.dir, "index.json"))
	for range 3 {
		if r := do(t, srv, "GET", "/v2/new/manifests/v9"); r.status != 200 {
			t.Fatalf("with a broken index.json: %d", r.status)
		}
	}
	if n := strings.Count(logs.String(), "cannot be read"); n != 1 {
		t.Errorf("the broken index.json was logged %d times, want once:\n%s", n, logs)
	}
}

func TestHandlerAccessLog(t *testing.T) {
	f := newFixture(t)
	srv, logs := serveFixture(t, f, nil)
	do(t, srv, "GET", "/v2/many/blobs/"+string(f.large.Digest))
	do(t, srv, "GET", "/v2/many/manifests/nope")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), logs)
	}
	for i, want := range []string{
		fmt.Sprintf("method=GET path=/v2/many/blobs/%s status=200 bytes=%d", f.large.Digest, f.large.Size),
		"method=GET path=/v2/many/manifests/nope status=404",
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "duration=") {
			t.Errorf("log line %q, want it to hold %q and a duration", lines[i], want)
		}
	}
}

func TestHandlerBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := ParseHtpasswd(strings.NewReader("# users\n\nalice:" + string(hash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	srv, _ := serveFixture(t, f, &Options{Users: users})
	auth := func(user, pass string) []string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return []string{"Authorization", req.Header.Get("Authorization")}
	}
	for _, tt := range []struct {
		name   string
		header []string
		status int
	}{
		{"anonymous", nil, 401},
		{"wrong password", auth("alice", "wrong"), 401},
		{"unknown user", auth("bob", "secret"), 401},
		{"right", auth("alice", "secret"), 200},
		{"right again (cached)", auth("alice", "secret"), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, "GET", "/v2/many/manifests/latest", tt.header...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status == 401 && (errorCode(r.body) != "UNAUTHORIZED" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ")) {
				t.Errorf("401 without the envelope or a Basic challenge: %s %v", r.body, r.header)
			}
		})
	}
}

func TestParseHtpasswdRefuses(t *testing.T) {
	for _, in := range []string{"", "# nobody\n", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "alice:$apr1$x$y\n", "no colon\n", "alice:$2y$31$OLcI8Y7n3DVz6yeJWiCNPuRaDFoNjbNvRHLUy5v.2U6Oy/w1oB4hy\n", ":$2y$04$OLcI8Y7n3DVz6yeJWiCNPuRaDFoNjbNvRHLUy5v.2U6Oy/w1oB4hy\n"} {
		if _, err := ParseHtpasswd(strings.NewReader(in)); err == nil {
			t.Errorf("ParseHtpasswd(%q) succeeded", in)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	notLayout := t.TempDir()
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(broken, "index.json"), []byte(`{"schemaVersion":1}`), 0o644)
	for _, dir := range []string{notLayout, broken, filepath.Join(notLayout, "absent")} {
		if h, err := New(dir, nil); err == nil {
			h.Close()
			t.Errorf("New(%s) succeeded", dir)
		}
	}
}

func TestDefaultRepository(t *testing.T) {
	for in, want := range map[string]string{
		"testdata/hello": "hello",
		"/x/My Images/":  "my-images",
		"/x/__":          "layout",
		"/x/a.b_c":       "a.b_c",
		"/x/--a--b--":    "a-b",
	} {
		if got := DefaultRepository(in); got != want {
			t.Errorf("DefaultRepository(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHandlerConcurrentReload serves requests while index.json is replaced over and
// over: every answer is whole and right for one version of the index or the other.
func TestHandlerConcurrentReload(t *testing.T) {
	f := newFixture(t)
	srv, _ := serveFixture(t, f, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, path := range []string{"/v2/many/manifests/latest", "/v2/many/blobs/" + string(f.small.Digest), "/v2/many/tags/list"} {
					resp, err := srv.Client().Get(srv.URL + path)
					if err != nil {
						errs <- err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 404 && errorCode(b) == "NAME_UNKNOWN":
					case resp.StatusCode == 200 && strings.Contains(path, "/manifests/") && !bytes.Equal(b, f.blobs[f.index.Digest]):
						errs <- "manifest bytes differ"
					case resp.StatusCode != 200:
						errs <- fmt.Sprintf("GET %s = %d %s", path, resp.StatusCode, b)
					}
				}
			}
		}()
	}
	for i := range 30 {
		if i%2 == 0 {
			f.writeIndex(t, named(f.index, annImageName, "example.com/other:latest"))
		} else {
			f.writeIndex(t, named(f.index, annImageName, "example.com/many:latest"))
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
