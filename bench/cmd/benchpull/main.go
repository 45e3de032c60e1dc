// Command benchpull is the driver of the ocipull benchmark (see ../../README.md):
//
//	benchpull freeport                                  print a free TCP port on 127.0.0.1
//	benchpull prepare -registry H -cache DIR [-images big,many,multi]
//	                                                    generate the images (cached) and push them to H
//	benchpull floor -registry H -repo R -ref T -o DIR [-platform os/arch] [-concurrency N] [-buffer B] [-nosync]
//	                                                    the floor: download + sha256 + write + fsync, nothing else
//	benchpull compare -registry H -crane PATH [-ocipull PATH] -work DIR [-rounds N] [-warmup N] [-out FILE.md]
//	                                                    time the tools side by side and write the report
//	benchpull shape -registry H [-listen A] [-rate 32MiB] [-delay 40ms]
//	                                                    a proxy imitating a wide-area link in front of H
//	benchpull proto -registry H -work DIR [-repo one] [-rounds N] [-rate 32MiB] [-delay 40ms] [-out FILE.md]
//	                                                    chunks over HTTP/1.1 or HTTP/2 through a TLS proxy capping each connection
//	benchpull noop                                      exit at once (measures the runner's baseline)
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "noop":
		return
	case "freeport":
		err = freeport()
	case "prepare":
		err = prepareCmd(ctx, os.Args[2:])
	case "floor":
		err = floorCmd(ctx, os.Args[2:])
	case "compare":
		err = compareCmd(os.Args[2:])
	case "shape":
		err = shapeCmd(ctx, os.Args[2:])
	case "proto":
		err = protoCmd(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpull:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchpull freeport | prepare | floor | compare | shape | proto | noop  (see the package doc)")
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func freeport() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// parseImages checks a comma-separated list of image names.
func parseImages(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := imageSpecs[name]; !ok {
			return nil, fmt.Errorf("unknown image %q (known: %s)", name, strings.Join(imageOrder, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no image named")
	}
	return out, nil
}

func prepareCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	host := fs.String("registry", "", "registry host:port (plain HTTP)")
	cache := fs.String("cache", "", "directory caching the generated blobs")
	images := fs.String("images", strings.Join(imageOrder, ","), "images to generate and push")
	_ = fs.Parse(args)
	if *host == "" || *cache == "" {
		return fmt.Errorf("prepare needs -registry and -cache")
	}
	names, err := parseImages(*images)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*cache+"/blobs", 0o755); err != nil {
		return err
	}
	api := newRegistryAPI(*host)
	if err := api.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	for _, name := range names {
		p, err := ensureImage(*cache, imageSpecs[name], logf)
		if err != nil {
			return err
		}
		if err := api.push(ctx, *cache, p, logf); err != nil {
			return fmt.Errorf("push %s: %w", name, err)
		}
	}
	return nil
}

func floorCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	var o floorOptions
	fs.StringVar(&o.host, "registry", "", "registry host:port (plain HTTP)")
	fs.StringVar(&o.repo, "repo", "", "repository")
	fs.StringVar(&o.ref, "ref", "latest", "tag or digest")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "os/arch picked from an index")
	fs.StringVar(&o.out, "o", "", "output directory")
	fs.IntVar(&o.concurrency, "concurrency", 4, "blobs downloaded at once")
	fs.IntVar(&o.bufferSize, "buffer", 1<<20, "copy buffer size per blob")
	fs.BoolVar(&o.noSync, "nosync", false, "skip the fsync of each blob")
	fs.Int64Var(&o.writeback, "writeback", 0, "start the writeback of every N bytes written (sync_file_range; 0: only the final fsync)")
	fs.BoolVar(&o.syncDir, "syncdir", false, "fsync the blobs directory after each blob's rename")
	fs.BoolVar(&o.staged, "staged", false, "copy each read into a second buffer before writing (a reader feeding a buffered writer)")
	fs.BoolVar(&o.asyncCommit, "async-commit", false, "free a blob's slot and buffer before its fsync, so commits overlap downloads")
	fs.BoolVar(&o.prealloc, "prealloc", false, "reserve each blob's size with fallocate before writing")
	fs.BoolVar(&o.writebackWait, "writeback-wait", false, "with -writeback, also wait for the previous window")
	_ = fs.Parse(args)
	if o.host == "" || o.repo == "" || o.out == "" {
		return fmt.Errorf("floor needs -registry, -repo and -o")
	}
	if o.concurrency < 1 || o.bufferSize < 1 {
		return fmt.Errorf("floor: -concurrency and -buffer must be positive")
	}
	return floorPull(ctx, o)
}

func compareCmd(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	var o compareOptions
	images := fs.String("images", strings.Join(imageOrder, ","), "images to compare")
	fs.StringVar(&o.host, "registry", "", "registry host:port (plain HTTP)")
	fs.IntVar(&o.rounds, "rounds", 5, "timed rounds per image")
	fs.IntVar(&o.warmup, "warmup", 1, "untimed rounds before them")
	fs.StringVar(&o.work, "work", "", "scratch directory; pulls go to WORK/pulls")
	fs.StringVar(&o.ocipull, "ocipull", "", "ocipull binary (empty: compare crane with the floor only)")
	fs.StringVar(&o.crane, "crane", "", "crane binary")
	fs.StringVar(&o.out, "out", "", "markdown report to write (and its .json raw data)")
	fs.StringVar(&o.link, "link", "", "the link the registry is reached over, for the report (empty: loopback)")
	fs.BoolVar(&o.noFloor, "no-floor", false, "leave the floor out")
	ociArgs := fs.String("ocipull-args", "", "extra flags of ocipull pull, space-separated")
	fs.Func("version", "a version line for the report (repeatable)", func(s string) error {
		o.versions = append(o.versions, s)
		return nil
	})
	_ = fs.Parse(args)
	if o.host == "" || o.crane == "" || o.work == "" {
		return fmt.Errorf("compare needs -registry, -crane and -work")
	}
	if o.rounds < 1 || o.warmup < 0 {
		return fmt.Errorf("compare: -rounds must be at least 1 and -warmup not negative")
	}
	o.ocipullArgs = strings.Fields(*ociArgs)
	var err error
	if o.images, err = parseImages(*images); err != nil {
		return err
	}
	if o.self, err = os.Executable(); err != nil {
		return err
	}
	return compare(o, logf)
}
