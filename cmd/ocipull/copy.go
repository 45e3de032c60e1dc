package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/credentials"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func newCopyCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "copy",
		Usage:     "copy an image between registries, layout directories and layout tars",
		ArgsUsage: "SRC DST",
		UsageText: "ocipull copy [options] SRC DST",
		Description: `Copy the image SRC to DST. Each side is one of:

  REF                     an image in a registry (a tag or a digest)
  oci:PATH[:REF]          an OCI image layout directory
  oci-archive:PATH[:REF]  an OCI image layout tar (what pull -o FILE.tar and
                          skopeo's oci-archive: write)

In a layout, REF picks an image by its tag (org.opencontainers.image.ref.name) or
full name; it may be left out when the layout holds one image. For a layout
destination, REF is the tag (or full name) to record; by default the source's name.

The whole image is copied as it is, every platform of an index included, so the
destination holds it under the same digest; --platform copies one platform's
manifest instead. Every byte is verified against its digest before the destination
keeps it, and the image is tagged only once all of it is there. A rerun skips what
the destination already holds; between two repositories of one registry, layers
are mounted instead of uploaded.

Credentials: -u/-p apply when one side is a registry. For two registries, log in to
each first (ocipull login, docker login or podman login): the stored credentials
of both are used. --plain-http and --insecure apply to both registries.

Examples:
   ocipull copy alpine:3.20 registry.example.com/mirror/alpine:3.20
   ocipull copy ghcr.io/owner/app:v1 oci:app             # into a layout directory
   ocipull copy oci-archive:app.tar localhost:5000/app:v1 # an air-gapped tar into a registry
   ocipull copy localhost:5000/a:v1 localhost:5000/b:v1   # mounts, uploads nothing`,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 2 {
				return usagef("copy wants SRC and DST, got %d arguments (see ocipull copy --help)", cmd.Args().Len())
			}
			return st.copy(ctx, cmd, cmd.Args().Get(0), cmd.Args().Get(1))
		},
	}
}

func (st *state) copy(ctx context.Context, cmd *cli.Command, srcArg, dstArg string) error {
	srcLoc, err := parseLocation(srcArg)
	if err != nil {
		return st.fail(target{name: srcArg}, fmt.Errorf("SRC: %w", err))
	}
	dstLoc, err := parseLocation(dstArg)
	if err != nil {
		return st.fail(target{name: dstArg}, fmt.Errorf("DST: %w", err))
	}
	if srcLoc.kind != inRegistry && srcLoc.path == dstLoc.path && srcLoc.kind == dstLoc.kind {
		return usagef("SRC and DST are the same layout %s", srcLoc.path)
	}
	c, err := st.locationClient(ctx, cmd, srcLoc, dstLoc)
	if err != nil {
		return err
	}
	src, closeSrc, err := st.sourceAt(c, srcLoc)
	if err != nil {
		return err
	}
	defer closeSrc()
	name, err := copyName(src, srcLoc, dstLoc)
	if err != nil {
		return st.fail(srcLoc.target(), usageError{err})
	}
	prog := st.newProgress(cmd)
	opts := &ocistream.CopyOptions{Name: name, Platform: st.opts.plat, Progress: prog.event}
	if st.opts.concurrency > 0 {
		opts.Concurrency = st.opts.concurrency
	}
	var desc ocitypes.Descriptor
	switch dstLoc.kind {
	case inRegistry:
		desc, err = ocistream.Copy(ctx, src, c.RepositoryOf(dstLoc.ref), opts)
	case inLayoutDir:
		desc, err = copyToDir(ctx, src, dstLoc.path, opts)
	case inLayoutTar:
		desc, err = copyToTarFile(ctx, src, dstLoc.path, opts)
	}
	prog.finish()
	if err != nil {
		return st.fail(copyTarget(err, srcLoc, dstLoc), err)
	}
	fmt.Fprintln(stdout(cmd), desc.Digest)
	if !st.opts.quiet {
		what := platformNote(desc)
		fmt.Fprintf(stderr(cmd), "copied %s%s %s to %s\n", srcLoc, what, desc.Digest, dstLoc)
	}
	return nil
}

// copyTarget says which side of a copy failed with err, for its message: the
// destination when err is a registry's answer to a request about the destination's
// repository, or a failure writing a layout; the source otherwise.
func copyTarget(err error, srcLoc, dstLoc location) target {
	t := dstLoc.target()
	if dstLoc.kind != inRegistry {
		t.dir = dstLoc.kind == inLayoutDir
		var re *ocistream.ResponseError
		if errors.As(err, &re) {
			return srcLoc.target() // only the source speaks HTTP
		}
		return t
	}
	var re *ocistream.ResponseError
	if errors.As(err, &re) {
		if u, perr := url.Parse(re.URL); perr == nil && credentials.CanonicalHost(u.Host) == credentials.CanonicalHost(dstLoc.ref.Registry()) &&
			strings.HasPrefix(u.Path, "/v2/"+dstLoc.ref.Repository()+"/") {
			return t
		}
	}
	return srcLoc.target()
}

// copyName is the name the destination records: a registry destination's reference;
// else the source's name, its tag replaced by the REF of DST when that is a tag, or
// DST's REF when that is a full name.
func copyName(src ocistream.Source, srcLoc, dstLoc location) (ref.Reference, error) {
	if dstLoc.kind == inRegistry {
		return dstLoc.ref, nil
	}
	var name ref.Reference
	if named, ok := src.(interface{ Reference() ref.Reference }); ok {
		name = named.Reference()
	}
	if dstLoc.image == "" {
		if name.IsZero() {
			return ref.Reference{}, fmt.Errorf("the image in %s has no full name: name it in DST, as %s:example.com/app:v1", srcLoc, strings.TrimSuffix(dstLoc.arg, ":"))
		}
		return name, nil
	}
	if !strings.ContainsAny(dstLoc.image, "/:@") {
		if name.IsZero() {
			return ref.Reference{}, fmt.Errorf("the image in %s has no full name to tag %q: name it in full in DST, as %s:example.com/app:%s", srcLoc, dstLoc.image, dstLoc.path, dstLoc.image)
		}
		return name.WithTag(dstLoc.image)
	}
	return ref.Parse(dstLoc.image)
}

// copyToDir copies src into the layout directory path, creating it if needed.
func copyToDir(ctx context.Context, src ocistream.Source, path string, opts *ocistream.CopyOptions) (ocitypes.Descriptor, error) {
	d, err := layout.OpenDir(path, nil)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	desc, err := ocistream.Copy(ctx, src, d, opts)
	return desc, errors.Join(err, d.Close())
}

// copyToTarFile copies src into the layout tar path, which appears only complete.
func copyToTarFile(ctx context.Context, src ocistream.Source, path string, opts *ocistream.CopyOptions) (ocitypes.Descriptor, error) {
	var desc ocitypes.Descriptor
	err := writeFileAtomic(path, func(w io.Writer) error {
		tw := layout.NewTar(w, &layout.TarOptions{Platform: opts.Platform})
		var err error
		if desc, err = ocistream.Copy(ctx, src, tw, opts); err != nil {
			return err
		}
		return tw.Close()
	})
	return desc, err
}
