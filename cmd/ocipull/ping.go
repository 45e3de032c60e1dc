package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"
)

func newPingCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "check that a registry answers and accepts the credentials",
		ArgsUsage: "REGISTRY",
		UsageText: "ocipull ping [options] REGISTRY",
		Description: `Check that REGISTRY (host[:port]) speaks the distribution API and that the
credentials, if any, are accepted: one GET of /v2/, plus a token request when the
registry asks for one. Prints "REGISTRY: ok" (nothing with --quiet) and exits 0, or
says what failed and exits 1.

Examples:
   ocipull ping ghcr.io
   ocipull --plain-http ping localhost:5000
   ocipull -u alice --password-stdin ping registry.example.com < token.txt`,
		Action: oneArg("REGISTRY", func(ctx context.Context, cmd *cli.Command, arg string) error {
			return st.ping(ctx, cmd, arg)
		}),
	}
}

func (st *state) ping(ctx context.Context, cmd *cli.Command, arg string) error {
	host, t, c, err := st.registryClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	if err := c.Ping(ctx, host); err != nil {
		return st.fail(t, err)
	}
	if !st.opts.quiet {
		fmt.Fprintf(stdout(cmd), "%s: ok\n", host)
	}
	return nil
}
