package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream/ref"
)

func newTagsCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "tags",
		Usage:     "list the tags of a repository, one a line",
		ArgsUsage: "REPO",
		UsageText: "ocipull tags [options] REPO",
		Description: `Print the tags of the repository REPO (a name without tag or digest) on stdout, one a
line, in the registry's order. Pages are fetched as the list is printed, following
the registry's Link headers.

Examples:
   ocipull tags alpine
   ocipull tags ghcr.io/owner/app | grep '^v1\.'
   ocipull --plain-http tags localhost:5000/team/app`,
		Action: oneArg("REPO", func(ctx context.Context, cmd *cli.Command, arg string) error {
			return st.tags(ctx, cmd, arg)
		}),
	}
}

func (st *state) tags(ctx context.Context, cmd *cli.Command, arg string) error {
	r, err := ref.ParseRepository(arg)
	if err != nil {
		return st.fail(target{name: arg}, err)
	}
	t := target{name: r.Name(), host: r.Registry()}
	c, err := st.newClient(ctx, cmd, r.Registry())
	if err != nil {
		return st.fail(t, err)
	}
	out := bufio.NewWriter(stdout(cmd))
	for tag, err := range c.Tags(ctx, r.Name(), nil) {
		if err != nil {
			return st.fail(t, errors.Join(err, out.Flush()))
		}
		fmt.Fprintln(out, tag)
	}
	return st.fail(t, out.Flush())
}
