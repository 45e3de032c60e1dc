package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/unpack"
)

func newUnpackCommand(st *state) *cli.Command {
	var o unpackFlags
	return &cli.Command{
		Name:      "unpack",
		Usage:     "write an image's root filesystem, or an OCI runtime bundle, into a directory",
		ArgsUsage: "SRC DIR",
		UsageText: "ocipull unpack [options] SRC DIR",
		Description: `Fetch the image SRC (a reference: a tag or a digest) and write its flattened root
filesystem into DIR: the layers applied in order as they stream in, whiteouts and
opaque directories honoured, each layer checked against its digest and, once
decompressed, against the diff_id of the image config. For a multi-platform image,
the host's platform is unpacked, or the one --platform names.

--bundle writes an OCI runtime bundle instead: the root filesystem in DIR/rootfs
and DIR/config.json generated from the image config (the entrypoint and command,
environment, working directory, user resolved through the image's /etc/passwd, the
default namespaces and mounts), ready for "runc run". Running it without root needs
a user namespace: see "runc spec --rootless".

DIR must be absent or empty; --force replaces a DIR that is not, atomically. The
tree is built beside DIR (in .DIR.unpacking) and takes DIR's place only when every
layer matched its digests: a failed or interrupted run leaves DIR as it was, and
the next run removes what it left.

Entries that would write outside DIR (absolute names, "..", links followed out of
the tree) fail the unpack. Ownership is applied when running as root, device nodes
where permitted; what cannot be reproduced is listed as warnings. Foreign
(non-distributable) layers fail the unpack unless --skip-foreign leaves them out.
The digest of the manifest unpacked is printed on stdout, a summary on stderr.

Examples:
   ocipull unpack alpine:3.20 alpine-rootfs
   ocipull unpack --platform linux/arm64 alpine:3.20 rootfs-arm64
   ocipull unpack --bundle alpine:3.20 bundle && sudo runc run -b bundle demo
   ocipull unpack --force ghcr.io/owner/app@sha256:0123... app`,
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name:        "bundle",
				Usage:       "write an OCI runtime bundle: DIR/rootfs and DIR/config.json",
				Destination: &o.bundle,
			},
			&cli.BoolFlag{
				Name:        "force",
				Aliases:     []string{"f"},
				Usage:       "replace DIR when it is not empty",
				Destination: &o.force,
			},
			&cli.BoolFlag{
				Name:        "skip-foreign",
				Usage:       "leave out foreign (non-distributable) layers instead of failing",
				Destination: &o.skipForeign,
			},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 2 {
				return usagef("unpack wants SRC and DIR, got %d arguments (see ocipull unpack --help)", cmd.Args().Len())
			}
			if st.opts.allPlatforms {
				return usagef("unpack writes one platform: --all-platforms does not apply (choose one with --platform)")
			}
			return st.unpack(ctx, cmd, cmd.Args().Get(0), cmd.Args().Get(1), o)
		},
	}
}

// unpackFlags are the flags of the unpack command.
type unpackFlags struct {
	bundle, force, skipForeign bool
}

func (st *state) unpack(ctx context.Context, cmd *cli.Command, srcArg, dir string, f unpackFlags) error {
	if dir == "" {
		return usagef("unpack: DIR is empty")
	}
	src, release, err := st.openSource(ctx, cmd, srcArg)
	if err != nil {
		return err
	}
	t := target{name: srcArg, dest: dir}
	if repo, ok := src.(*ocistream.Repository); ok {
		t.name, t.host = repo.Reference().String(), repo.Reference().Registry()
	}
	prog := st.newProgress(cmd)
	res, err := unpack.Image(ctx, src, dir, &unpack.Options{
		Platform:    st.opts.plat,
		Bundle:      f.bundle,
		Overwrite:   f.force,
		SkipForeign: f.skipForeign,
		Progress:    progressEvents(prog.event),
	})
	prog.finish()
	err = errors.Join(err, release())
	if err != nil {
		return st.fail(t, err)
	}
	fmt.Fprintln(stdout(cmd), res.Manifest.Digest)
	if st.opts.quiet {
		return nil
	}
	w := stderr(cmd)
	for _, l := range res.SkippedLayers {
		fmt.Fprintf(w, "ocipull: warning: foreign layer %s (%s) left out (--skip-foreign)\n", l.Digest, formatSize(l.Size))
	}
	for _, msg := range res.Warnings {
		fmt.Fprintf(w, "ocipull: warning: %s\n", msg)
	}
	what := platformNote(res.Manifest)
	kind := "root filesystem"
	if f.bundle {
		kind = "bundle"
	}
	fmt.Fprintf(w, "unpacked %s%s %s: %d layer(s) into %s %s\n", t.name, what, res.Manifest.Digest,
		len(res.Layers), kind, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
	return nil
}

// progressEvents turns the unpacker's progress calls into the pull's events: a
// layer starts at 0, is done at its size.
func progressEvents(event func(ocistream.ProgressEvent)) func(ocitypes.Descriptor, int64) {
	return func(d ocitypes.Descriptor, n int64) {
		e := ocistream.ProgressEvent{Kind: ocistream.BlobProgress, Descriptor: d, Offset: n}
		switch n {
		case 0:
			e.Kind = ocistream.BlobStarted
		case d.Size:
			e.Kind = ocistream.BlobDone
		}
		event(e)
	}
}
