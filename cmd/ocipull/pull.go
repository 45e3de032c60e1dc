package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	var skipForeign, verify bool
	var par parallelFlags
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image into an OCI layout directory, a tar file, or a tar on stdout",
		ArgsUsage: "REF",
		UsageText: "ocipull pull [options] REF [-o DIR | -o FILE.tar[.gz] | -o -]",
		Description: `Pull the image REF (a tag or a digest) with its config and layers, each blob
streamed and verified against its digest, several at once (--concurrency).

-o DIR       an OCI image layout directory (the default: ./NAME, NAME being the last
             part of the repository). Blobs already there are not downloaded again, and
             a pull that is interrupted or fails keeps its partial blobs: running it
             again resumes them. Several images may share one directory.
-o FILE.tar  the same layout as a tar file, with a manifest.json that docker load and
             podman load accept. The file appears only once the pull succeeded.
-o FILE.tar.gz
             the same tar, gzip-compressed (also .tgz); docker load and podman load
             accept it. Other compressions (.tar.zst, .tar.xz...) are refused.
-o -         the tar on stdout, for a pipe.

A pull that fails leaves nothing behind in a directory it created, unless it already
holds partial downloads to resume. Blobs already in the directory are trusted by
their size; --verify re-hashes them first and moves bad ones (corrupt, wrong size)
to DIR/.quarantine/, so the pull fetches them again: what to run after "ocipull
verify" reports a corrupt blob.

For a multi-platform image, the host's platform is pulled (linux with the host's
architecture), or the one --platform names; --all-platforms keeps them all (not
with --platform). A single-platform image that is not for the --platform given is
refused, naming its platform, as docker does; without --platform it is pulled. The
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
   ocipull pull alpine:3.20 -o alpine.tar.gz
   ocipull pull --verify alpine:3.20 -o alpine     # after verify found a corrupt blob
   ocipull --plain-http pull localhost:5000/team/app:v1 -o app`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "output",
				Aliases:     []string{"o"},
				Usage:       "write to `DIR`, FILE.tar, FILE.tar.gz, or - for stdout (default: ./NAME)",
				TakesFile:   true,
				Destination: &output,
			},
			&cli.BoolFlag{
				Name:        "verify",
				Usage:       "re-hash the blobs already in the output directory and fetch bad ones again",
				Destination: &verify,
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
			return st.pull(ctx, cmd, arg, pullFlags{output: output, skipForeign: skipForeign, verify: verify, parallel: p})
		}),
	}
}

// outputKind is where pull writes.
type outputKind int

const (
	toDir outputKind = iota
	toTarFile
	toTarGzFile
	toStdout
)

// pullFlags are the flags of pull.
type pullFlags struct {
	output      string
	skipForeign bool
	verify      bool
	// parallel is --connections and --chunk-size; nil for the SDK's defaults.
	parallel *ocistream.ParallelDownload
}

// pullOutput decides where a pull of r goes: -o as given, or ./NAME. A name with a
// compression suffix other than gzip's is refused.
func pullOutput(r ref.Reference, output string) (outputKind, string, error) {
	lower := strings.ToLower(output)
	switch {
	case output == "-":
		return toStdout, "stdout", nil
	case output == "":
		return toDir, path.Base(r.Repository()), nil
	case strings.HasSuffix(lower, ".tar"):
		return toTarFile, output, nil
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		return toTarGzFile, output, nil
	}
	for _, ext := range []string{".tar.zst", ".tar.zstd", ".tzst", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".gz", ".zst", ".xz"} {
		if strings.HasSuffix(lower, ext) {
			return 0, "", fmt.Errorf("-o %s: only .tar and .tar.gz (or .tgz) files are written; for a directory, choose a name without %s", output, ext)
		}
	}
	return toDir, output, nil
}

func (st *state) pull(ctx context.Context, cmd *cli.Command, arg string, pf pullFlags) error {
	if st.opts.plat != nil && st.opts.allPlatforms {
		return usagef("--platform and --all-platforms exclude each other: choose one platform or all")
	}
	r, err := ref.Parse(arg)
	if err != nil {
		return st.fail(target{name: arg}, err)
	}
	kind, dest, err := pullOutput(r, pf.output)
	if err != nil {
		return usageError{err}
	}
	if pf.verify && kind != toDir {
		return usagef("--verify re-hashes the blobs of an output directory; -o %s is not one", dest)
	}
	t := target{name: r.String(), host: r.Registry(), dest: dest, dir: kind == toDir}
	if kind == toStdout && isTerminal(stdout(cmd)) {
		return usagef("refusing to write a tar to a terminal: redirect stdout or pipe it (ocipull pull %s -o - | docker load)", arg)
	}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return st.fail(t, err)
	}
	if st.opts.plat != nil {
		if err := checkSinglePlatform(ctx, c, r, *st.opts.plat); err != nil {
			return st.fail(t, err)
		}
	}
	plat := st.opts.plat
	if plat == nil {
		p := ocitypes.HostPlatform()
		plat = &p
	}
	if pf.verify {
		if err := st.repairBeforePull(ctx, cmd, dest); err != nil {
			return st.fail(t, err)
		}
	}
	prog := &pullStats{next: st.newProgress(cmd)}
	opts := &ocistream.PullOptions{
		Platform:     plat,
		AllPlatforms: st.opts.allPlatforms,
		SkipForeign:  pf.skipForeign,
		Progress:     prog.event,
		Parallel:     pf.parallel,
	}
	var desc ocitypes.Descriptor
	switch kind {
	case toDir:
		desc, err = pullToDir(ctx, c, r, dest, opts)
	case toTarFile, toTarGzFile:
		desc, err = pullToTarFile(ctx, c, r, dest, kind == toTarGzFile, opts)
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
	if sum := prog.summary(); sum != "" && !st.opts.quiet {
		fmt.Fprintln(stderr(cmd), sum)
	}
	if !st.opts.quiet {
		where := dest
		if kind == toDir {
			where = strings.TrimSuffix(dest, string(filepath.Separator)) + string(filepath.Separator)
		}
		what := platformNote(desc)
		fmt.Fprintf(stderr(cmd), "pulled %s%s %s into %s\n", r, what, desc.Digest, where)
	}
	return nil
}

// pullToDir pulls r into the OCI layout directory dir, creating it if needed. When
// the pull fails, what this run created is removed again unless it holds partial
// downloads to resume.
func pullToDir(ctx context.Context, c *ocistream.Client, r ref.Reference, dir string, opts *ocistream.PullOptions) (desc ocitypes.Descriptor, err error) {
	undo := newDirUndo(dir)
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	d, err := layout.OpenDir(dir, nil)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	desc, err = c.Pull(ctx, r.String(), d, opts)
	return desc, errors.Join(err, d.Close())
}

// dirUndo removes what a failed pull created: the layout skeleton (oci-layout,
// index.json, empty blobs/ and .ingest/ directories) of a directory that did not
// exist or was empty, and the parent directories created for it. Anything else in
// it (a partial or complete blob) is kept for the next run, and so is the directory.
type dirUndo struct {
	dir     string
	fresh   bool     // dir did not exist, or was empty
	existed bool     // dir existed (empty): it stays
	created []string // dir's missing ancestors, nearest first
}

func newDirUndo(dir string) dirUndo {
	u := dirUndo{dir: filepath.Clean(dir)}
	entries, err := os.ReadDir(u.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		u.fresh = true
		for p := filepath.Dir(u.dir); p != u.dir; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			u.created = append(u.created, p)
			if p == filepath.Dir(p) {
				break
			}
		}
	case err == nil && len(entries) == 0:
		u.fresh, u.existed = true, true
	}
	return u
}

// skeleton lists the layout files a pull creates before any blob, deepest first.
var skeleton = []string{".index.lock", "index.json", "oci-layout", "blobs/sha256", "blobs/sha512", "blobs", ".ingest"}

// run removes the skeleton if that is all dir holds, then the directories created.
func (u dirUndo) run() {
	if !u.fresh {
		return
	}
	known := map[string]bool{}
	for _, s := range skeleton {
		known[filepath.FromSlash(s)] = true
	}
	clean := true
	filepath.WalkDir(u.dir, func(p string, e fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(u.dir, p)
		if err != nil || rerr != nil || (rel != "." && !known[rel]) {
			clean = false
			return filepath.SkipAll
		}
		return nil
	})
	if !clean {
		return
	}
	for _, s := range skeleton {
		os.Remove(filepath.Join(u.dir, filepath.FromSlash(s)))
	}
	// os.Remove refuses a directory that is not empty: nothing else is lost.
	if u.existed || os.Remove(u.dir) != nil {
		return
	}
	for _, p := range u.created {
		if os.Remove(p) != nil {
			return
		}
	}
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

// pullToTarFile pulls r into the tar file name, gzip-compressed with gz: into a
// temporary file next to it, synced and renamed over name only when the pull
// succeeded.
func pullToTarFile(ctx context.Context, c *ocistream.Client, r ref.Reference, name string, gz bool, opts *ocistream.PullOptions) (ocitypes.Descriptor, error) {
	var desc ocitypes.Descriptor
	err := writeFileAtomic(name, func(w io.Writer) error {
		if !gz {
			var err error
			desc, err = pullToTar(ctx, c, r, w, opts)
			return err
		}
		// Layers are compressed already: the fastest level loses little.
		zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return err
		}
		if desc, err = pullToTar(ctx, c, r, zw, opts); err != nil {
			return err
		}
		return zw.Close()
	})
	return desc, err
}

// checkSinglePlatform refuses a single-platform image r that is not for want, as
// docker does, naming the image's platform. It costs the manifest and, for an image
// manifest, the config (an index is left to the pull's platform selection).
func checkSinglePlatform(ctx context.Context, c *ocistream.Client, r ref.Reference, want ocitypes.Platform) error {
	desc, body, err := c.Manifest(ctx, r.String())
	if err != nil || !ocitypes.IsManifest(desc.MediaType) {
		return err
	}
	m, err := ocitypes.ParseManifest(desc.MediaType, body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", r, err)
	}
	rc, err := c.Blob(ctx, r.Name(), m.Config)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, ocitypes.MaxManifestSize+1))
	if err != nil {
		return fmt.Errorf("config of %s: %w", r, err)
	}
	cfg, err := ocitypes.ParseImageConfig(b)
	if err != nil || cfg.OS == "" {
		return nil // an artifact, not an image: nothing to compare
	}
	have := ocitypes.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}
	if !ocitypes.MatchPlatform(want, have) {
		return fmt.Errorf("%s is a single-platform image for %s, not %s: drop --platform to pull it as it is",
			r, ocitypes.FormatPlatform(have), ocitypes.FormatPlatform(want))
	}
	return nil
}

// writeFileAtomic creates name with what write writes, then syncs it and puts it in
// place over name. When write or anything after it fails, nothing is left and name is
// as it was. On Linux the bytes go to an unnamed file (O_TMPFILE) linked into place at
// the end, so that even a process killed with SIGKILL leaves nothing behind; elsewhere,
// or on a file system without O_TMPFILE, to a hidden temporary file .NAME.*.partial,
// locked while it is written, that the next run removes if its writer died.
func writeFileAtomic(name string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Dir(name), filepath.Base(name)
	removeStaleTemps(dir, base)
	f, unnamed := createUnnamed(dir)
	if !unnamed {
		if f, err = os.CreateTemp(dir, tempPrefix(base)+"*"+tempSuffix); err != nil {
			return err
		}
		lockTemp(f)
	}
	defer func() {
		if err != nil {
			f.Close()
			if !unnamed {
				os.Remove(f.Name())
			}
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
	if unnamed {
		if err := linkUnnamed(f, dir, base); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return f.Close()
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Rename(f.Name(), name)
}

// The temporary files of writeFileAtomic for NAME are .NAME.<random>.partial.
const tempSuffix = ".partial"

func tempPrefix(base string) string { return "." + base + "." }

// globEscape quotes the pattern characters of s for filepath.Glob.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
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

// platformNote says which platforms the root desc holds, for a summary line:
// " (linux/arm64)", " (all platforms)" for an index, "" when it does not say.
func platformNote(desc ocitypes.Descriptor) string {
	switch {
	case desc.Platform != nil:
		return " (" + ocitypes.FormatPlatform(*desc.Platform) + ")"
	case ocitypes.IsIndex(desc.MediaType):
		return " (all platforms)"
	}
	return ""
}
