package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ref"
)

// countingTransport is a base transport that logs every request ("METHOD path") and
// counts the body bytes it sends to the registry API (token requests left out).
type countingTransport struct {
	next http.RoundTripper

	mu   sync.Mutex
	log  []string
	sent atomic.Int64
}

func newCountingTransport() *countingTransport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return &countingTransport{next: t}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.log = append(t.log, req.Method+" "+req.URL.Path)
	t.mu.Unlock()
	if req.Body != nil && req.Body != http.NoBody && strings.HasPrefix(req.URL.Path, "/v2/") {
		req = req.Clone(req.Context())
		req.Body = countingBody{req.Body, &t.sent}
	}
	return t.next.RoundTrip(req)
}

// reset clears the log and the byte count.
func (t *countingTransport) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log = nil
	t.sent.Store(0)
}

// requests returns the requests logged whose method is one of methods (all when none).
func (t *countingTransport) requests(methods ...string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range t.log {
		m, _, _ := strings.Cut(l, " ")
		if len(methods) == 0 || slices.Contains(methods, m) {
			out = append(out, l)
		}
	}
	return out
}

// pushClient is a client for reg over plain HTTP through a counting transport.
func pushClient(t testing.TB, reg *testRegistry, cred bool) (*ocistream.Client, *countingTransport) {
	t.Helper()
	ct := newCountingTransport()
	hosts := []string{reg.Host}
	if reg.Issuer != nil {
		hosts = append(hosts, hostOfURL(reg.Issuer.Realm))
	}
	opts := []ocistream.Option{
		ocistream.WithTransport(ct),
		ocistream.WithPlainHTTP(hosts...),
		ocistream.WithRetryPolicy(ocistream.RetryPolicy{MaxRetries: 2, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetryAfter: time.Second}),
	}
	if cred {
		opts = append(opts, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, ocistream.Credential{Username: testUser, Password: testPassword})))
	}
	c, err := ocistream.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, ct
}

// uploadBlob sends data as d through the Destination methods, in 256 KiB writes as
// the copy pipeline does. An existing blob is not an error.
func uploadBlob(ctx context.Context, dst ocistream.Destination, d ocispec.Descriptor, data []byte) error {
	w, err := dst.OpenBlob(ctx, d)
	if errors.Is(err, ocistream.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 256<<10)
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return w.Commit()
}

// pushTestImage pushes img's blobs, then its manifest, through dst; from, when set,
// is a repository of the same registry to mount the blobs from.
func pushTestImage(t *testing.T, dst *ocistream.Repository, from *ocistream.Repository, img testImage) {
	t.Helper()
	for _, d := range img.Descriptors() {
		if from != nil {
			if err := dst.Mount(t.Context(), d, from); errors.Is(err, ocistream.ErrAlreadyExists) {
				continue
			} else if err != nil {
				t.Logf("mount %s: %v", d.Digest, err)
			}
		}
		if err := uploadBlob(t.Context(), dst, d, img.Blobs()[d.Digest]); err != nil {
			t.Fatal(err)
		}
	}
	if err := uploadBlob(t.Context(), dst, img.ManifestDesc, img.Manifest); err != nil {
		t.Fatal(err)
	}
}

// checkPulled pulls reference's manifest and every blob of img back and compares bytes.
func checkPulled(t *testing.T, c *ocistream.Client, reference string, manifest []byte, imgs ...testImage) {
	t.Helper()
	_, body, err := c.Manifest(t.Context(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, manifest) {
		t.Fatalf("manifest of %s differs from what was pushed", reference)
	}
	r, _ := ref.Parse(reference)
	for _, img := range imgs {
		for _, d := range img.Descriptors() {
			rc, err := c.Blob(t.Context(), r.Name(), d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, img.Blobs()[d.Digest]) {
				t.Fatalf("blob %s: %d bytes back (%v)", d.Digest, len(got), err)
			}
		}
	}
}

// TestPushImage pushes an image and a multi-platform index through the Destination
// methods, pulls them back, and pushes them again: the rerun uploads nothing.
func TestPushImage(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	c, ct := pushClient(t, reg, false)
	img := makeImage(11, []int64{2000, 3 << 20}, amd64)
	ix := makeIndex(12, []int64{1500, 2 << 20}, amd64, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})

	push := func() {
		dst, err := c.Repository(reg.Ref("dst/img", "v1"))
		if err != nil {
			t.Fatal(err)
		}
		pushTestImage(t, dst, nil, img)
		if err := dst.Tag(t.Context(), dst.Reference(), img.ManifestDesc); err != nil {
			t.Fatal(err)
		}
		dst, _ = c.Repository(reg.Ref("dst/index", "v1"))
		for _, child := range ix.Images { // children before their parent
			pushTestImage(t, dst, nil, child)
		}
		if err := uploadBlob(t.Context(), dst, ix.Desc, ix.Index); err != nil {
			t.Fatal(err)
		}
		if err := dst.Tag(t.Context(), dst.Reference(), ix.Desc); err != nil {
			t.Fatal(err)
		}
	}
	push()
	checkPulled(t, c, reg.Ref("dst/img", "v1"), img.Manifest, img)
	checkPulled(t, c, reg.Ref("dst/index", "v1"), ix.Index, ix.Images...)
	large := 0
	for _, im := range append([]testImage{img}, ix.Images...) {
		for _, d := range im.Descriptors() {
			if d.Size > 1<<20 {
				large++
			}
		}
	}
	if got := ct.requests("PATCH"); len(got) != large {
		t.Errorf("PATCH requests %v: want %d, one per blob over 1 MiB", got, large)
	}

	ct.reset()
	push()
	if got := ct.requests("POST", "PATCH", "PUT", "GET"); len(got) != 0 || ct.sent.Load() != 0 {
		t.Errorf("the rerun sent %d bytes in %v", ct.sent.Load(), got)
	}
	dst, _ := c.Repository(reg.Ref("dst/index", "v1"))
	for _, d := range append(append(ix.Images[0].Descriptors(), ix.Images[0].ManifestDesc), ix.Desc) {
		if ok, err := dst.Exists(t.Context(), d); !ok || err != nil {
			t.Errorf("Exists(%s) = %v, %v", d.Digest, ok, err)
		}
	}
	if ok, err := dst.Exists(t.Context(), ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromString("absent"), Size: 6}); ok || err != nil {
		t.Errorf("Exists(absent) = %v, %v", ok, err)
	}
}

// TestPushMount copies an image between two repositories of one registry: every blob
// is mounted, no blob byte is uploaded.
func TestPushMount(t *testing.T) {
	for _, mode := range []authMode{authAnonymous, authToken} {
		t.Run(mode.String(), func(t *testing.T) {
			reg := newRegistry(t, registryOptions{Auth: mode})
			img := makeImage(21, []int64{4000, 2 << 20}, amd64)
			pushImage(t, reg, "team/src", "v1", img)
			c, ct := pushClient(t, reg, true)
			src, _ := c.Repository(reg.Ref("team/src", "v1"))
			dst, _ := c.Repository(reg.Ref("team/dst", "v1"))
			pushTestImage(t, dst, src, img)
			if err := dst.Tag(t.Context(), dst.Reference(), img.ManifestDesc); err != nil {
				t.Fatal(err)
			}
			if sent := ct.sent.Load(); sent != 2*int64(len(img.Manifest)) {
				t.Errorf("sent %d body bytes, want only the manifest twice (%d): %v", sent, 2*len(img.Manifest), ct.requests())
			}
			if got := ct.requests("PATCH"); len(got) != 0 {
				t.Errorf("blob uploads: %v", got)
			}
			checkPulled(t, c, reg.Ref("team/dst", "v1"), img.Manifest, img)
			if mode == authToken {
				want := []string{"repository:team/dst:pull,push", "repository:team/src:pull"}
				for _, s := range reg.Issuer.RequestedScopes() {
					if !slices.Contains(want, s) {
						t.Errorf("scope %q asked; want only %v", s, want)
					}
				}
				if got := reg.Issuer.RequestedScopes(); !slices.Contains(got, want[0]) || !slices.Contains(got, want[1]) {
					t.Errorf("scopes asked %v, want %v", got, want)
				}
			}
		})
	}
}

// TestPushAuth pushes with token and htpasswd authentication, and checks the one-line
// refusal without credentials.
func TestPushAuth(t *testing.T) {
	for _, mode := range []authMode{authToken, authHtpasswd} {
		t.Run(mode.String(), func(t *testing.T) {
			reg := newRegistry(t, registryOptions{Auth: mode})
			img := makeImage(31, []int64{1000, 1<<20 + 5}, amd64)
			c, _ := pushClient(t, reg, true)
			dst, _ := c.Repository(reg.Ref("x", "v1"))
			pushTestImage(t, dst, nil, img)
			if err := dst.Tag(t.Context(), dst.Reference(), img.ManifestDesc); err != nil {
				t.Fatal(err)
			}
			checkPulled(t, c, reg.Ref("x", "v1"), img.Manifest, img)
			// An upload abandoned half way is cancelled with the token at hand: no
			// delete scope is asked for.
			big := makeBlob(32, 2<<20)
			w, err := dst.OpenBlob(t.Context(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(big), Size: int64(len(big))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(big[:1<<20]); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if mode == authToken {
				for _, s := range reg.Issuer.RequestedScopes() {
					if s != "repository:x:pull,push" && s != "repository:x:pull" {
						t.Errorf("scope %q asked", s)
					}
				}
			}

			anon, _ := pushClient(t, reg, false)
			dst, _ = anon.Repository(reg.Ref("x", "v2"))
			data := []byte("not in the registry")
			err = uploadBlob(t.Context(), dst, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}, data)
			want := "push to " + reg.Host + "/x: unauthorized (scope repository:x:pull,push)"
			if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") || !errors.Is(err, ocistream.ErrUnauthorized) {
				t.Fatalf("anonymous push: %v, want %q", err, want)
			}
			t.Log(err)
			var re *ocistream.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("%v does not unwrap to a *ResponseError", err)
			}
		})
	}
}

// newPushProxy starts a proxy in front of reg that lets intercept answer a request
// first (it returns true when it did), and returns reg as seen through the proxy.
func newPushProxy(t *testing.T, reg *testRegistry, intercept func(http.ResponseWriter, *http.Request) bool) *testRegistry {
	target := mustURL(t, reg.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		ErrorLog: discardLogger,
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	srv.Config.ErrorLog = discardLogger
	srv.Start()
	t.Cleanup(srv.Close)
	proxied := *reg
	proxied.Host = srv.Listener.Addr().String()
	proxied.URL = srv.URL
	return &proxied
}

// TestPushDrop cuts the connection in the middle of a streamed upload: the blob fails
// with an error saying so, nothing is committed, and uploading it again succeeds.
func TestPushDrop(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	var armed atomic.Int32
	armed.Store(1)
	proxied := newPushProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPatch || armed.Add(-1) < 0 {
			return false
		}
		_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return true
	})
	c, _ := pushClient(t, proxied, false)
	data := makeBlob(41, 5<<20)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	dst, _ := c.Repository(proxied.Ref("dropped", "v1"))

	err := uploadBlob(t.Context(), dst, d, data)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "connection lost after") {
		t.Fatalf("dropped upload: %v, want a lost connection", err)
	}
	t.Log(err)
	if ok, err := dst.Exists(t.Context(), d); ok || err != nil {
		t.Fatalf("after the drop Exists = %v, %v", ok, err)
	}
	if err := uploadBlob(t.Context(), dst, d, data); err != nil {
		t.Fatalf("retry: %v", err)
	}
	checkBlob(t, c, proxied.Host+"/dropped", d, data)
}

func checkBlob(t *testing.T, c *ocistream.Client, repo string, d ocispec.Descriptor, data []byte) {
	t.Helper()
	rc, err := c.Blob(t.Context(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob back: %d bytes, %v", len(got), err)
	}
}

// TestPushFallback puts the reference registry behind a proxy that refuses the
// streaming PATCH as a real registry does: the first attempt fails, the next one uses
// the form the registry takes (chunks with Content-Range and the last in the PUT, or
// one streaming PUT) and the reference registry accepts it.
func TestPushFallback(t *testing.T) {
	const limit = 4 << 20
	for _, tc := range []struct {
		name   string
		refuse func(*http.Request) int // the status to answer instead of forwarding, 0 to forward
		want   string                  // the methods that carry the blob on the second attempt
	}{
		{"request cap (GHCR)", func(r *http.Request) int {
			if r.ContentLength > limit && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
				return http.StatusRequestedRangeNotSatisfiable
			}
			return 0
		}, "PATCH PATCH PUT"},
		{"no PATCH (monolithic only)", func(r *http.Request) int {
			if r.Method == http.MethodPatch {
				return http.StatusMethodNotAllowed
			}
			return 0
		}, "PUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, registryOptions{})
			proxied := newPushProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
				if code := tc.refuse(r); code != 0 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(code)
					io.WriteString(w, `{"errors":[{"code":"UNSUPPORTED","message":"refused by the proxy"}]}`)
					return true
				}
				return false
			})
			c, ct := pushClient(t, proxied, false)
			data := makeBlob(51, 9<<20+77)
			d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
			dst, _ := c.Repository(proxied.Ref("fallback", "v1"))
			err := uploadBlob(t.Context(), dst, d, data)
			if err == nil {
				t.Fatal("the first attempt succeeded")
			}
			t.Log(err)
			ct.reset()
			if err := uploadBlob(t.Context(), dst, d, data); err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			var carried []string
			for _, l := range ct.requests("PATCH", "PUT") {
				m, _, _ := strings.Cut(l, " ")
				carried = append(carried, m)
			}
			if got := strings.Join(carried, " "); got != tc.want {
				t.Errorf("second attempt sent %s, want %s", got, tc.want)
			}
			checkBlob(t, c, proxied.Host+"/fallback", d, data)
		})
	}
}

// genReader yields n pseudo-random bytes from seed without holding them.
type genReader struct {
	r *rand.ChaCha8
	n int64
}

func newGenReader(seed uint64, n int64) *genReader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return &genReader{r: rand.NewChaCha8(s), n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	n, _ := g.r.Read(p)
	g.n -= int64(n)
	return n, nil
}

// heapPeak samples the live heap every millisecond until stop is called, and returns
// the highest value seen.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak
	}
}

// BenchmarkPushStream streams a 64 MiB blob to the in-process registry (filesystem
// storage) through the Destination methods, in 256 KiB writes. peak-heap-MiB is the
// highest live heap of the process during the run, the registry's included.
func BenchmarkPushStream(b *testing.B) {
	const size = 64 << 20
	reg := newRegistry(b, registryOptions{Filesystem: true})
	c, _ := pushClient(b, reg, false)
	dst, _ := c.Repository(reg.Ref("bench", "v1"))
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	var peak uint64
	for i := range b.N {
		b.StopTimer()
		h := digest.Canonical.Digester()
		if _, err := io.CopyBuffer(h.Hash(), newGenReader(uint64(i), size), buf); err != nil {
			b.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: h.Digest(), Size: size}
		stop := heapPeak()
		b.StartTimer()
		w, err := dst.OpenBlob(b.Context(), d)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{w}, newGenReader(uint64(i), size), buf); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		w.Close()
		b.StopTimer()
		peak = max(peak, stop())
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
