package main

import (
	"context"
	"io"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func newBlobCommand(st *state) *cli.Command {
	var output string
	return &cli.Command{
		Name:      "blob",
		Usage:     "download one blob, verified against its digest",
		ArgsUsage: "REPO@DIGEST",
		UsageText: "ocipull blob [options] REPO@DIGEST [-o FILE]",
		Description: `Download the blob DIGEST of the repository REPO (a layer, a config) to stdout or
to FILE, checking its size and digest as it streams. A dropped connection is resumed
with a Range request. With -o, FILE appears only once every byte was verified; on
stdout, a wrong blob ends with an error and a non-zero exit status.

Examples:
   ocipull blob alpine@sha256:0123... -o layer.tar.gz
   ocipull blob alpine@sha256:0123... | tar -tz
   ocipull blob ghcr.io/owner/app@sha256:4567... | jq .   # an image config`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "output",
				Aliases:     []string{"o"},
				Usage:       "write to `FILE` instead of stdout",
				TakesFile:   true,
				Destination: &output,
			},
		},
		Action: oneArg("REPO@DIGEST", func(ctx context.Context, cmd *cli.Command, arg string) error {
			return st.blob(ctx, cmd, arg, output)
		}),
	}
}

func (st *state) blob(ctx context.Context, cmd *cli.Command, arg, output string) error {
	r, err := ref.Parse(arg)
	if err != nil {
		return st.fail(target{name: arg}, err)
	}
	if r.Digest() == "" {
		return usagef("blob wants REPO@DIGEST, like alpine@sha256:0123...; %q has no digest", arg)
	}
	t := target{name: r.Name() + "@" + r.Digest().String(), host: r.Registry(), dest: output}
	if output == "" || output == "-" {
		output, t.dest = "", "stdout"
		if isTerminal(stdout(cmd)) {
			return usagef("refusing to write a blob to a terminal: redirect stdout or pass -o FILE")
		}
	}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return st.fail(t, err)
	}
	desc, err := c.BlobDescriptor(ctx, r.Name(), r.Digest())
	if err != nil {
		return st.fail(t, err)
	}
	prog := st.newProgress(cmd)
	copyBlob := func(w io.Writer) error {
		body, err := c.Blob(ctx, r.Name(), desc)
		if err != nil {
			return err
		}
		defer body.Close()
		prog.event(ocistream.ProgressEvent{Kind: ocistream.BlobStarted, Descriptor: desc})
		pw := &progressWriter{w: w, d: desc, report: prog.event}
		if _, err := io.Copy(pw, body); err != nil {
			prog.event(ocistream.ProgressEvent{Kind: ocistream.BlobFailed, Descriptor: desc, Err: err})
			return err
		}
		prog.event(ocistream.ProgressEvent{Kind: ocistream.BlobDone, Descriptor: desc, Offset: desc.Size})
		return nil
	}
	if output == "" {
		err = copyBlob(stdout(cmd))
	} else {
		err = writeFileAtomic(output, copyBlob)
	}
	prog.finish()
	return st.fail(t, err)
}

// progressWriter reports the bytes written through it every 512 KiB.
type progressWriter struct {
	w       io.Writer
	d       ocitypes.Descriptor
	n, next int64
	report  func(ocistream.ProgressEvent)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n >= p.next {
		p.next = p.n + 512<<10
		p.report(ocistream.ProgressEvent{Kind: ocistream.BlobProgress, Descriptor: p.d, Offset: p.n})
	}
	return n, err
}
