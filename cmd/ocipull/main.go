// Command ocipull pulls container images, manifests and blobs from OCI and Docker
// registries, streaming and verifying every byte.
//
//	ocipull pull     [flags] REF [-o DIR | -o FILE.tar | -o -]
//	ocipull tags     [flags] REPO
//	ocipull catalog  [flags] REGISTRY
//	ocipull manifest [flags] REF
//	ocipull resolve  [flags] REF
//	ocipull blob     [flags] REPO@DIGEST [-o FILE]
//	ocipull ping     [flags] REGISTRY
//	ocipull verify   [flags] DIR
//	ocipull login    [-u USER] [--password-stdin] [REGISTRY]
//	ocipull logout   [REGISTRY]
//	ocipull completion bash|zsh|fish|pwsh
//
// Data goes to stdout, everything else (progress, summaries, errors) to stderr. An
// error is one line on stderr starting with "ocipull: " and a non-zero exit status:
// 1 when the operation failed, 2 for a usage error, 130 when interrupted. Run
// "ocipull COMMAND --help" for the flags and examples of each command.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
)

// Exit statuses.
const (
	exitFailure     = 1   // the operation failed
	exitUsage       = 2   // bad arguments or flags
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it)
)

func init() {
	// The default version flag takes -v, which is --verbose here.
	cli.VersionFlag = &cli.BoolFlag{
		Name:        "version",
		Usage:       "print the version",
		HideDefault: true,
		Local:       true,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the pull winds down cleanly (partial blobs are kept
		// for the next run); a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args with the given streams and returns the exit status.
// It prints the error, if any, as one line on stderr (more with --verbose).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	st := &state{}
	root := newRootCommand(st)
	root.Reader, root.Writer, root.ErrWriter = stdin, stdout, stderr
	err := root.Run(ctx, args)
	if err == nil {
		return 0
	}
	return report(ctx, stderr, err, st.opts.verbose)
}

// newRootCommand builds the ocipull command tree. st receives the global options
// when the command line is parsed; each call builds fresh flags, so a tree runs once.
func newRootCommand(st *state) *cli.Command {
	root := &cli.Command{
		Name:    "ocipull",
		Usage:   "pull images, manifests and blobs from OCI and Docker registries",
		Version: ocistream.Version,
		Description: `ocipull streams from any registry that speaks the OCI distribution API (Docker Hub,
GHCR, Quay, ECR, ACR, GCR, Harbor, a private registry:2). Every byte is checked
against its digest as it arrives; a dropped connection resumes where it stopped, and
an interrupted pull into a directory continues on the next run.

Credentials come from -u/-p (for the registry of the reference), else from docker's
config.json (DOCKER_CONFIG, credential helpers included) and podman's auth.json
(REGISTRY_AUTH_FILE). Data goes to stdout; progress and errors go to stderr.

Examples:
   ocipull pull alpine:3.20                      # OCI layout in ./alpine
   ocipull pull alpine:3.20 -o alpine.tar        # a tar that docker load accepts
   ocipull pull alpine:3.20 -o - | docker load   # the same tar, streamed
   ocipull tags ghcr.io/owner/app                # one tag a line
   ocipull manifest --platform linux/arm64 alpine | jq .
   ocipull resolve --format '{{.Digest}}' alpine:3.20
   ocipull --plain-http catalog localhost:5000
   ocipull login -u alice registry.example.com
   source <(ocipull completion bash)             # complete commands and flags`,
		EnableShellCompletion: true,
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script: bash, zsh, fish or pwsh"
			c.UsageText = "ocipull completion bash|zsh|fish|pwsh"
			c.Description = `Print the script that completes ocipull's commands and flags in a shell.

Examples:
   source <(ocipull completion bash)                           # in ~/.bashrc
   source <(ocipull completion zsh)                            # in ~/.zshrc
   ocipull completion fish > ~/.config/fish/completions/ocipull.fish`
			c.Action = func(_ context.Context, cmd *cli.Command) error {
				if cmd.Args().Present() {
					return unknownCommand(cmd, cmd.Args().First())
				}
				return usagef("completion wants a shell: bash, zsh, fish or pwsh (see ocipull completion --help)")
			}
			c.OnUsageError = onUsageError
		},
		Flags: globalFlags(&st.opts),
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			if err := st.opts.validate(cmd); err != nil {
				return ctx, usageError{err}
			}
			return ctx, nil
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return unknownCommand(cmd, cmd.Args().First())
			}
			return cli.ShowRootCommandHelp(cmd)
		},
		Commands: []*cli.Command{
			newPullCommand(st),
			newTagsCommand(st),
			newCatalogCommand(st),
			newManifestCommand(st),
			newResolveCommand(st),
			newBlobCommand(st),
			newPingCommand(st),
			newVerifyCommand(st),
			newCopyCommand(st),
			newServeCommand(st),
			newUnpackCommand(st),
			newLoginCommand(st),
			newLogoutCommand(st),
		},
		// Errors are printed by run, once; urfave must neither print nor exit.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
	root.OnUsageError = onUsageError
	for _, c := range root.Commands {
		c.OnUsageError = onUsageError
	}
	return root
}

// oneArg is the Action of a command that takes exactly one argument, named what in the
// usage error (REF, REPO, REGISTRY...).
func oneArg(what string, run func(ctx context.Context, cmd *cli.Command, arg string) error) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		if cmd.Args().Len() != 1 {
			return usagef("%s wants one %s, got %d arguments (see ocipull %s --help)", cmd.Name, what, cmd.Args().Len(), cmd.Name)
		}
		return run(ctx, cmd, cmd.Args().First())
	}
}
