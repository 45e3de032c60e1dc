package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
)

func newCatalogCommand(st *state) *cli.Command {
	var format string
	return &cli.Command{
		Name:      "catalog",
		Usage:     "list the repositories of a registry, one a line",
		ArgsUsage: "REGISTRY",
		UsageText: "ocipull catalog [options] REGISTRY",
		Description: `Print the repositories of REGISTRY (host[:port]) on stdout, one a line, in the
registry's order. Pages are fetched as the list is printed. Many hosted registries
(Docker Hub, GHCR) refuse to list their repositories.

--format json prints one JSON array of the repositories instead. --format TEMPLATE
runs the Go template for each repository, with .Name (team/app, also what {{.}}
prints), .Registry (localhost:5000) and .Repository (localhost:5000/team/app); a
newline ends each output.

Examples:
   ocipull catalog registry.example.com
   ocipull catalog --format json registry.example.com | jq -r '.[]'
   ocipull --plain-http catalog --format '{{.Repository}}' localhost:5000`,
		Flags: []cli.Flag{formatFlag(&format)},
		Action: oneArg("REGISTRY", func(ctx context.Context, cmd *cli.Command, arg string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			return st.catalog(ctx, cmd, arg, f)
		}),
	}
}

func (st *state) catalog(ctx context.Context, cmd *cli.Command, arg string, f outputFormat) error {
	host, t, c, err := st.registryClient(ctx, cmd, arg)
	if err != nil {
		return err
	}
	out := newListWriter(stdout(cmd), f)
	for repo, err := range c.Catalog(ctx, host, nil) {
		if err == nil {
			err = out.item(repo, repoItem{Name: repo, Registry: host, Repository: host + "/" + repo})
		}
		if err != nil {
			return st.fail(t, errors.Join(err, out.abort()))
		}
	}
	return st.fail(t, out.close())
}

// repoItem is what a catalog --format template sees for each repository; JSON
// prints the name.
type repoItem struct {
	Name       string // "team/app"
	Registry   string // "localhost:5000"
	Repository string // "localhost:5000/team/app"
}

func (r repoItem) String() string { return r.Name }

func (r repoItem) MarshalJSON() ([]byte, error) { return json.Marshal(r.Name) }

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
