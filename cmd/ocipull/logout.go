package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream/credentials"
)

func newLogoutCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove the credentials stored for a registry",
		ArgsUsage: "[REGISTRY]",
		UsageText: "ocipull logout [REGISTRY]",
		Description: `Remove the credentials stored for REGISTRY (host[:port]; Docker Hub when left out)
from where ocipull login and docker login store them: the credential program that
DOCKER_CONFIG/config.json names for the registry (credHelpers, else credsStore), and
every "auths" entry of the registry in that file, whatever its spelling. Nothing
stored is not an error: it prints "not logged in to REGISTRY" and exits 0.
Credentials in podman's auth.json are left alone (podman logout removes them).

Examples:
   ocipull logout ghcr.io
   ocipull logout          # Docker Hub`,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			arg, err := optionalRegistry(cmd)
			if err != nil {
				return err
			}
			return st.logout(ctx, cmd, arg)
		},
	}
}

func (st *state) logout(ctx context.Context, cmd *cli.Command, arg string) error {
	host, _, err := registryArg(arg)
	if err != nil {
		return usageError{err}
	}
	path := credentials.DockerConfigPath(nil)
	loc, erased, err := credentials.Erase(ctx, path, host)
	if err != nil {
		return st.fail(target{name: host, host: host, dest: path}, err)
	}
	if st.opts.quiet {
		return nil
	}
	if !erased {
		fmt.Fprintf(stdout(cmd), "not logged in to %s\n", host)
		return nil
	}
	fmt.Fprintf(stdout(cmd), "logged out of %s (removed from %s)\n", host, loc)
	return nil
}
