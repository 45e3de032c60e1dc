package ocistream

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// The benchmarks of the hot paths of a pull: hashing, the verifying blob reader against
// a bare HTTP download, chunked reads, and a whole Pull into a layout directory. They run
// against an in-process fake registry on loopback (internal/fakeregistry), so the
// server's CPU and allocations share the process with the client's: compare benchmarks
// with each other, not with a remote registry. bench/ at the repository root compares the CLI with other
// tools on a real registry.
//
//	go test -run '^$' -bench . -benchtime 10x
//	OCISTREAM_BENCH_HEAP=1 go test -run '^$' -bench PullPeakHeap

// benchSetup is a fake registry serving one image of generated layers, and a client
// for it.
type benchSetup struct {
	client *Client
	repo   string // host:port/bench/img
	ref    string // repo:latest
	layers []ocitypes.Descriptor
	total  int64 // bytes of config and layers
}

// newBenchSetup starts a fake registry with an image of layers generated blobs of
// layerSize bytes each (made as they are served, never held), tagged latest.
func newBenchSetup(b *testing.B, layers int, layerSize int64) *benchSetup {
	b.Helper()
	reg := fakeregistry.Start(b)
	var contents []fakeregistry.Content
	for i := range layers {
		contents = append(contents, fakeregistry.Generated(uint64(i+1), layerSize))
	}
	img := reg.PushImage("bench/img", "latest", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, contents...)
	s := &benchSetup{layers: img.Layers, total: img.Config.Size}
	for _, l := range img.Layers {
		s.total += l.Size
	}
	var err error
	s.client, err = New(WithPlainHTTP(reg.Host()))
	if err != nil {
		b.Fatal(err)
	}
	s.repo = reg.Host() + "/bench/img"
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
