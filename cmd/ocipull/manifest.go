package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func newManifestCommand(st *state) *cli.Command {
	var format string
	return &cli.Command{
		Name:      "manifest",
		Usage:     "print the raw manifest or index of a reference",
		ArgsUsage: "REF",
		UsageText: "ocipull manifest [options] REF",
		Description: `Print the manifest (or index) that REF names on stdout, byte for byte as the
registry stores it (plus a newline on a terminal), after checking it against its
digest. With --platform and a multi-platform REF, print the manifest of that platform
instead of the index.

--format json prints the same bytes: the manifest is JSON already, and its bytes are
what its digest covers. --format TEMPLATE runs the Go template on the parsed
manifest: for an image manifest .MediaType, .Config (.Config.Digest, .Config.Size),
.Layers, .Annotations, .Subject; for an index .Manifests (each with .Digest and
.Platform). The digest of the manifest itself is what resolve prints.

Examples:
   ocipull manifest alpine:3.20 | jq .
   ocipull manifest --platform linux/arm64/v8 alpine:3.20
   ocipull manifest --format '{{.Config.Digest}}' --platform linux/amd64 alpine:3.20
   ocipull manifest --format '{{range .Manifests}}{{.Platform.Architecture}} {{.Digest}}{{"\n"}}{{end}}' alpine
   ocipull manifest ghcr.io/owner/app@sha256:0123... > manifest.json`,
		Flags: []cli.Flag{formatFlag(&format)},
		Action: oneArg("REF", func(ctx context.Context, cmd *cli.Command, arg string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			return st.manifest(ctx, cmd, arg, f)
		}),
	}
}

func (st *state) manifest(ctx context.Context, cmd *cli.Command, arg string, f outputFormat) error {
	r, t, c, err := st.refClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	desc, body, err := st.fetchManifest(ctx, c, r)
	if err != nil {
		return st.fail(t, err)
	}
	w := stdout(cmd)
	if f.tmpl != nil {
		var v any
		if ocitypes.IsIndex(desc.MediaType) {
			v, err = ocitypes.ParseIndex(desc.MediaType, body)
		} else {
			v, err = ocitypes.ParseManifest(desc.MediaType, body)
		}
		if err != nil {
			return st.fail(t, fmt.Errorf("manifest %s: %w", r, err))
		}
		return st.fail(t, f.write(w, v))
	}
	if _, err := w.Write(body); err != nil {
		return st.fail(t, err)
	}
	if isTerminal(w) && !bytes.HasSuffix(body, []byte("\n")) {
		// For the prompt's sake; a pipe gets the bytes exactly.
		_, err = w.Write([]byte("\n"))
	}
	return st.fail(t, err)
}

// fetchManifest fetches what r names; with --platform and an index, the manifest of
// that platform (one more request), its descriptor carrying the platform.
func (st *state) fetchManifest(ctx context.Context, c *ocistream.Client, r ref.Reference) (ocitypes.Descriptor, []byte, error) {
	desc, body, err := c.Manifest(ctx, r.String())
	if err != nil || st.opts.plat == nil || !ocitypes.IsIndex(desc.MediaType) {
		return desc, body, err
	}
	return selectPlatform(ctx, c, r, desc, body, *st.opts.plat)
}

// selectPlatform fetches the manifest for plat from the index desc/body that r named.
func selectPlatform(ctx context.Context, c *ocistream.Client, r ref.Reference, desc ocitypes.Descriptor, body []byte, plat ocitypes.Platform) (ocitypes.Descriptor, []byte, error) {
	idx, err := ocitypes.ParseIndex(desc.MediaType, body)
	if err != nil {
		return ocitypes.Descriptor{}, nil, fmt.Errorf("index %s: %w", r, err)
	}
	child, err := ocitypes.SelectManifest(idx, plat)
	if err != nil {
		return ocitypes.Descriptor{}, nil, err
	}
	cdesc, cbody, err := c.Manifest(ctx, r.WithDigest(child.Digest).String())
	if err != nil {
		return ocitypes.Descriptor{}, nil, err
	}
	cdesc.Platform = child.Platform
	return cdesc, cbody, nil
}
