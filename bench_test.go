package ocistream

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// The benchmarks of the hot paths of a pull: hashing, the verifying blob reader against
// a bare HTTP download, chunked reads, and a whole Pull into a layout directory. They run
// against an in-process registry on loopback (httptest), so the server's CPU and
// allocations share the process with the client's: compare benchmarks with each other,
// not with a remote registry. bench/ at the repository root compares the CLI with other
// tools on a real registry.
//
//	go test -run '^$' -bench . -benchtime 10x
//	OCISTREAM_BENCH_HEAP=1 go test -run '^$' -bench PullPeakHeap

// benchBlockSize is the period of a generated blob: a random block of this size,
// repeated, with each repetition stamped with the blob's id and its own index.
const benchBlockSize = 1 << 20

// benchBlock is the random block every generated blob repeats.
var benchBlock = sync.OnceValue(func() []byte {
	b := make([]byte, benchBlockSize)
	_, _ = rand.NewChaCha8([32]byte{'o', 'c', 'i', 's', 't', 'r', 'e', 'a', 'm'}).Read(b)
	return b
})

// benchContent is a blob the bench registry serves.
type benchContent interface {
	size() int64
	// writeRange writes bytes [start, end) of the blob to w.
	writeRange(w io.Writer, start, end int64) error
}

// benchGenerated is a blob of any size made on the fly, never held in memory: the
// shared random block repeated, the first 16 bytes of each repetition replaced by the
// blob id and the repetition's index, so that blobs and blocks all differ.
type benchGenerated struct {
	id uint64
	n  int64
}

func (g benchGenerated) size() int64 { return g.n }

func (g benchGenerated) writeRange(w io.Writer, start, end int64) error {
	block := benchBlock()
	var stamp [16]byte
	binary.BigEndian.PutUint64(stamp[:8], g.id)
	for off := start; off < end; {
		in := off % benchBlockSize
		stop := min(end-off, benchBlockSize-in) + in // within this block
		if in < int64(len(stamp)) {
			binary.BigEndian.PutUint64(stamp[8:], uint64(off/benchBlockSize))
			head := min(stop, int64(len(stamp)))
			if _, err := w.Write(stamp[in:head]); err != nil {
				return err
			}
			off += head - in
			in = head
		}
		if in < stop {
			if _, err := w.Write(block[in:stop]); err != nil {
				return err
			}
			off += stop - in
		}
	}
	return nil
}

// benchBytes is a small blob held in memory (a config, a manifest).
type benchBytes []byte

func (b benchBytes) size() int64 { return int64(len(b)) }

func (b benchBytes) writeRange(w io.Writer, start, end int64) error {
	_, err := w.Write(b[start:end])
	return err
}

// benchDescriptor hashes c and returns its descriptor.
func benchDescriptor(c benchContent, mediaType string) ocitypes.Descriptor {
	h := sha256.New()
	if err := c.writeRange(h, 0, c.size()); err != nil {
		panic(err) // hash.Hash never fails
	}
	return ocitypes.Descriptor{MediaType: mediaType, Digest: digest.NewDigest(digest.SHA256, h), Size: c.size()}
}

// benchRegistry is a read-only registry of one repository: GET /v2/, GET and HEAD of
// manifests by tag or digest, GET of blobs with single byte ranges.
type benchRegistry struct {
	manifests map[string]benchManifest // by tag and by digest
	blobs     map[digest.Digest]benchContent
}

type benchManifest struct {
	mediaType string
	body      []byte
	digest    digest.Digest
}

func (g *benchRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(p, "/manifests/"):
		m, ok := g.manifests[p[strings.LastIndex(p, "/")+1:]]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", m.digest.String())
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(m.body)
		}
	case strings.Contains(p, "/blobs/"):
		dg := digest.Digest(p[strings.LastIndex(p, "/")+1:])
		c, ok := g.blobs[dg]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		start, end, status := int64(0), c.size(), http.StatusOK
		if rng := r.Header.Get("Range"); rng != "" {
			var ok bool
			if start, end, ok = benchParseRange(rng, c.size()); !ok {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, c.size()))
			status = http.StatusPartialContent
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
		w.Header().Set("Docker-Content-Digest", dg.String())
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_ = c.writeRange(w, start, end)
		}
	default:
		http.NotFound(w, r)
	}
}

// benchParseRange parses "bytes=a-b" or "bytes=a-" into [start, end).
func benchParseRange(v string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < start {
			return 0, 0, false
		}
		end = min(last+1, size)
	}
	return start, end, true
}

// benchSetup is a bench registry serving one image, and a client for it.
type benchSetup struct {
	client *Client
	repo   string // host:port/bench/img
	ref    string // repo:latest
	layers []ocitypes.Descriptor
	total  int64 // bytes of config and layers
}

// newBenchSetup starts a bench registry with an image of layers generated blobs of
// layerSize bytes each, tagged latest.
func newBenchSetup(b *testing.B, layers int, layerSize int64) *benchSetup {
	b.Helper()
	g := &benchRegistry{manifests: map[string]benchManifest{}, blobs: map[digest.Digest]benchContent{}}
	s := &benchSetup{}
	var diffIDs []digest.Digest
	for i := range layers {
		c := benchGenerated{id: uint64(i + 1), n: layerSize}
		d := benchDescriptor(c, ocitypes.MediaTypeOCILayerGzip)
		g.blobs[d.Digest] = c
		s.layers = append(s.layers, d)
		diffIDs = append(diffIDs, d.Digest)
		s.total += d.Size
	}
	cfg, err := json.Marshal(ocitypes.Image{
		Platform: ocitypes.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		b.Fatal(err)
	}
	cfgDesc := benchDescriptor(benchBytes(cfg), ocitypes.MediaTypeOCIConfig)
	g.blobs[cfgDesc.Digest] = benchBytes(cfg)
	s.total += cfgDesc.Size
	body, err := json.Marshal(ocitypes.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocitypes.MediaTypeOCIManifest,
		Config:    cfgDesc,
		Layers:    s.layers,
	})
	if err != nil {
		b.Fatal(err)
	}
	m := benchManifest{mediaType: ocitypes.MediaTypeOCIManifest, body: body, digest: digest.FromBytes(body)}
	g.manifests["latest"] = m
	g.manifests[m.digest.String()] = m

	srv := httptest.NewServer(g)
	b.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	s.client, err = New(WithPlainHTTP(host))
	if err != nil {
		b.Fatal(err)
	}
	s.repo = host + "/bench/img"
	s.ref = s.repo + ":latest"
	return s
}

// benchSink keeps results alive so that the compiler cannot drop the work.
var benchSink []byte

// BenchmarkSHA256Raw hashes a 64 MiB buffer in 1 MiB strides: the floor of what
// verifying a blob costs.
func BenchmarkSHA256Raw(b *testing.B) {
	buf := make([]byte, 64<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.New()
		for off := 0; off < len(buf); off += 1 << 20 {
			h.Write(buf[off : off+1<<20])
		}
		benchSink = h.Sum(benchSink[:0])
	}
}

// BenchmarkVerifyingReader reads a 64 MiB blob through Client.Blob (range reader,
// size and digest checks) into a 1 MiB buffer; compare with BenchmarkRawHTTPDownload.
func BenchmarkVerifyingReader(b *testing.B) {
	s := newBenchSetup(b, 1, 64<<20)
	d := s.layers[0]
	buf := make([]byte, 1<<20)
	b.SetBytes(d.Size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.client.Blob(b.Context(), s.repo, d)
		if err != nil {
			b.Fatal(err)
		}
		n, err := benchDrain(r, buf)
		r.Close()
		if err != nil || n != d.Size {
			b.Fatalf("read %d of %d bytes: %v", n, d.Size, err)
		}
	}
}

// BenchmarkRawHTTPDownload reads the same 64 MiB blob with a plain GET over the
// client's base transport, with no verification: the cost of the transport alone.
func BenchmarkRawHTTPDownload(b *testing.B) {
	s := newBenchSetup(b, 1, 64<<20)
	d := s.layers[0]
	hc := &http.Client{Transport: s.client.base}
	url := "http://" + strings.Replace(s.repo, "/", "/v2/", 1) + "/blobs/" + d.Digest.String()
	buf := make([]byte, 1<<20)
	b.SetBytes(d.Size)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := benchDrain(resp.Body, buf)
		resp.Body.Close()
		if err != nil || n != d.Size || resp.StatusCode != http.StatusOK {
			b.Fatalf("read %d of %d bytes (%s): %v", n, d.Size, resp.Status, err)
		}
	}
}

// BenchmarkBlobChunks reads a 64 MiB blob as four 16 MiB chunks (one Range request
// each), hashed by the iterator.
func BenchmarkBlobChunks(b *testing.B) {
	s := newBenchSetup(b, 1, 64<<20)
	d := s.layers[0]
	buf := make([]byte, 1<<20)
	b.SetBytes(d.Size)
	b.ReportAllocs()
	for b.Loop() {
		var total int64
		for c, err := range s.client.BlobChunks(b.Context(), s.repo, d, 16<<20) {
			if err != nil {
				b.Fatal(err)
			}
			n, err := benchDrain(c.Body, buf)
			if err != nil {
				b.Fatal(err)
			}
			total += n
		}
		if total != d.Size {
			b.Fatalf("chunks hold %d bytes, want %d", total, d.Size)
		}
	}
}

// BenchmarkPullDir pulls an image of 4 × 16 MiB layers into a fresh layout.Dir, with
// the default fsync of every blob and without it.
func BenchmarkPullDir(b *testing.B) {
	s := newBenchSetup(b, 4, 16<<20)
	for _, sync := range []bool{true, false} {
		b.Run("sync="+strconv.FormatBool(sync), func(b *testing.B) {
			root := b.TempDir()
			b.SetBytes(s.total)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(root, strconv.Itoa(i))
				d, err := layout.OpenDir(dir, &layout.DirOptions{NoSync: !sync})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.client.Pull(b.Context(), s.ref, d, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPullPeakHeap pulls an image of 4 × 256 MiB layers (1 GiB, generated as
// served, never held) into a layout.Dir (no
// fsync) while sampling the heap in use every 5 ms, and reports the largest sample
// (peak-heap-MiB) and its growth over the heap before the pull (pull-heap-MiB). The
// in-process registry's own buffers count too. It runs only when OCISTREAM_BENCH_HEAP
// is set, as it writes 1 GiB per iteration.
func BenchmarkPullPeakHeap(b *testing.B) {
	if os.Getenv("OCISTREAM_BENCH_HEAP") == "" {
		b.Skip("set OCISTREAM_BENCH_HEAP=1 to measure the peak heap of a 1 GiB pull")
	}
	s := newBenchSetup(b, 4, 256<<20)
	root := b.TempDir()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.SetBytes(s.total)
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(root, strconv.Itoa(i))
		d, err := layout.OpenDir(dir, &layout.DirOptions{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.client.Pull(b.Context(), s.ref, d, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak.Load())/1024/1024, "peak-heap-MiB")
	b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/1024/1024, "pull-heap-MiB")
}

// benchDrain reads r to its end through buf and returns how many bytes it read.
func benchDrain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
