package layout

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/ocistream/ocistream/errdef"
)

// writerAt is what a positional download needs of a blob writer.
type writerAt interface {
	BlobWriter
	WriteAt(p []byte, off int64) (int, error)
	Missing() iter.Seq2[int64, int64]
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkOrder returns the offsets of the chunks of a size-byte blob in the given order.
func chunkOrder(size, chunk int, order string) []int {
	var offs []int
	for off := 0; off < size; off += chunk {
		offs = append(offs, off)
	}
	switch order {
	case "reverse":
		for i, j := 0, len(offs)-1; i < j; i, j = i+1, j-1 {
			offs[i], offs[j] = offs[j], offs[i]
		}
	case "shuffled":
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(offs), func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	}
	return offs
}

func TestDirBlobWriteAt(t *testing.T) {
	data := randomData(1000, 1)
	tests := []struct {
		name       string
		order      string
		chunk      int
		concurrent bool
	}{
		{"in order", "", 100, false},
		{"reverse", "reverse", 100, false},
		{"shuffled", "shuffled", 37, false},
		{"concurrent", "shuffled", 10, true},
		{"one write", "", 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			b := newBlob("application/octet-stream", data)
			bw, err := d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			w := bw.(writerAt)
			var wg sync.WaitGroup
			for _, off := range chunkOrder(len(data), tt.chunk, tt.order) {
				end := min(off+tt.chunk, len(data))
				write := func() {
					// In two pieces, as a connection delivers a chunk.
					mid := (off + end) / 2
					for _, r := range [][2]int{{off, mid}, {mid, end}} {
						if _, err := w.WriteAt(data[r[0]:r[1]], int64(r[0])); err != nil {
							t.Errorf("WriteAt(%d) = %v", r[0], err)
						}
					}
				}
				if tt.concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); write() }()
				} else {
					write()
				}
			}
			wg.Wait()
			if err := w.Commit(); err != nil {
				t.Fatalf("Commit() = %v", err)
			}
			if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, data) {
				t.Errorf("committed blob differs")
			}
			if _, err := os.Stat(d.partialPath(b.desc.Digest) + rangesSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("ranges record left after Commit: %v", err)
			}
		})
	}
}

func TestDirBlobWriteAtRefused(t *testing.T) {
	data := randomData(500, 2)
	tests := []struct {
		name    string
		write   func(w writerAt) error
		wantErr error
	}{
		{"corrupt chunk", func(w writerAt) error {
			bad := bytes.Clone(data)
			bad[300] ^= 1
			for _, off := range []int{400, 0, 200, 100, 300} {
				if _, err := w.WriteAt(bad[off:off+100], int64(off)); err != nil {
					return err
				}
			}
			return w.Commit()
		}, errdef.ErrDigestMismatch},
		{"beyond the size", func(w writerAt) error {
			_, err := w.WriteAt(data[:10], 495)
			return err
		}, errdef.ErrDigestMismatch},
		{"below the prefix", func(w writerAt) error {
			w.WriteAt(data[:100], 0)
			_, err := w.WriteAt(data[50:60], 50)
			return err
		}, errdef.ErrDigestMismatch},
		{"a gap at commit", func(w writerAt) error {
			w.WriteAt(data[:100], 0)
			w.WriteAt(data[200:], 200)
			return w.Commit()
		}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			b := newBlob("application/octet-stream", data)
			bw, err := d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			w := bw.(writerAt)
			if err := tt.write(w); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			w.Close()
			if _, err := os.Stat(d.BlobPath(b.desc.Digest)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("blob committed: %v", err)
			}
		})
	}
}

// TestDirBlobWriteAtResume: a positional download closed half way keeps its ranges;
// the next writer reports only the gaps as missing, and writing them commits the blob.
func TestDirBlobWriteAtResume(t *testing.T) {
	data := randomData(1000, 3)
	d := openDir(t, t.TempDir())
	b := newBlob("application/octet-stream", data)
	bw, err := d.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	w := bw.(writerAt)
	for _, r := range [][2]int{{0, 150}, {300, 400}, {700, 1000}} {
		if _, err := w.WriteAt(data[r[0]:r[1]], int64(r[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	d2 := openDir(t, d.Path()) // as after a restart
	bw, err = d2.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	w = bw.(writerAt)
	if w.Offset() != 150 {
		t.Errorf("Offset() = %d, want the prefix 150", w.Offset())
	}
	var fetched int64
	var gaps [][2]int64
	for off, n := range w.Missing() {
		gaps = append(gaps, [2]int64{off, n})
		if _, err := w.WriteAt(data[off:off+n], off); err != nil {
			t.Fatal(err)
		}
		fetched += n
	}
	if want := [][2]int64{{150, 150}, {400, 300}}; !slices.Equal(gaps, want) {
		t.Errorf("Missing() = %v, want %v", gaps, want)
	}
	if fetched != 450 {
		t.Errorf("wrote %d bytes to finish, want 450", fetched)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, data) {
		t.Errorf("committed blob differs")
	}
}

// TestDirBlobWriteAtThenWrite: a positional download that falls back to one stream
// continues at the verified prefix and drops the ranges beyond it.
func TestDirBlobWriteAtThenWrite(t *testing.T) {
	data := randomData(600, 4)
	d := openDir(t, t.TempDir())
	b := newBlob("application/octet-stream", data)
	bw, err := d.OpenBlob(t.Context(), b.desc)
	if err != nil {
		t.Fatal(err)
	}
	w := bw.(writerAt)
	w.WriteAt(data[:200], 0)
	w.WriteAt(data[400:], 400)
	if _, err := w.Write(data[200:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if got, _ := os.ReadFile(d.BlobPath(b.desc.Digest)); !bytes.Equal(got, data) {
		t.Errorf("committed blob differs")
	}
}

// TestDirBlobRangesRecordDistrusted: a ranges record that does not parse, or claims
// bytes the file lacks, makes the next writer start from nothing.
func TestDirBlobRangesRecordDistrusted(t *testing.T) {
	data := randomData(300, 5)
	for _, record := range []string{"garbage\n", "ranges v1\n0 100\n200 999\n", "ranges v1\n100 50\n"} {
		d := openDir(t, t.TempDir())
		b := newBlob("application/octet-stream", data)
		bw, err := d.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Fatal(err)
		}
		bw.(writerAt).WriteAt(data[:100], 0)
		bw.Close()
		if err := os.WriteFile(d.partialPath(b.desc.Digest)+rangesSuffix, []byte(record), 0o644); err != nil {
			t.Fatal(err)
		}
		bw, err = d.OpenBlob(t.Context(), b.desc)
		if err != nil {
			t.Fatal(err)
		}
		if bw.Offset() != 0 {
			t.Errorf("record %q: Offset() = %d, want 0", record, bw.Offset())
		}
		bw.Close()
	}
}
