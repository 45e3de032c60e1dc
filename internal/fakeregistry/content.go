package fakeregistry

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Content is the body of a blob or manifest the registry serves. It writes any byte
// range of itself, so that a generated blob of gigabytes is served without being held.
type Content interface {
	// Size is the length of the content in bytes.
	Size() int64
	// WriteRange writes bytes [start, end) of the content to w.
	WriteRange(w io.Writer, start, end int64) error
}

// Bytes is content held in memory.
type Bytes []byte

// Size returns len(b).
func (b Bytes) Size() int64 { return int64(len(b)) }

// WriteRange writes b[start:end] to w in one Write.
func (b Bytes) WriteRange(w io.Writer, start, end int64) error {
	_, err := w.Write(b[start:end])
	return err
}

// generatedBlock is the period of Generated content.
const generatedBlock = 1 << 20

// block is the random block every Generated content repeats.
var block = sync.OnceValue(func() []byte {
	b := make([]byte, generatedBlock)
	_, _ = rand.NewChaCha8([32]byte{'o', 'c', 'i', 's', 't', 'r', 'e', 'a', 'm'}).Read(b)
	return b
})

// Generated returns size bytes made as they are served, never held in memory: one
// shared random block of 1 MiB repeated, the first 16 bytes of each repetition
// replaced by id and the repetition's index, so that contents of different ids and
// the blocks of one content all differ. It writes in blocks of up to 1 MiB, at
// memory-copy speed; the 1 MiB block is made once per process.
func Generated(id uint64, size int64) Content { return generated{id: id, n: size} }

type generated struct {
	id uint64
	n  int64
}

func (g generated) Size() int64 { return g.n }

func (g generated) WriteRange(w io.Writer, start, end int64) error {
	blk := block()
	var stamp [16]byte
	binary.BigEndian.PutUint64(stamp[:8], g.id)
	for off := start; off < end; {
		in := off % generatedBlock
		stop := min(end-off, generatedBlock-in) + in // within this block
		if in < int64(len(stamp)) {
			binary.BigEndian.PutUint64(stamp[8:], uint64(off/generatedBlock))
			head := min(stop, int64(len(stamp)))
			if _, err := w.Write(stamp[in:head]); err != nil {
				return err
			}
			off += head - in
			in = head
		}
		if in < stop {
			if _, err := w.Write(blk[in:stop]); err != nil {
				return err
			}
			off += stop - in
		}
	}
	return nil
}

// Digest hashes c (reading all of it once) and returns its sha256 digest.
func Digest(c Content) digest.Digest {
	if b, ok := c.(Bytes); ok {
		return digest.FromBytes(b)
	}
	h := sha256.New()
	_ = c.WriteRange(h, 0, c.Size()) // a hash.Hash never fails
	return digest.NewDigest(digest.SHA256, h)
}
