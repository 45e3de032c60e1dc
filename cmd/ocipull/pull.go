package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func newPullCommand(st *state) *cli.Command {
	var output string
	var skipForeign bool
	var par parallelFlags
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image into an OCI layout directory, a tar file, or a tar on stdout",
		ArgsUsage: "REF",
		UsageText: "ocipull pull [options] REF [-o DIR | -o FILE.tar | -o -]",
		Description: `Pull the image REF (a tag or a digest) with its config and layers, each blob
streamed and verified against its digest, several at once (--concurrency).

-o DIR       an OCI image layout directory (the default: ./NAME, NAME being the last
             part of the repository). Blobs already there are not downloaded again, and
             a pull that is interrupted or fails keeps its partial blobs: running it
             again resumes them. Several images may share one directory.
-o FILE.tar  the same layout as a tar file, with a manifest.json that docker load and
             podman load accept. The file appears only once the pull succeeded.
-o -         the tar on stdout, for a pipe.

For a multi-platform image, the host's platform is pulled (linux with the host's
architecture), or the one --platform names; --all-platforms keeps them all. The
digest of what was pulled is printed on stdout (not with -o -), a summary on stderr.

Foreign (non-distributable) layers, such as Windows base layers, are fetched from the
registry or else from the URLs their descriptors list, without the registry's
credentials. --skip-foreign leaves them out: the layout then records which blobs it
lacks (annotation io.ocistream.absent-blobs), and a warning says so.

Into a directory, a large blob (32 MiB or more) is fetched as byte ranges over
several connections at once (--connections, default 8 per blob; --chunk-size, default
8MiB), still verified against its digest before it is committed; an interrupted pull
keeps the ranges it had. A registry that ignores byte ranges gets one stream per blob.
--connections 1 turns this off.

Examples:
   ocipull pull alpine:3.20
   ocipull pull --platform linux/arm64 alpine:3.20 -o alpine-arm64
   ocipull pull ghcr.io/owner/app@sha256:0123... -o app.tar
   ocipull pull alpine:3.20 -o - | docker load
   ocipull --plain-http pull localhost:5000/team/app:v1 -o app`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "output",
				Aliases:     []string{"o"},
				Usage:       "write to `DIR`, FILE.tar, or - for stdout (default: ./NAME)",
				TakesFile:   true,
				Destination: &output,
			},
			&cli.BoolFlag{
				Name:        "skip-foreign",
				Usage:       "leave out foreign (non-distributable) layers instead of fetching them from their URLs",
				Destination: &skipForeign,
			},
			&cli.IntFlag{
				Name:        "connections",
				Usage:       "fetch a large blob over `N` connections at once (default: 8; 1: one stream per blob)",
				HideDefault: true,
				Destination: &par.connections,
			},
			&cli.StringFlag{
				Name:        "chunk-size",
				Usage:       "fetch a large blob in range requests of `SIZE` bytes, like 4MiB or 1048576 (default: 8MiB)",
				Destination: &par.chunkSize,
			},
		},
		Action: oneArg("REF", func(ctx context.Context, cmd *cli.Command, arg string) error {
			p, err := par.parse(cmd)
			if err != nil {
				return err
			}
			return st.pull(ctx, cmd, arg, output, skipForeign, p)
		}),
	}
}

// outputKind is where pull writes.
type outputKind int

const (
	toDir outputKind = iota
	toTarFile
	toStdout
)

// pullOutput decides where a pull of r goes: -o as given, or ./NAME.
func pullOutput(r ref.Reference, output string) (outputKind, string) {
	switch {
	case output == "-":
		return toStdout, "stdout"
	case output == "":
		return toDir, path.Base(r.Repository())
	case strings.HasSuffix(strings.ToLower(output), ".tar"):
		return toTarFile, output
	}
	return toDir, output
}

func (st *state) pull(ctx context.Context, cmd *cli.Command, arg, output string, skipForeign bool, par *ocistream.ParallelDownload) error {
	r, err := ref.Parse(arg)
	if err != nil {
		return st.fail(target{name: arg}, err)
	}
	kind, dest := pullOutput(r, output)
	t := target{name: r.String(), host: r.Registry(), dest: dest, dir: kind == toDir}
	if kind == toStdout && isTerminal(stdout(cmd)) {
		return usagef("refusing to write a tar to a terminal: redirect stdout or pipe it (ocipull pull %s -o - | docker load)", arg)
	}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return st.fail(t, err)
	}
	plat := st.opts.plat
	if plat == nil {
		p := ocitypes.HostPlatform()
		plat = &p
	}
	prog := st.newProgress(cmd)
	opts := &ocistream.PullOptions{
		Platform:     plat,
		AllPlatforms: st.opts.allPlatforms,
		SkipForeign:  skipForeign,
		Progress:     prog.event,
		Parallel:     par,
	}
	var desc ocitypes.Descriptor
	switch kind {
	case toDir:
		desc, err = pullToDir(ctx, c, r, dest, opts)
	case toTarFile:
		desc, err = pullToTarFile(ctx, c, r, dest, opts)
	case toStdout:
		desc, err = pullToTar(ctx, c, r, stdout(cmd), opts)
	}
	prog.finish()
	if err != nil {
		return st.fail(t, err)
	}
	if kind != toStdout {
		fmt.Fprintln(stdout(cmd), desc.Digest)
	}
	if absent := desc.Annotations[ocitypes.AnnotationAbsentBlobs]; absent != "" {
		n := strings.Count(absent, ",") + 1
		what := "the layout records them as absent"
		if kind != toDir {
			what = "the tar lacks them: docker load and podman load will refuse it until they are supplied"
		}
		fmt.Fprintf(stderr(cmd), "ocipull: warning: %d foreign layer(s) left out (--skip-foreign); %s\n", n, what)
	}
	if !st.opts.quiet {
		where := dest
		if kind == toDir {
			where = strings.TrimSuffix(dest, string(filepath.Separator)) + string(filepath.Separator)
		}
		what := ""
		if desc.Platform != nil {
			what = " (" + ocitypes.FormatPlatform(*desc.Platform) + ")"
		} else if ocitypes.IsIndex(desc.MediaType) {
			what = " (all platforms)"
		}
		fmt.Fprintf(stderr(cmd), "pulled %s%s %s into %s\n", r, what, desc.Digest, where)
	}
	return nil
}

// pullToDir pulls r into the OCI layout directory dir, creating it if needed.
func pullToDir(ctx context.Context, c *ocistream.Client, r ref.Reference, dir string, opts *ocistream.PullOptions) (ocitypes.Descriptor, error) {
	d, err := layout.OpenDir(dir, nil)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	desc, err := c.Pull(ctx, r.String(), d, opts)
	return desc, errors.Join(err, d.Close())
}

// pullToTar pulls r as a tar stream into w. On failure the stream is left without
// its index.json, manifest.json and trailer, so no loader takes it for an image.
func pullToTar(ctx context.Context, c *ocistream.Client, r ref.Reference, w io.Writer, opts *ocistream.PullOptions) (ocitypes.Descriptor, error) {
	tw := layout.NewTar(w, &layout.TarOptions{Platform: opts.Platform})
	desc, err := c.Pull(ctx, r.String(), tw, opts)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	if err := tw.Close(); err != nil {
		return ocitypes.Descriptor{}, err
	}
	return desc, nil
}

// pullToTarFile pulls r into the tar file name: into a temporary file next to it,
// synced and renamed over name only when the pull succeeded.
func pullToTarFile(ctx context.Context, c *ocistream.Client, r ref.Reference, name string, opts *ocistream.PullOptions) (ocitypes.Descriptor, error) {
	var desc ocitypes.Descriptor
	err := writeFileAtomic(name, func(w io.Writer) error {
		var err error
		desc, err = pullToTar(ctx, c, r, w, opts)
		return err
	})
	return desc, err
}

// writeFileAtomic creates name with what write writes: into a temporary file in the
// same directory, synced, then renamed over name. When write or anything after it
// fails, the temporary file is removed and name is left as it was.
func writeFileAtomic(name string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.partial")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return nil
}

// parallelFlags are the pull flags of a parallel blob download, as given.
type parallelFlags struct {
	connections int
	chunkSize   string
}

// parse checks the flags; nil means the SDK's defaults.
func (f parallelFlags) parse(cmd *cli.Command) (*ocistream.ParallelDownload, error) {
	if !cmd.IsSet("connections") && !cmd.IsSet("chunk-size") {
		return nil, nil
	}
	var p ocistream.ParallelDownload
	if cmd.IsSet("connections") {
		if f.connections < 1 {
			return nil, usagef("--connections %d: must be at least 1", f.connections)
		}
		p.Connections = f.connections
	}
	if cmd.IsSet("chunk-size") {
		n, err := parseSize(f.chunkSize)
		if err != nil || n < 64<<10 {
			return nil, usagef("--chunk-size %q: want a size of at least 64KiB, like 8MiB or 1048576", f.chunkSize)
		}
		p.ChunkSize = n
	}
	return &p, nil
}

// parseSize reads a byte count: digits with an optional unit, B, KiB, MiB or GiB (K,
// M, G and KB, MB, GB are read as the binary units too).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30}
	sh, ok := shift[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok || n > math.MaxInt64>>sh {
		return 0, fmt.Errorf("size %q: unknown unit or too large", s)
	}
	return n << sh, nil
}
