package ocistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/ocitypes"
)

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// blobServer serves one blob with Range support and injectable faults.
type blobServer struct {
	blob []byte
	mu   sync.Mutex
	// dropAt, when >0, cuts the connection after that many body bytes, for the next
	// drops responses.
	dropAt      int
	drops       int
	ignoreRange bool
	badRange    bool
	flip        int // >=0: flip this byte of the body (default -1)
	stallFor    time.Duration
	stalls      int
	requests    atomic.Int64
	ranges      []string
}

func newBlobServer(blob []byte) *blobServer { return &blobServer{blob: blob, flip: -1} }

func (s *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	rng := r.Header.Get("Range")
	s.ranges = append(s.ranges, rng)
	drop := 0
	if s.drops > 0 {
		drop = s.dropAt
		s.drops--
	}
	stall := time.Duration(0)
	if s.stalls > 0 {
		stall = s.stallFor
		s.stalls--
	}
	ignore, bad, flip := s.ignoreRange, s.badRange, s.flip
	s.mu.Unlock()

	if r.Header.Get("Accept-Encoding") != "identity" {
		http.Error(w, "blob requests must ask for identity encoding", http.StatusBadRequest)
		return
	}
	body := s.blob
	if flip >= 0 {
		body = bytes.Clone(body)
		body[flip] ^= 0xff
	}
	start, end := 0, len(body)-1
	status := http.StatusOK
	if rng != "" && !ignore {
		var err error
		a, b, _ := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
		if start, err = strconv.Atoi(a); err != nil {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if b != "" {
			end, _ = strconv.Atoi(b)
		}
		status = http.StatusPartialContent
		cr := fmt.Sprintf("bytes %d-%d/%d", start, end, len(body))
		if bad {
			cr = fmt.Sprintf("bytes %d-%d/%d", start+1, end, len(body))
		}
		w.Header().Set("Content-Range", cr)
	}
	part := body[start : end+1]
	w.Header().Set("Content-Length", strconv.Itoa(len(part)))
	w.WriteHeader(status)
	if stall > 0 {
		w.Write(part[:min(len(part), 10)])
		w.(http.Flusher).Flush()
		select {
		case <-time.After(stall):
		case <-r.Context().Done():
		}
		return
	}
	if drop > 0 && drop < len(part) {
		w.Write(part[:drop])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Write(part)
}

func blobDesc(b []byte) ocitypes.Descriptor {
	return ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCILayerGzip, Digest: digestOf(b), Size: int64(len(b))}
}

func readBlob(t *testing.T, c *Client, repo string, d ocitypes.Descriptor) ([]byte, error) {
	t.Helper()
	rc, err := c.Blob(t.Context(), repo, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestBlobFaults(t *testing.T) {
	blob := randomBytes(300_000, 1)
	tests := []struct {
		name      string
		setup     func(s *blobServer)
		opts      []Option
		want      error // nil: the blob reads back whole and verified
		wantRange bool  // a Range request was made
	}{
		{name: "clean"},
		{name: "dropped three times", setup: func(s *blobServer) { s.dropAt, s.drops = 70_000, 3 }, wantRange: true},
		{name: "dropped and range ignored", setup: func(s *blobServer) { s.dropAt, s.drops, s.ignoreRange = 100_000, 2, true }, wantRange: true},
		{name: "wrong content-range", setup: func(s *blobServer) { s.dropAt, s.drops, s.badRange = 1000, 1, true }, want: errors.New("content-range")},
		{name: "flipped byte", setup: func(s *blobServer) { s.flip = 12345 }, want: ErrDigestMismatch},
		{name: "always dropped", setup: func(s *blobServer) { s.dropAt, s.drops = 1, 1000 }, opts: []Option{WithMaxResumes(5)}, want: io.ErrUnexpectedEOF},
		{name: "stalled", setup: func(s *blobServer) { s.stallFor, s.stalls = 10*time.Second, 1 }, opts: []Option{WithReadTimeout(200 * time.Millisecond)}, wantRange: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBlobServer(blob)
			if tt.setup != nil {
				tt.setup(s)
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := newTestClient(t, srv, tt.opts...)
			got, err := readBlob(t, c, hostOf(srv)+"/a/b", blobDesc(blob))
			switch {
			case tt.want == nil:
				if err != nil || !bytes.Equal(got, blob) {
					t.Fatalf("read %d bytes, err %v; want the blob", len(got), err)
				}
			case tt.want.Error() == "content-range":
				if err == nil || !strings.Contains(err.Error(), "Content-Range") {
					t.Fatalf("err = %v, want a Content-Range error", err)
				}
			default:
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			}
			sawRange := false
			for _, r := range s.ranges {
				if r != "" {
					sawRange = true
					if !strings.HasSuffix(r, "-"+strconv.Itoa(len(blob)-1)) {
						t.Errorf("Range %q is not closed at the blob's end", r)
					}
				}
			}
			if sawRange != tt.wantRange && tt.want == nil {
				t.Errorf("Range requests: %v, want %v", s.ranges, tt.wantRange)
			}
		})
	}
}

func TestBlobShortBody(t *testing.T) {
	blob := randomBytes(1000, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Claims fewer bytes than the descriptor: a lying registry.
		w.Write(blob[:500])
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	_, err := readBlob(t, c, hostOf(srv)+"/a/b", blobDesc(blob))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch (registry size disagrees with descriptor)", err)
	}
}

func TestBlobNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:aa"}]}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv)
	_, err := c.Blob(t.Context(), hostOf(srv)+"/a/b", blobDesc([]byte("x")))
	var re *ResponseError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.Code() != "BLOB_UNKNOWN" {
		t.Fatalf("err = %v, want ErrNotFound with BLOB_UNKNOWN", err)
	}
}

func TestBlobChunks(t *testing.T) {
	blob := randomBytes(10_000, 3)
	for _, size := range []int64{1000, 3000, 10_000, 20_000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := newBlobServer(blob)
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := newTestClient(t, srv)
			var got []byte
			var chunks int
			for ch, err := range c.BlobChunks(t.Context(), hostOf(srv)+"/a/b", blobDesc(blob), size) {
				if err != nil {
					t.Fatal(err)
				}
				if ch.Offset != int64(len(got)) {
					t.Fatalf("chunk at %d, want %d", ch.Offset, len(got))
				}
				b, err := io.ReadAll(ch.Body)
				if err != nil || int64(len(b)) != ch.Length {
					t.Fatalf("chunk body %d bytes, %v; want %d", len(b), err, ch.Length)
				}
				got = append(got, b...)
				chunks++
			}
			if !bytes.Equal(got, blob) {
				t.Error("chunks do not reassemble the blob")
			}
			if want := int((int64(len(blob)) + size - 1) / size); chunks != want || s.requests.Load() != int64(want) {
				t.Errorf("%d chunks, %d requests; want %d", chunks, s.requests.Load(), want)
			}
		})
	}
	t.Run("break costs one request", func(t *testing.T) {
		s := newBlobServer(blob)
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := newTestClient(t, srv)
		for range c.BlobChunks(t.Context(), hostOf(srv)+"/a/b", blobDesc(blob), 1000) {
			break
		}
		if n := s.requests.Load(); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
	t.Run("unread chunks still verified", func(t *testing.T) {
		s := newBlobServer(blob)
		s.flip = 9999
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := newTestClient(t, srv)
		var last error
		for _, err := range c.BlobChunks(t.Context(), hostOf(srv)+"/a/b", blobDesc(blob), 4000) {
			last = err
		}
		if !errors.Is(last, ErrDigestMismatch) {
			t.Errorf("final error = %v, want ErrDigestMismatch", last)
		}
	})
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes */100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 9-5/10", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		f, l, tot, ok := parseContentRange(tt.in)
		if f != tt.first || l != tt.last || tot != tt.total || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tt.in, f, l, tot, ok)
		}
	}
}

func TestCollect(t *testing.T) {
	boom := errors.New("boom")
	seq := func(yield func(int, error) bool) {
		for i := range 3 {
			if !yield(i, nil) {
				return
			}
		}
		yield(0, boom)
	}
	got, err := Collect(seq)
	if !errors.Is(err, boom) || len(got) != 3 {
		t.Errorf("Collect = %v, %v", got, err)
	}
}
