package ocistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/internal/fakeregistry"
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

// newBlobRegistry starts a fake registry holding blob in repository a/b, with faults
// armed.
func newBlobRegistry(t *testing.T, blob []byte, faults ...fakeregistry.Fault) *fakeregistry.Registry {
	t.Helper()
	reg := fakeregistry.Start(t)
	reg.PutBlob("a/b", fakeregistry.Bytes(blob))
	for _, f := range faults {
		reg.AddFault(f)
	}
	return reg
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
		faults    []fakeregistry.Fault
		opts      []Option
		want      error // nil: the blob reads back whole and verified
		wantRange bool  // a Range request was made
	}{
		{name: "clean"},
		{name: "dropped three times", faults: []fakeregistry.Fault{{Drop: true, After: 70_000, Times: 3}}, wantRange: true},
		{name: "dropped and range ignored", faults: []fakeregistry.Fault{{Drop: true, After: 100_000, Times: 2}, {IgnoreRange: true}}, wantRange: true},
		{name: "wrong content-range", faults: []fakeregistry.Fault{{Drop: true, After: 1000, Times: 1}, {WrongContentRange: true}}, want: errors.New("content-range")},
		{name: "flipped byte", faults: []fakeregistry.Fault{{Flip: true, FlipAt: 12345}}, want: ErrDigestMismatch},
		{name: "always dropped", faults: []fakeregistry.Fault{{Drop: true, After: 1}}, opts: []Option{WithMaxResumes(5)}, want: io.ErrUnexpectedEOF},
		{name: "stalled", faults: []fakeregistry.Fault{{Stall: 10 * time.Second, After: 10, Times: 1}}, opts: []Option{WithReadTimeout(200 * time.Millisecond)}, wantRange: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newBlobRegistry(t, blob, tt.faults...)
			c := newTestClient(t, reg.Server, tt.opts...)
			got, err := readBlob(t, c, reg.Host()+"/a/b", blobDesc(blob))
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
			var ranges []string
			for _, q := range reg.Log() {
				if q.Header.Get("Accept-Encoding") != "identity" {
					t.Errorf("%s %s asked for encoding %q; blob requests must ask for identity", q.Method, q.Path, q.Header.Get("Accept-Encoding"))
				}
				r := q.Header.Get("Range")
				ranges = append(ranges, r)
				if r != "" {
					sawRange = true
					if !strings.HasSuffix(r, "-"+strconv.Itoa(len(blob)-1)) {
						t.Errorf("Range %q is not closed at the blob's end", r)
					}
				}
			}
			if sawRange != tt.wantRange && tt.want == nil {
				t.Errorf("Range requests: %v, want %v", ranges, tt.wantRange)
			}
		})
	}
}

func TestBlobShortBody(t *testing.T) {
	blob := randomBytes(1000, 2)
	reg := newBlobRegistry(t, blob, fakeregistry.Fault{Path: "/blobs/", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Claims fewer bytes than the descriptor: a lying registry.
		w.Write(blob[:500])
	})})
	c := newTestClient(t, reg.Server)
	_, err := readBlob(t, c, reg.Host()+"/a/b", blobDesc(blob))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch (registry size disagrees with descriptor)", err)
	}
}

func TestBlobNotFound(t *testing.T) {
	reg := newBlobRegistry(t, []byte("another blob"))
	c := newTestClient(t, reg.Server)
	_, err := c.Blob(t.Context(), reg.Host()+"/a/b", blobDesc([]byte("x")))
	var re *ResponseError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.Code() != "BLOB_UNKNOWN" {
		t.Fatalf("err = %v, want ErrNotFound with BLOB_UNKNOWN", err)
	}
}

func TestBlobChunks(t *testing.T) {
	blob := randomBytes(10_000, 3)
	for _, size := range []int64{1000, 3000, 10_000, 20_000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			reg := newBlobRegistry(t, blob)
			c := newTestClient(t, reg.Server)
			var got []byte
			var chunks int
			for ch, err := range c.BlobChunks(t.Context(), reg.Host()+"/a/b", blobDesc(blob), size) {
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
			if want := int((int64(len(blob)) + size - 1) / size); chunks != want || reg.Requests() != want {
				t.Errorf("%d chunks, %d requests; want %d", chunks, reg.Requests(), want)
			}
		})
	}
	t.Run("break costs one request", func(t *testing.T) {
		reg := newBlobRegistry(t, blob)
		c := newTestClient(t, reg.Server)
		for range c.BlobChunks(t.Context(), reg.Host()+"/a/b", blobDesc(blob), 1000) {
			break
		}
		if n := reg.Requests(); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
	t.Run("unread chunks still verified", func(t *testing.T) {
		reg := newBlobRegistry(t, blob, fakeregistry.Fault{Flip: true, FlipAt: 9999})
		c := newTestClient(t, reg.Server)
		var last error
		for _, err := range c.BlobChunks(t.Context(), reg.Host()+"/a/b", blobDesc(blob), 4000) {
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
