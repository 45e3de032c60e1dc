package ocistream

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// rangeRegistry serves one image (a config and one large layer) behind Basic auth,
// with the range quirks parallel downloads meet.
type rangeRegistry struct {
	manifest []byte
	blobs    map[digest.Digest][]byte
	layer    ocitypes.Descriptor

	mu          sync.Mutex
	ignoreRange int    // the next N range requests get the whole blob (200)
	badRange    int    // the next N range requests get a Content-Range that is off by one
	flipAt      int64  // a response covering this layer offset has it flipped (-1: none)
	redirect    string // blob GETs are redirected here, with ?sig=<n> appended
	sig         int

	ranges  atomic.Int64 // layer GETs with a Range header
	gets    atomic.Int64 // layer GETs
	served  atomic.Int64 // layer bytes sent
	sawAuth atomic.Bool  // a redirect target received an Authorization header
}

func newRangeRegistry(layerSize int) *rangeRegistry {
	layer := randomBytes(layerSize, 7)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	rg := &rangeRegistry{blobs: map[digest.Digest][]byte{}, flipAt: -1}
	desc := func(b []byte, mt string) ocitypes.Descriptor {
		rg.blobs[digestOf(b)] = b
		return ocitypes.Descriptor{MediaType: mt, Digest: digestOf(b), Size: int64(len(b))}
	}
	rg.layer = desc(layer, ocitypes.MediaTypeOCILayerGzip)
	rg.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest,
		"config": desc(config, ocitypes.MediaTypeOCIConfig), "layers": []ocitypes.Descriptor{rg.layer},
	})
	return rg
}

func (rg *rangeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if strings.Contains(r.URL.Path, "/manifests/") {
		w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
		w.Header().Set("Docker-Content-Digest", digestOf(rg.manifest).String())
		w.Write(rg.manifest)
		return
	}
	_, d, _ := strings.Cut(r.URL.Path, "/blobs/")
	rg.mu.Lock()
	redirect := rg.redirect
	if redirect != "" && digest.Digest(d) == rg.layer.Digest {
		rg.sig++
		http.Redirect(w, r, fmt.Sprintf("%s/storage/%s?sig=%d", redirect, d, rg.sig), http.StatusTemporaryRedirect)
		rg.mu.Unlock()
		return
	}
	rg.mu.Unlock()
	rg.serveBlob(w, r, digest.Digest(d))
}

// serveBlob answers a GET of blob d, Range included, with the armed quirks.
func (rg *rangeRegistry) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest) {
	b, ok := rg.blobs[d]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if d != rg.layer.Digest {
		w.Write(b)
		return
	}
	rg.gets.Add(1)
	rng := r.Header.Get("Range")
	rg.mu.Lock()
	ignore, bad := rg.ignoreRange > 0, rg.badRange > 0
	if rng != "" && ignore {
		rg.ignoreRange--
	}
	if rng != "" && bad {
		rg.badRange--
	}
	flipAt := rg.flipAt
	rg.mu.Unlock()
	start, end := int64(0), int64(len(b)-1)
	if rng != "" {
		rg.ranges.Add(1)
	}
	if rng != "" && !ignore {
		fmt.Sscanf(rng, "bytes=%d-%d", &start, &end)
		cr := fmt.Sprintf("bytes %d-%d/%d", start, end, len(b))
		if bad {
			cr = fmt.Sprintf("bytes %d-%d/%d", start+1, end, len(b))
		}
		w.Header().Set("Content-Range", cr)
		w.Header().Set("Content-Length", fmt.Sprint(end-start+1))
		w.WriteHeader(http.StatusPartialContent)
	}
	part := b[start : end+1]
	if flipAt >= start && flipAt <= end {
		part = bytes.Clone(part)
		part[flipAt-start] ^= 0xff
	}
	n, _ := w.Write(part)
	rg.served.Add(int64(n))
}

// storage is a redirect target: it serves the layer without credentials, and refuses
// signatures older than the newest after expireAfter requests with one signature.
func (rg *rangeRegistry) storage(expireAfter int) http.Handler {
	var mu sync.Mutex
	uses := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			rg.sawAuth.Store(true)
			http.Error(w, "only one auth mechanism allowed", http.StatusBadRequest)
			return
		}
		sig := r.URL.Query().Get("sig")
		mu.Lock()
		uses[sig]++
		expired := expireAfter > 0 && uses[sig] > expireAfter
		mu.Unlock()
		if expired {
			http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
			return
		}
		rg.serveBlob(w, r, digest.Digest(strings.TrimPrefix(r.URL.Path, "/storage/")))
	})
}

var testParallel = ParallelDownload{Connections: 4, ChunkSize: 64 << 10, Threshold: 64 << 10, FastStream: -1}

func newRangeClient(t *testing.T, srv *httptest.Server, more ...string) *Client {
	t.Helper()
	plain := append([]string{hostOf(srv)}, more...)
	return newTestClient(t, srv, WithPlainHTTP(plain...), WithParallelDownload(testParallel),
		WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "u", Password: "p"})))
}

// pullInto pulls the registry's image into dir, checking that progress never runs
// backwards.
func pullInto(ctx context.Context, t *testing.T, c *Client, srv *httptest.Server, dir string, onProgress func(ProgressEvent)) error {
	t.Helper()
	d, err := layout.OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	last := map[digest.Digest]int64{}
	opts := &PullOptions{Progress: func(e ProgressEvent) {
		if e.Kind == BlobProgress || e.Kind == BlobDone {
			if e.Offset < last[e.Descriptor.Digest] {
				t.Errorf("progress of %s went back from %d to %d", e.Descriptor.Digest, last[e.Descriptor.Digest], e.Offset)
			}
			last[e.Descriptor.Digest] = e.Offset
		}
		if onProgress != nil {
			onProgress(e)
		}
	}}
	_, err = c.Pull(ctx, hostOf(srv)+"/a/b:v1", d, opts)
	return err
}

func hasBlob(dir string, d ocitypes.Descriptor) bool {
	b, err := os.ReadFile(dir + "/blobs/" + string(d.Digest.Algorithm()) + "/" + d.Digest.Encoded())
	return err == nil && digestOf(b) == d.Digest
}

func TestPullParallel(t *testing.T) {
	const size = 1<<20 + 12345 // 17 chunks
	tests := []struct {
		name       string
		arm        func(rg *rangeRegistry)
		wantErr    error
		wantRanges int64 // at least
		refused    bool  // the host is remembered as not serving ranges
	}{
		{name: "ranges", wantRanges: 17},
		{name: "ignores range", arm: func(rg *rangeRegistry) { rg.ignoreRange = 1 }, refused: true},
		{name: "wrong content-range", arm: func(rg *rangeRegistry) { rg.badRange = 1 }, refused: true},
		{name: "corrupt chunk", arm: func(rg *rangeRegistry) { rg.flipAt = 5 * 64 << 10 }, wantErr: ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRangeRegistry(size)
			if tt.arm != nil {
				tt.arm(rg)
			}
			srv := httptest.NewServer(rg)
			defer srv.Close()
			c := newRangeClient(t, srv)
			dir := t.TempDir()
			err := pullInto(t.Context(), t, c, srv, dir, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pull() = %v, want %v", err, tt.wantErr)
			}
			if got := hasBlob(dir, rg.layer); got != (tt.wantErr == nil) {
				t.Errorf("layer committed = %v, want %v", got, tt.wantErr == nil)
			}
			if got := rg.ranges.Load(); got < tt.wantRanges {
				t.Errorf("%d range requests, want at least %d", got, tt.wantRanges)
			}
			if got := c.rangeHosts.refuses(hostOf(srv)); got != tt.refused {
				t.Errorf("host remembered as refusing ranges = %v, want %v", got, tt.refused)
			}
		})
	}
}

// TestPullParallelFirstChunk: the first chunk is requested with the rest of the blob;
// when it comes fast, the rest follows on that connection (one GET), else the other
// chunks are fetched in parallel.
func TestPullParallelFirstChunk(t *testing.T) {
	for _, tt := range []struct {
		name     string
		fast     int64
		chunk    int64
		wantGets func(int64) bool
	}{
		{"fast link", 1, 0, func(n int64) bool { return n == 1 }},
		{"slow link", 1 << 50, 0, func(n int64) bool { return n >= 16 }},
		// The first chunk is larger than the sample that times the link: its request
		// carries on to the chunk's end while the other chunks start. 5 MiB in chunks
		// of 2 MiB: the first request and two more.
		{"slow link, chunks past the sample", 1 << 50, 2 << 20, func(n int64) bool { return n == 3 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRangeRegistry(1 << 20)
			if tt.chunk > 0 {
				rg = newRangeRegistry(5 << 20)
			}
			srv := httptest.NewServer(rg)
			defer srv.Close()
			set := testParallel
			set.FastStream = tt.fast
			set.ChunkSize = max(set.ChunkSize, tt.chunk)
			c := newTestClient(t, srv, WithParallelDownload(set), WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "u", Password: "p"})))
			dir := t.TempDir()
			if err := pullInto(t.Context(), t, c, srv, dir, nil); err != nil {
				t.Fatalf("Pull() = %v", err)
			}
			if !hasBlob(dir, rg.layer) {
				t.Fatal("layer not committed")
			}
			if got := rg.gets.Load(); !tt.wantGets(got) {
				t.Errorf("%d GETs of the layer", got)
			}
		})
	}
}

// TestPullParallelResume: a pull canceled half way keeps the chunks it had; the next
// one fetches only the missing bytes.
func TestPullParallelResume(t *testing.T) {
	const size = 2 << 20
	rg := newRangeRegistry(size)
	srv := httptest.NewServer(rg)
	defer srv.Close()
	c := newRangeClient(t, srv)
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(t.Context())
	err := pullInto(ctx, t, c, srv, dir, func(e ProgressEvent) {
		if e.Descriptor.Digest == rg.layer.Digest && e.Offset >= size/2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull() = %v, want context.Canceled", err)
	}
	d, err := layout.OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.OpenBlob(t.Context(), rg.layer)
	if err != nil {
		t.Fatal(err)
	}
	var missing int64
	for _, n := range w.(BlobWriterAt).Missing() {
		missing += n
	}
	w.Close()
	d.Close()
	if missing == 0 || missing > size-size/2 {
		t.Fatalf("%d bytes missing after the canceled pull, want some and at most %d", missing, size-size/2)
	}

	rg.served.Store(0)
	if err := pullInto(t.Context(), t, c, srv, dir, nil); err != nil {
		t.Fatalf("second Pull() = %v", err)
	}
	if !hasBlob(dir, rg.layer) {
		t.Fatal("layer not committed")
	}
	if got := rg.served.Load(); got != missing {
		t.Errorf("the resumed pull fetched %d layer bytes, want the %d missing", got, missing)
	}
}

// TestPullParallelRedirect: the chunks go to the storage the registry redirects to,
// without the registry's credentials; an expired signature is renewed through the
// registry.
func TestPullParallelRedirect(t *testing.T) {
	rg := newRangeRegistry(1<<20 + 1)
	storage := httptest.NewServer(rg.storage(5))
	defer storage.Close()
	rg.redirect = storage.URL
	srv := httptest.NewServer(rg)
	defer srv.Close()
	c := newRangeClient(t, srv, hostOf(storage))
	dir := t.TempDir()
	if err := pullInto(t.Context(), t, c, srv, dir, nil); err != nil {
		t.Fatalf("Pull() = %v", err)
	}
	if !hasBlob(dir, rg.layer) {
		t.Fatal("layer not committed")
	}
	if rg.sawAuth.Load() {
		t.Error("the storage host received the registry's Authorization header")
	}
	rg.mu.Lock()
	sigs := rg.sig
	rg.mu.Unlock()
	// 17 chunks, 5 uses per signature: a handful of redirects, not one per chunk.
	if sigs < 2 || sigs > 8 {
		t.Errorf("the registry redirected %d times, want a few (once per expiry)", sigs)
	}
}

// memRanges is a RangeSource over bytes in memory, counting what it serves.
type memRanges struct {
	data   []byte
	served atomic.Int64
}

func (m *memRanges) Resolve(context.Context) (ocitypes.Descriptor, error) {
	return ocitypes.Descriptor{}, ErrUnsupported
}

func (m *memRanges) Fetch(context.Context, ocitypes.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.data)), nil
}

func (m *memRanges) FetchRange(ctx context.Context, d ocitypes.Descriptor, off, n int64) (io.ReadCloser, error) {
	m.served.Add(n)
	return io.NopCloser(bytes.NewReader(m.data[off : off+n])), nil
}

func TestFetchParallelFromAnySource(t *testing.T) {
	src := &memRanges{data: randomBytes(3<<20+7, 9)}
	desc := blobDesc(src.data)
	dir, err := layout.OpenDir(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	w, err := dir.OpenBlob(t.Context(), desc)
	if err != nil {
		t.Fatal(err)
	}
	var events []int64
	err = FetchParallel(t.Context(), src, desc, w.(BlobWriterAt), ParallelDownload{Connections: 3, ChunkSize: 100 << 10}, func(e ProgressEvent) {
		events = append(events, e.Offset)
	})
	if err != nil {
		t.Fatalf("FetchParallel() = %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if got := src.served.Load(); got != desc.Size {
		t.Errorf("served %d bytes, want %d", got, desc.Size)
	}
	for i := 1; i < len(events); i++ {
		if events[i] <= events[i-1] {
			t.Fatalf("progress offsets not increasing: %v", events)
		}
	}
	if len(events) == 0 {
		t.Error("no progress events")
	}
	if err := FetchParallel(t.Context(), src, desc, nil, ParallelDownload{ChunkSize: 10}, nil); err == nil {
		t.Error("FetchParallel accepted a 10-byte chunk size")
	}
}

// TestPullParallelOverHTTP2: from a server that speaks HTTP/2, the chunks of a
// parallel download still come over HTTP/1.1 connections of their own (a storage
// server caps each connection), while the other requests share an HTTP/2 connection.
func TestPullParallelOverHTTP2(t *testing.T) {
	rg := newRangeRegistry(1 << 20)
	var mu sync.Mutex
	chunkConns := map[string]bool{} // remote addresses of range requests
	protos := map[string]map[string]bool{"range": {}, "other": {}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "other"
		if r.Header.Get("Range") != "" {
			kind = "range"
		}
		mu.Lock()
		protos[kind][r.Proto] = true
		if kind == "range" {
			chunkConns[r.RemoteAddr] = true
		}
		mu.Unlock()
		rg.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := New(WithRootCAs(pool), WithParallelDownload(testParallel),
		WithCredentials(StaticCredentials(hostOf(srv), Credential{Username: "u", Password: "p"})))
	if err != nil {
		t.Fatal(err)
	}
	d, err := layout.OpenDir(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := c.Pull(t.Context(), hostOf(srv)+"/a/b:v1", d, nil); err != nil {
		t.Fatalf("Pull() = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !maps.Equal(protos["range"], map[string]bool{"HTTP/1.1": true}) || !maps.Equal(protos["other"], map[string]bool{"HTTP/2.0": true}) {
		t.Errorf("protocols: %v, want chunks over HTTP/1.1 and the rest over HTTP/2", protos)
	}
	if len(chunkConns) < 2 {
		t.Errorf("chunks came over %d connection(s), want one per chunk connection", len(chunkConns))
	}
}

// recordingWriter takes bytes in order and fails once it holds failAt bytes (0: never).
type recordingWriter struct {
	bytes.Buffer
	failAt int
}

var errRecordingFull = errors.New("recording writer full")

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.failAt > 0 && w.Len()+len(p) > w.failAt {
		n := w.failAt - w.Len()
		w.Buffer.Write(p[:n])
		return n, errRecordingFull
	}
	return w.Buffer.Write(p)
}

func TestOrderedWriter(t *testing.T) {
	const chunk, size = 1000, 4500
	data := randomBytes(size+1, 3) // one byte more, for the write past the end
	// writes is the order the pieces of 300 bytes reach the writer: each chunk's
	// pieces in order, the chunks interleaved.
	pieces := func(order ...int) [][2]int64 {
		var out [][2]int64
		for _, c := range order {
			for off := int64(c * chunk); off < min(int64(c+1)*chunk, size); off += 300 {
				out = append(out, [2]int64{off, min(off+300, int64(c+1)*chunk, size)})
			}
		}
		return out
	}
	tests := []struct {
		name    string
		writes  [][2]int64
		failAt  int
		wantErr error
		wantPos int64 // bytes the writer holds in order at the end
	}{
		{name: "in order", writes: pieces(0, 1, 2, 3, 4), wantPos: size},
		{name: "reversed", writes: pieces(4, 3, 2, 1, 0), wantPos: size},
		{name: "head last", writes: pieces(1, 3, 2, 4, 0), wantPos: size},
		{name: "gap", writes: pieces(0, 2, 3), wantPos: chunk},
		{name: "writer fails", writes: pieces(1, 0, 2, 3, 4), failAt: 1500, wantErr: errRecordingFull, wantPos: 1500},
		{name: "below the head", writes: append(pieces(0), [2]int64{0, 10}), wantErr: errOrderedRange, wantPos: chunk},
		{name: "past the end", writes: [][2]int64{{size - 10, size + 1}}, wantErr: errOrderedRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordingWriter{failAt: tt.failAt}
			o := newOrderedWriter(w, 0, size, chunk)
			var err error
			for _, p := range tt.writes {
				if _, err = o.WriteAt(data[p[0]:p[1]], p[0]); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteAt() = %v, want %v", err, tt.wantErr)
			}
			if got := int64(w.Len()); got != tt.wantPos || !bytes.Equal(w.Bytes(), data[:got]) {
				t.Errorf("writer holds %d bytes (in order: %v), want the first %d", got, bytes.Equal(w.Bytes(), data[:got]), tt.wantPos)
			}
			for off, n := range o.Missing() {
				if off != tt.wantPos || off+n != size {
					t.Errorf("Missing() = (%d, %d), want (%d, %d)", off, n, tt.wantPos, size-tt.wantPos)
				}
			}
			if got := o.complete() == nil; got != (tt.wantPos == size) {
				t.Errorf("complete() = %v at %d of %d bytes", o.complete(), tt.wantPos, size)
			}
		})
	}
}

// TestPullParallelOrdered: a destination that takes bytes only in order (a tar
// stream, an upload) also gets a large blob in parallel ranges, through the reorder
// window, and still refuses a corrupt chunk.
func TestPullParallelOrdered(t *testing.T) {
	const size = 1<<20 + 12345
	for _, dest := range []string{"tar", "push"} {
		for _, tt := range []struct {
			name    string
			arm     func(rg *rangeRegistry)
			wantErr error
		}{
			{name: "ranges"},
			{name: "ignores range", arm: func(rg *rangeRegistry) { rg.ignoreRange = 1 }},
			{name: "corrupt chunk", arm: func(rg *rangeRegistry) { rg.flipAt = 9 * 64 << 10 }, wantErr: ErrDigestMismatch},
		} {
			t.Run(dest+"/"+tt.name, func(t *testing.T) {
				rg := newRangeRegistry(size)
				if tt.arm != nil {
					tt.arm(rg)
				}
				srv := httptest.NewServer(rg)
				defer srv.Close()
				src, err := newRangeClient(t, srv).Repository(hostOf(srv) + "/a/b:v1")
				if err != nil {
					t.Fatal(err)
				}
				var dst Destination
				var held func() ([]byte, bool)
				switch dest {
				case "tar":
					var out bytes.Buffer
					tw := layout.NewTar(&out, nil)
					dst = tw
					held = func() ([]byte, bool) {
						// A stream cannot take bytes back: a failed blob fails the
						// archive, which gets no index (loaders refuse it).
						if err := tw.Close(); err != nil {
							return nil, false
						}
						if _, ok := tarFile(out.Bytes(), "index.json"); !ok {
							return nil, false
						}
						return tarFile(out.Bytes(), "blobs/sha256/"+rg.layer.Digest.Encoded())
					}
				case "push":
					f := newFakePush(t, nil)
					dst = f.repo(t, f.client(t), "c:v1")
					held = func() ([]byte, bool) { return f.blob(rg.layer.Digest) }
				}
				_, err = Copy(t.Context(), src, dst, nil)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Copy() = %v, want %v", err, tt.wantErr)
				}
				b, ok := held()
				if ok != (tt.wantErr == nil) || ok && digestOf(b) != rg.layer.Digest {
					t.Errorf("layer held = %v, want %v", ok, tt.wantErr == nil)
				}
				if tt.arm == nil && rg.ranges.Load() < 4 {
					t.Errorf("%d range requests, want the blob in chunks", rg.ranges.Load())
				}
			})
		}
	}
}

// tarFile returns the content of the file named name in the tar archive b.
func tarFile(b []byte, name string) ([]byte, bool) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, false
		}
		if h.Name == name {
			body, err := io.ReadAll(tr)
			return body, err == nil
		}
	}
}
