package unpack

import (
	"io"
	"sync"

	"github.com/ocistream/ocistream/ocitypes"
)

// Read-ahead buffers: how many, and how large. The blob is fetched and its digest
// computed on one core while it is decompressed, hashed again and written on
// another; 4 × 256 KiB keeps both busy without holding much.
const (
	readAheadBuffers = 4
	readAheadSize    = 256 << 10
)

// readAhead reads a blob in a goroutine of its own, a few buffers ahead of its
// consumer, and reports the consumer's progress.
type readAhead struct {
	rc       io.ReadCloser
	full     chan chunk
	free     chan []byte
	stop     chan struct{}
	wg       sync.WaitGroup
	cur      chunk
	spent    []byte // the buffer of cur, to hand back
	done     int64
	desc     ocitypes.Descriptor
	progress func(ocitypes.Descriptor, int64)
	once     sync.Once
}

type chunk struct {
	b   []byte
	err error
}

// newReadAhead starts reading r, whose Close is rc's; Close stops it and closes
// rc.
func newReadAhead(r io.Reader, rc io.Closer, desc ocitypes.Descriptor, progress func(ocitypes.Descriptor, int64)) *readAhead {
	ra := &readAhead{
		rc: struct {
			io.Reader
			io.Closer
		}{r, rc},
		full:     make(chan chunk, readAheadBuffers),
		free:     make(chan []byte, readAheadBuffers),
		stop:     make(chan struct{}),
		desc:     desc,
		progress: progress,
	}
	for range readAheadBuffers {
		ra.free <- make([]byte, readAheadSize)
	}
	ra.wg.Add(1)
	go ra.fill()
	return ra
}

// fill reads into free buffers until the blob ends or fails, or Close.
func (ra *readAhead) fill() {
	defer ra.wg.Done()
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = ra.rc.Read(buf[n:])
			n += m
		}
		select {
		case ra.full <- chunk{buf[:n], err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur.b) == 0 {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.spent != nil {
			ra.free <- ra.spent[:cap(ra.spent)]
			ra.spent = nil
		}
		ra.cur = <-ra.full
		ra.spent = ra.cur.b
		ra.done += int64(len(ra.cur.b))
		if ra.progress != nil && len(ra.cur.b) > 0 {
			ra.progress(ra.desc, min(ra.done, ra.desc.Size-1))
		}
	}
	n := copy(p, ra.cur.b)
	ra.cur.b = ra.cur.b[n:]
	return n, nil
}

// Close stops the reading and closes the blob. It is safe to call more than once.
func (ra *readAhead) Close() error {
	var err error
	ra.once.Do(func() {
		close(ra.stop)
		err = ra.rc.Close() // unblocks a Read in flight
		ra.wg.Wait()
	})
	return err
}
