package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
)

func newCatalogCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "catalog",
		Usage:     "list the repositories of a registry, one a line",
		ArgsUsage: "REGISTRY",
		UsageText: "ocipull catalog [options] REGISTRY",
		Description: `Print the repositories of REGISTRY (host[:port]) on stdout, one a line, in the
registry's order. Pages are fetched as the list is printed. Many hosted registries
(Docker Hub, GHCR) refuse to list their repositories.

Examples:
   ocipull catalog registry.example.com
   ocipull --plain-http catalog localhost:5000`,
		Action: oneArg("REGISTRY", func(ctx context.Context, cmd *cli.Command, arg string) error {
			return st.catalog(ctx, cmd, arg)
		}),
	}
}

func (st *state) catalog(ctx context.Context, cmd *cli.Command, arg string) error {
	host, t, c, err := st.registryClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(stdout(cmd))
	for repo, err := range c.Catalog(ctx, host, nil) {
		if err != nil {
			return st.fail(t, errors.Join(err, out.Flush()))
		}
		fmt.Fprintln(out, repo)
	}
	return st.fail(t, out.Flush())
}

// registryClient parses a REGISTRY argument ("host[:port]", "http://host" for plain
// HTTP) and returns its API host, the target for error messages and a client for it.
// Errors are ready to return from the command.
func (st *state) registryClient(ctx context.Context, cmd *cli.Command, arg string) (string, target, *ocistream.Client, error) {
	host, plain, err := registryArg(arg)
	if err != nil {
		return "", target{}, nil, usageError{err}
	}
	st.opts.plainHTTP = st.opts.plainHTTP || plain
	t := target{name: host, host: host}
	c, err := st.newClient(ctx, cmd, host)
	if err != nil {
		return "", t, nil, st.fail(t, err)
	}
	return host, t, c, nil
}
