package main

import (
	"context"
	"encoding/json"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func newResolveCommand(st *state) *cli.Command {
	var format string
	return &cli.Command{
		Name:      "resolve",
		Usage:     "print the descriptor (media type, digest, size) of a reference as JSON",
		ArgsUsage: "REF",
		UsageText: "ocipull resolve [options] REF",
		Description: `Print the descriptor of the manifest or index REF names as JSON on stdout:
{"mediaType": ..., "digest": ..., "size": ...}. It costs one HEAD request, which
Docker Hub does not count as a pull. With --platform and a multi-platform REF, print
the descriptor of that platform's manifest, its platform included.

--format json prints the same object on one line. --format TEMPLATE runs the Go
template on the descriptor: .MediaType, .Digest, .Size, .Platform (with --platform:
.Platform.OS, .Platform.Architecture, .Platform.Variant), .Annotations.

Examples:
   ocipull resolve alpine:3.20
   ocipull resolve --format '{{.Digest}}' alpine:3.20
   ocipull resolve --format '{{.MediaType}} {{.Size}}' alpine:3.20
   ocipull resolve --platform linux/arm64 alpine:3.20`,
		Flags: []cli.Flag{formatFlag(&format)},
		Action: oneArg("REF", func(ctx context.Context, cmd *cli.Command, arg string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			return st.resolve(ctx, cmd, arg, f)
		}),
	}
}

func (st *state) resolve(ctx context.Context, cmd *cli.Command, arg string, f outputFormat) error {
	r, t, c, err := st.refClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	desc, err := c.Resolve(ctx, r.String())
	if err == nil && st.opts.plat != nil && ocitypes.IsIndex(desc.MediaType) {
		desc, _, err = st.fetchManifest(ctx, c, r)
	}
	if err != nil {
		return st.fail(t, err)
	}
	if f.custom() {
		return st.fail(t, f.write(stdout(cmd), desc))
	}
	enc := json.NewEncoder(stdout(cmd))
	enc.SetIndent("", "  ")
	return st.fail(t, enc.Encode(desc))
}

// refClient parses a REF argument and returns it, the target for error messages and a
// client for its registry. Errors are ready to return from the command.
func (st *state) refClient(ctx context.Context, cmd *cli.Command, arg string) (ref.Reference, target, *ocistream.Client, error) {
	r, err := ref.Parse(arg)
	if err != nil {
		return ref.Reference{}, target{}, nil, st.fail(target{name: arg}, err)
	}
	t := target{name: r.String(), host: r.Registry()}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return r, t, nil, st.fail(t, err)
	}
	return r, t, c, nil
}
