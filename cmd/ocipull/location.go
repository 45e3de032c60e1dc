package main

import (
	"context"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
)

// openSource opens the image a SRC argument names and returns it with a function
// that releases it. Only registry references are read here: oci:PATH and
// oci-archive:PATH need the layout sources. Errors are ready to return from the
// command.
func (st *state) openSource(ctx context.Context, cmd *cli.Command, arg string) (ocistream.Source, func() error, error) {
	for _, scheme := range []string{"oci:", "oci-archive:"} {
		if strings.HasPrefix(arg, scheme) {
			return nil, nil, usagef("%s: %s sources are not supported by this build; give a registry reference", arg, strings.TrimSuffix(scheme, ":"))
		}
	}
	r, t, c, err := st.refClient(ctx, cmd, arg)
	if err != nil {
		return nil, nil, err
	}
	repo, err := c.Repository(r.String())
	if err != nil {
		return nil, nil, st.fail(t, err)
	}
	return repo, func() error { return nil }, nil
}
