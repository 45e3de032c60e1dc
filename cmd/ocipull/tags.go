package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream/ref"
)

func newTagsCommand(st *state) *cli.Command {
	var format string
	return &cli.Command{
		Name:      "tags",
		Usage:     "list the tags of a repository, one a line",
		ArgsUsage: "REPO",
		UsageText: "ocipull tags [options] REPO",
		Description: `Print the tags of the repository REPO (a name without tag or digest) on stdout, one a
line, in the registry's order. Pages are fetched as the list is printed, following
the registry's Link headers.

--format json prints one JSON array of the tags instead. --format TEMPLATE runs the Go
template for each tag, with .Name (the tag, also what {{.}} prints), .Repository
(docker.io/library/alpine) and .Reference (docker.io/library/alpine:3.20); a newline
ends each output.

Examples:
   ocipull tags alpine
   ocipull tags ghcr.io/owner/app | grep '^v1\.'
   ocipull tags --format json alpine | jq 'length'
   ocipull tags --format '{{.Reference}}' ghcr.io/owner/app
   ocipull --plain-http tags localhost:5000/team/app`,
		Flags: []cli.Flag{formatFlag(&format)},
		Action: oneArg("REPO", func(ctx context.Context, cmd *cli.Command, arg string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			return st.tags(ctx, cmd, arg, f)
		}),
	}
}

func (st *state) tags(ctx context.Context, cmd *cli.Command, arg string, f outputFormat) error {
	r, err := ref.ParseRepository(arg)
	if err != nil {
		return st.fail(target{name: arg}, err)
	}
	t := target{name: r.Name(), host: r.Registry()}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return st.fail(t, err)
	}
	out := newListWriter(stdout(cmd), f)
	for tag, err := range c.Tags(ctx, r.Name(), nil) {
		if err == nil {
			err = out.item(tag, tagItem{Name: tag, Repository: r.Name(), Reference: r.Name() + ":" + tag})
		}
		if err != nil {
			return st.fail(t, errors.Join(err, out.abort()))
		}
	}
	return st.fail(t, out.close())
}

// tagItem is what a tags --format template sees for each tag; JSON prints the tag.
type tagItem struct {
	Name       string // "3.20"
	Repository string // "docker.io/library/alpine"
	Reference  string // "docker.io/library/alpine:3.20"
}

func (t tagItem) String() string { return t.Name }

func (t tagItem) MarshalJSON() ([]byte, error) { return json.Marshal(t.Name) }
