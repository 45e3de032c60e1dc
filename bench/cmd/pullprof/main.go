// Command pullprof pulls an image with the ocistream SDK into an OCI layout directory
// (Client.Pull into layout.Dir, what `ocipull pull -o DIR` does) and profiles it: CPU
// profile, execution trace, peak heap, GC and CPU time. It is the tool behind the
// analysis in ../../README.md.
//
//	pullprof -ref 127.0.0.1:5000/big:latest -o DIR [-repeat N] [-concurrency N] [-nosync]
//	         [-buffer BYTES] [-cpuprofile FILE] [-trace FILE] [-memprofile FILE]
//
// Each repetition pulls into DIR/<i>, removed afterwards (with -keep, kept).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pullprof:", err)
		os.Exit(1)
	}
}

func run() error {
	refFlag := flag.String("ref", "", "image reference (plain HTTP registry)")
	out := flag.String("o", "", "output directory (each repetition in a numbered subdirectory)")
	repeat := flag.Int("repeat", 1, "pulls to make")
	concurrency := flag.Int("concurrency", 0, "blobs at once (0: the SDK's default)")
	noSync := flag.Bool("nosync", false, "skip fsync in the layout writer")
	buffer := flag.Int("buffer", 0, "layout write buffer in bytes (0: the default)")
	platform := flag.String("platform", "", "os/arch of an index to pull")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here")
	memProfile := flag.String("memprofile", "", "write an allocation profile here")
	traceFile := flag.String("trace", "", "write an execution trace here")
	keep := flag.Bool("keep", false, "keep the pulled directories")
	events := flag.Bool("events", false, "print when each blob started, received its last byte, and was committed")
	heap := flag.Bool("heap", false, "sample the heap every 5 ms for its peak (a short stop of the world each time)")
	flag.Parse()
	if *refFlag == "" || *out == "" || *repeat < 1 {
		return fmt.Errorf("need -ref, -o and a positive -repeat")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	client, err := ocistream.New(ocistream.WithPlainHTTP())
	if err != nil {
		return err
	}
	opts := &ocistream.PullOptions{Concurrency: *concurrency}
	if *platform != "" {
		p, err := ocitypes.ParsePlatform(*platform)
		if err != nil {
			return err
		}
		opts.Platform = &p
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}

	var peakHeap atomic.Uint64
	done := make(chan struct{})
	if *heap {
		go sampleHeap(&peakHeap, done)
	}

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := selfCPU()
	var total time.Duration
	for i := range *repeat {
		dir := filepath.Join(*out, strconv.Itoa(i))
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		d, err := layout.OpenDir(dir, &layout.DirOptions{NoSync: *noSync, BufferSize: *buffer})
		if err != nil {
			return err
		}
		start := time.Now()
		var tl *timeline
		if *events {
			tl = newTimeline(start)
			opts.Progress = tl.record
		}
		root, err := client.Pull(ctx, *refFlag, d, opts)
		wall := time.Since(start)
		if tl != nil {
			tl.print(os.Stdout)
		}
		if err != nil {
			return err
		}
		total += wall
		fmt.Printf("pull %d: %s in %.3f s\n", i+1, root.Digest, wall.Seconds())
		if !*keep {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			syscall.Sync()
		}
	}
	cpu := selfCPU() - cpu0
	close(done)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("pulls: %d, mean wall %.3f s, CPU %.3f s per pull (%.0f%% of one core)\n",
		*repeat, total.Seconds()/float64(*repeat), cpu.Seconds()/float64(*repeat), 100*cpu.Seconds()/total.Seconds())
	fmt.Printf("GC: %d cycles, %.2f ms paused, %.1f MiB allocated per pull; peak heap in use %s; max RSS %.1f MiB\n",
		after.NumGC-before.NumGC, float64(after.PauseTotalNs-before.PauseTotalNs)/1e6,
		float64(after.TotalAlloc-before.TotalAlloc)/float64(*repeat)/(1<<20),
		heapPeak(*heap, peakHeap.Load()), float64(ru.Maxrss)/1024)

	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return nil
}

// sampleHeap records the largest HeapInuse seen every 5 ms until done closes.
func sampleHeap(peak *atomic.Uint64, done <-chan struct{}) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// selfCPU returns the user+system CPU time of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapPeak(sampled bool, peak uint64) string {
	if !sampled {
		return "not sampled (-heap)"
	}
	return fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20))
}

// timeline records, per blob, when it started, when its last byte arrived and when it
// was committed (verified, fsynced, renamed).
type timeline struct {
	start time.Time
	blobs map[string]*blobTimes
	order []string
}

type blobTimes struct {
	size                int64
	started, full, done time.Duration
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, blobs: map[string]*blobTimes{}}
}

// record is a PullOptions.Progress callback; Pull serializes its calls.
func (t *timeline) record(e ocistream.ProgressEvent) {
	k := e.Descriptor.Digest.String()
	b := t.blobs[k]
	if b == nil {
		b = &blobTimes{size: e.Descriptor.Size}
		t.blobs[k] = b
		t.order = append(t.order, k)
	}
	now := time.Since(t.start)
	switch e.Kind {
	case ocistream.BlobStarted:
		b.started = now
	case ocistream.BlobProgress:
		b.full = now // the last one comes at most 512 KiB before the end
	case ocistream.BlobDone:
		if b.full == 0 {
			b.full = now
		}
		b.done = now
	}
}

func (t *timeline) print(w io.Writer) {
	fmt.Fprintf(w, "%-19s %10s %9s %9s %9s %9s\n", "blob", "size", "start", "~last byte", "committed", "commit")
	for _, k := range t.order {
		b := t.blobs[k]
		fmt.Fprintf(w, "%-19s %10d %8.3fs %8.3fs %8.3fs %8.3fs\n", k[:19], b.size,
			b.started.Seconds(), b.full.Seconds(), b.done.Seconds(), (b.done - b.full).Seconds())
	}
}
