package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"
)

func newPingCommand(st *state) *cli.Command {
	var format string
	return &cli.Command{
		Name:      "ping",
		Usage:     "check that a registry answers and accepts the credentials",
		ArgsUsage: "REGISTRY",
		UsageText: "ocipull ping [options] REGISTRY",
		Description: `Check that REGISTRY (host[:port]) speaks the distribution API and that the
credentials, if any, are accepted: one GET of /v2/, plus a token request when the
registry asks for one. Prints "REGISTRY: ok" (nothing with --quiet) and exits 0, or
says what failed and exits 1.

--format json prints {"registry": HOST, "ok": true, "authenticated": BOOL} instead,
authenticated saying whether credentials were asked for and accepted; --format
TEMPLATE runs the Go template on it (.Registry, .OK, .Authenticated).

Examples:
   ocipull ping ghcr.io
   ocipull --plain-http ping localhost:5000
   ocipull ping --format '{{.Authenticated}}' registry.example.com
   ocipull -u alice --password-stdin ping registry.example.com < token.txt`,
		Flags: []cli.Flag{formatFlag(&format)},
		Action: oneArg("REGISTRY", func(ctx context.Context, cmd *cli.Command, arg string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			return st.ping(ctx, cmd, arg, f)
		}),
	}
}

func (st *state) ping(ctx context.Context, cmd *cli.Command, arg string, f outputFormat) error {
	host, t, c, err := st.registryClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	if err := c.Ping(ctx, host); err != nil {
		return st.fail(t, err)
	}
	if f.custom() {
		return st.fail(t, f.write(stdout(cmd), pingResult{Registry: host, OK: true, Authenticated: st.credsFrom.Load() != nil}))
	}
	if !st.opts.quiet {
		fmt.Fprintf(stdout(cmd), "%s: ok\n", host)
	}
	return nil
}

// pingResult is what ping --format prints.
type pingResult struct {
	Registry      string `json:"registry"`
	OK            bool   `json:"ok"`
	Authenticated bool   `json:"authenticated"`
}
