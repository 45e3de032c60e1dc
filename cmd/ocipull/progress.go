package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v3"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/ocistream/ocistream"
)

// progress shows the blob events of a pull or a blob download.
type progress interface {
	// event reports one event; calls are never concurrent.
	event(ocistream.ProgressEvent)
	// finish stops the display, marking the blobs still running as failed.
	finish()
}

// newProgress picks how to show progress: nothing with --quiet, one line per event
// with --verbose, bars when stderr is a terminal, else nothing.
func (st *state) newProgress(cmd *cli.Command) progress {
	w := stderr(cmd)
	switch {
	case st.opts.quiet:
		return nopProgress{}
	case st.opts.verbose:
		return &lineProgress{w: w}
	case isTerminal(w):
		if width, height, err := cwriter.GetSize(int(w.(*os.File).Fd())); err != nil || width == 0 || height == 0 {
			// A terminal that does not know its size (a bare pty): mpb would draw
			// nothing, so it is handed a plain writer and a fixed width.
			return newBarProgress(struct{ io.Writer }{w}, mpb.WithAutoRefresh())
		}
		return newBarProgress(w)
	}
	return nopProgress{}
}

// isTerminal reports whether w is a terminal (not a pipe, a file or /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && cwriter.IsTerminal(int(f.Fd()))
}

type nopProgress struct{}

func (nopProgress) event(ocistream.ProgressEvent) {}
func (nopProgress) finish()                       {}

// lineProgress prints one line per blob event (progress events aside):
//
//	started sha256:... 12.3 MiB
//	done    sha256:... 12.3 MiB
type lineProgress struct{ w io.Writer }

func (p *lineProgress) event(e ocistream.ProgressEvent) {
	d := e.Descriptor
	switch e.Kind {
	case ocistream.BlobStarted:
		if e.Offset > 0 {
			fmt.Fprintf(p.w, "resumed %s at %s of %s\n", d.Digest, formatSize(e.Offset), formatSize(d.Size))
		} else {
			fmt.Fprintf(p.w, "started %s %s\n", d.Digest, formatSize(d.Size))
		}
	case ocistream.BlobDone:
		fmt.Fprintf(p.w, "done    %s %s\n", d.Digest, formatSize(d.Size))
	case ocistream.BlobSkipped:
		fmt.Fprintf(p.w, "skipped %s %s (already present)\n", d.Digest, formatSize(d.Size))
	case ocistream.BlobFailed:
		fmt.Fprintf(p.w, "failed  %s: %v\n", d.Digest, e.Err)
	}
}

func (p *lineProgress) finish() {}

// barProgress draws one bar per blob: short digest, bytes so far and total, rate
// and time left.
type barProgress struct {
	p    *mpb.Progress
	bars map[digest.Digest]*blobBar

	// The overall line above the blobs: bytes held of all blobs queued, rate, ETA.
	total     *mpb.Bar
	totalSize int64
	last      time.Time // of the last overall update
}

type blobBar struct {
	bar  *mpb.Bar
	last time.Time // of the last update, for the moving averages
}

// newBarProgress draws bars on w, a terminal, with extra container options.
func newBarProgress(w io.Writer, extra ...mpb.ContainerOption) *barProgress {
	opts := append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(96), mpb.WithRefreshRate(120 * time.Millisecond)}, extra...)
	return &barProgress{
		p:    mpb.New(opts...),
		bars: map[digest.Digest]*blobBar{},
		last: time.Now(),
	}
}

// queue adds a blob to the overall line, drawing the line on the first one: a pull
// queues every blob before the first starts, so the line comes above them. A blob
// download queues nothing and has no overall line.
func (p *barProgress) queue(size int64) {
	if p.total == nil {
		p.total = p.p.AddBar(0,
			mpb.PrependDecorators(
				decor.Name("total", decor.WCSyncSpaceR),
				decor.Any(func(s decor.Statistics) string {
					return formatSize(s.Current) + " / " + formatSize(s.Total)
				}, decor.WCSyncSpace),
			),
			mpb.AppendDecorators(
				decor.OnComplete(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace), "done"),
				decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), ""),
			),
		)
	}
	p.totalSize += size
	p.total.SetTotal(p.totalSize, false)
}

// advance adds n bytes to the overall line; timed says they were downloaded now
// (counted in the rate) rather than found already present.
func (p *barProgress) advance(n int64, timed bool) {
	if n <= 0 || p.total == nil {
		return
	}
	now := time.Now()
	if timed {
		p.total.EwmaIncrInt64(n, now.Sub(p.last))
	} else {
		p.total.IncrInt64(n)
	}
	p.last = now
}

func (p *barProgress) event(e ocistream.ProgressEvent) {
	d := e.Descriptor
	b := p.bars[d.Digest]
	switch e.Kind {
	case ocistream.BlobQueued:
		p.queue(d.Size)
	case ocistream.BlobStarted:
		if b == nil {
			name := shortDigest(d.Digest)
			if e.Offset > 0 {
				name += " (resumed from " + formatSize(e.Offset) + ")"
			}
			b = &blobBar{bar: p.p.AddBar(d.Size,
				mpb.PrependDecorators(
					decor.Name(name, decor.WCSyncSpaceR),
					decor.Any(func(s decor.Statistics) string {
						return formatSize(s.Current) + " / " + formatSize(s.Total)
					}, decor.WCSyncSpace),
				),
				mpb.AppendDecorators(
					decor.OnAbort(decor.OnComplete(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace), "done"), "failed"),
					decor.OnAbort(decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), ""), ""),
				),
			)}
			p.bars[d.Digest] = b
		}
		p.advance(e.Offset-b.bar.Current(), false)
		b.bar.SetCurrent(e.Offset)
		b.last = time.Now()
	case ocistream.BlobProgress:
		if b != nil {
			now := time.Now()
			p.advance(e.Offset-b.bar.Current(), true)
			b.bar.EwmaSetCurrent(e.Offset, now.Sub(b.last))
			b.last = now
		}
	case ocistream.BlobDone:
		if b != nil {
			p.advance(d.Size-b.bar.Current(), true)
			b.bar.SetCurrent(d.Size)
			b.bar.SetTotal(-1, true)
		}
	case ocistream.BlobSkipped:
		if b == nil {
			p.advance(d.Size, false)
			bar := p.p.New(d.Size, mpb.NopStyle(),
				mpb.PrependDecorators(
					decor.Name(shortDigest(d.Digest), decor.WCSyncSpaceR),
					decor.Name(formatSize(d.Size), decor.WCSyncSpace),
				),
				mpb.AppendDecorators(decor.Name("already present")),
			)
			bar.SetCurrent(d.Size)
			bar.SetTotal(-1, true)
			p.bars[d.Digest] = &blobBar{bar: bar}
		}
	case ocistream.BlobFailed:
		if b != nil {
			b.bar.Abort(false)
		}
	}
}

func (p *barProgress) finish() {
	for _, b := range p.bars {
		if !b.bar.Completed() {
			b.bar.Abort(false)
		}
	}
	switch {
	case p.total == nil:
	case p.total.Current() >= p.totalSize:
		p.total.SetTotal(-1, true)
	default:
		p.total.Abort(false)
	}
	p.p.Wait()
}

// pullStats counts what a pull did with its blobs, for the summary a re-pull
// prints: "12 blobs, 3 skipped (already present), 1 resumed from 40 MiB".
type pullStats struct {
	next     progress
	queued   int
	skipped  int
	resumed  int
	resumeAt int64 // bytes the resumed blobs already held
}

func (s *pullStats) event(e ocistream.ProgressEvent) {
	switch e.Kind {
	case ocistream.BlobQueued:
		s.queued++
	case ocistream.BlobSkipped:
		s.skipped++
	case ocistream.BlobStarted:
		if e.Offset > 0 {
			s.resumed++
			s.resumeAt += e.Offset
		}
	}
	s.next.event(e)
}

func (s *pullStats) finish() { s.next.finish() }

// summary is the line a pull that skipped or resumed blobs prints; "" for a pull
// that downloaded everything from the start.
func (s *pullStats) summary() string {
	if s.skipped == 0 && s.resumed == 0 {
		return ""
	}
	parts := []string{plural(s.queued, "blob")}
	if s.skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped (already present)", s.skipped))
	}
	if s.resumed > 0 {
		parts = append(parts, fmt.Sprintf("%d resumed from %s", s.resumed, formatSize(s.resumeAt)))
	}
	return strings.Join(parts, ", ")
}

// shortDigest is the algorithm and the first 12 hex digits: "sha256:0123456789ab".
func shortDigest(d digest.Digest) string {
	alg, enc, ok := strings.Cut(d.String(), ":")
	if !ok || len(enc) <= 12 {
		return d.String()
	}
	return alg + ":" + enc[:12]
}

// formatSize prints n bytes in binary units with one decimal: "512 B", "12.3 MiB".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
