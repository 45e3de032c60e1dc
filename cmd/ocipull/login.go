package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
	"github.com/vbauerster/mpb/v8/cwriter"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/credentials"
	"github.com/ocistream/ocistream/ref"
)

func newLoginCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "check credentials against a registry and store them where docker does",
		ArgsUsage: "[REGISTRY]",
		UsageText: "ocipull login [-u USER] [--password-stdin | -p PASSWORD] [REGISTRY]",
		Description: `Log in to REGISTRY (host[:port]; Docker Hub when left out): the username and
password are checked against the registry first, with the registry's own
authentication (a token request when it uses tokens), and stored only when it accepts
them. They are stored where docker login stores them, so docker, crane, regctl, oras
and every later ocipull command use them: with the credential program that
DOCKER_CONFIG/config.json names (credHelpers for the registry, else credsStore), else
base64-encoded in its "auths" (mode 0600; the other entries are kept). Docker Hub is
stored under https://index.docker.io/v1/, as docker does.

Without -u, the username is asked for; without --password-stdin or -p, the password is
asked for without echo. Both need a terminal: in a script, pass -u and the password on
stdin. A registry that lets anyone in without asking for credentials cannot check
them: they are stored with a warning.

Examples:
   ocipull login -u alice registry.example.com
   echo "$TOKEN" | ocipull login -u USERNAME --password-stdin ghcr.io
   ocipull --plain-http login -u admin localhost:5000
   ocipull logout ghcr.io`,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			arg, err := optionalRegistry(cmd)
			if err != nil {
				return err
			}
			return st.login(ctx, cmd, arg)
		},
	}
}

// optionalRegistry returns the REGISTRY argument of login and logout, Docker Hub when
// none is given.
func optionalRegistry(cmd *cli.Command) (string, error) {
	switch cmd.Args().Len() {
	case 0:
		return ref.HubDomain, nil
	case 1:
		return cmd.Args().First(), nil
	}
	return "", usagef("%s wants at most one REGISTRY, got %d arguments (see ocipull %s --help)", cmd.Name, cmd.Args().Len(), cmd.Name)
}

func (st *state) login(ctx context.Context, cmd *cli.Command, arg string) error {
	host, plain, err := registryArg(arg)
	if err != nil {
		return usageError{err}
	}
	st.opts.plainHTTP = st.opts.plainHTTP || plain
	t := target{name: host, host: host, login: true}
	o := &st.opts
	in := bufio.NewReader(cmd.Root().Reader)
	if o.username == "" {
		if !isTerminalReader(cmd.Root().Reader) {
			return usagef("login: stdin is not a terminal: pass the username with -u and the password on stdin (--password-stdin)")
		}
		fmt.Fprint(stderr(cmd), "Username: ")
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return st.fail(t, err)
		}
		if o.username = strings.TrimSpace(line); o.username == "" {
			return usagef("login: no username given")
		}
	}
	switch {
	case o.passwordStdin:
		p, err := readPassword(in)
		if err != nil {
			return usageError{err}
		}
		o.password, o.passwordStdin = p, false
	case o.password == "":
		f, ok := cmd.Root().Reader.(*os.File)
		if !ok || !isTerminalReader(f) {
			return usagef("login: stdin is not a terminal: pass the password on stdin with --password-stdin")
		}
		fmt.Fprint(stderr(cmd), "Password: ")
		p, err := readPasswordNoEcho(f)
		fmt.Fprintln(stderr(cmd))
		if err != nil {
			return st.fail(t, fmt.Errorf("read the password: %w", err))
		}
		if o.password = p; p == "" {
			return usagef("login: no password given")
		}
	}

	// The client sends -u/-p to host and nothing else: the registry's challenge
	// decides between Basic and a token request, as for every other command.
	c, err := st.newClient(ctx, cmd, host)
	if err != nil {
		return st.fail(t, err)
	}
	if err := c.Ping(ctx, host); err != nil {
		return st.fail(t, err)
	}
	cred := ocistream.Credential{Username: o.username, Password: o.password}
	if st.credsFrom.Load() == nil {
		// The registry answered /v2/ without a challenge: nothing checked them.
		st.warn(stderr(cmd), fmt.Sprintf("%s lets anyone in and did not ask for credentials: storing them unchecked", host))
	}
	path := credentials.DockerConfigPath(nil)
	loc, err := credentials.Save(ctx, path, host, cred)
	if err != nil {
		return st.fail(target{name: host, host: host, dest: path}, err)
	}
	if loc.Helper == "" && !o.quiet {
		fmt.Fprintf(stderr(cmd), "ocipull: warning: the password is stored unencrypted in %s (a credential program, credsStore in that file, keeps it elsewhere)\n", loc.File)
	}
	if !o.quiet {
		fmt.Fprintf(stdout(cmd), "Login Succeeded: %s (stored in %s)\n", host, loc)
	}
	return nil
}

// isTerminalReader reports whether r, a command's stdin, is a terminal.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && cwriter.IsTerminal(int(f.Fd()))
}
