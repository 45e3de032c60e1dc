package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/credentials"
	"github.com/ocistream/ocistream/hosts"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// options are the global flags, shared by every command.
type options struct {
	platform      string
	allPlatforms  bool
	plainHTTP     bool
	insecure      bool
	username      string
	password      string
	passwordStdin bool
	concurrency   int
	quiet         bool
	verbose       bool
	hostsDirs     string

	// Set by validate.
	plat  *ocitypes.Platform // parsed --platform, nil when not given
	hosts *hosts.Config      // --hosts-dir, or the default directories that exist
}

// state is what the commands of one run share: the options and what was learnt
// while running (for the error message).
type state struct {
	opts options

	// credsFrom says where the credential handed to the client for the command's
	// registry came from ("-u", "the keychain"); nil while none was.
	credsFrom atomic.Pointer[string]

	warnOnce sync.Once
}

// globalFlags returns the flags every command accepts, bound to o. They may be given
// before or after the command name.
func globalFlags(o *options) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:        "platform",
			Usage:       "pick `OS/ARCH[/VARIANT]` from a multi-platform image (default: linux and the host's architecture)",
			Sources:     cli.EnvVars("OCIPULL_PLATFORM"),
			Destination: &o.platform,
		},
		&cli.BoolFlag{
			Name:        "all-platforms",
			Usage:       "pull every platform of a multi-platform image",
			Destination: &o.allPlatforms,
		},
		&cli.BoolFlag{
			Name:        "plain-http",
			Usage:       "talk plain HTTP, not HTTPS, to the registry named on the command line",
			Sources:     cli.EnvVars("OCIPULL_PLAIN_HTTP"),
			Destination: &o.plainHTTP,
		},
		&cli.BoolFlag{
			Name:        "insecure",
			Usage:       "skip TLS certificate verification for the registry named on the command line",
			Sources:     cli.EnvVars("OCIPULL_INSECURE"),
			Destination: &o.insecure,
		},
		&cli.StringFlag{
			Name: "hosts-dir",
			Usage: "read registry mirrors, CAs and client certificates from `DIR`s (a list separated by colons; \"\" for none) " +
				"in containerd's format (DIR/HOST[:PORT]/hosts.toml) or docker's certs.d (DIR/HOST:PORT/ca.crt, client.cert, client.key) " +
				"(default: /etc/containerd/certs.d:/etc/docker/certs.d, those that exist)",
			Sources:     cli.EnvVars("OCIPULL_HOSTS_DIR"),
			Destination: &o.hostsDirs,
		},
		&cli.StringFlag{
			Name:        "username",
			Aliases:     []string{"u"},
			Usage:       "log in as `USER` to the registry named on the command line (other hosts use the keychain)",
			Sources:     cli.EnvVars("OCIPULL_USERNAME"),
			Destination: &o.username,
		},
		&cli.StringFlag{
			Name:        "password",
			Aliases:     []string{"p"},
			Usage:       "`PASSWORD` or token for --username (prefer --password-stdin or OCIPULL_PASSWORD)",
			Sources:     cli.EnvVars("OCIPULL_PASSWORD"),
			Destination: &o.password,
		},
		&cli.BoolFlag{
			Name:        "password-stdin",
			Usage:       "read the password for --username from stdin",
			Destination: &o.passwordStdin,
		},
		&cli.IntFlag{
			Name:        "concurrency",
			Usage:       "download `N` blobs at once (default: 4, or the number of CPUs if more)",
			Sources:     cli.EnvVars("OCIPULL_CONCURRENCY"),
			HideDefault: true,
			Destination: &o.concurrency,
		},
		&cli.BoolFlag{
			Name:        "quiet",
			Aliases:     []string{"q"},
			Usage:       "print only the result: no progress, no summary",
			Destination: &o.quiet,
		},
		&cli.BoolFlag{
			Name:        "verbose",
			Aliases:     []string{"v"},
			Usage:       "print every HTTP request, one line per blob event, and the full error chain",
			Destination: &o.verbose,
		},
	}
}

// validate checks the flags against each other and parses --platform.
func (o *options) validate(cmd *cli.Command) error {
	if o.platform != "" {
		p, err := ocitypes.ParsePlatform(o.platform)
		if err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
		o.plat = &p
	}
	if err := o.loadHosts(cmd); err != nil {
		return err
	}
	switch {
	case o.quiet && o.verbose:
		return errors.New("--quiet and --verbose exclude each other")
	case o.password != "" && o.passwordStdin:
		return errors.New("--password and --password-stdin exclude each other")
	case (o.password != "" || o.passwordStdin) && o.username == "":
		return errors.New("a password needs --username")
	case o.username != "" && o.password == "" && !o.passwordStdin && cmd.Args().First() != "login":
		return errors.New("--username needs --password, --password-stdin or OCIPULL_PASSWORD")
	case cmd.IsSet("concurrency") && o.concurrency < 1:
		return fmt.Errorf("--concurrency %d: must be at least 1", o.concurrency)
	}
	if env, ok := os.LookupEnv("OCIPULL_PASSWORD"); o.password != "" && (!ok || env != o.password) && !o.quiet {
		// Typed on the command line: every local user can read it in ps.
		fmt.Fprintln(stderr(cmd), "ocipull: warning: a password given with -p is visible to other users of this machine (ps); prefer --password-stdin or OCIPULL_PASSWORD")
	}
	return nil
}

// loadHosts opens the hosts directories: those of --hosts-dir (or OCIPULL_HOSTS_DIR,
// a list like containerd's config_path), else the default ones that exist. Their
// files are read when a registry they configure is first used.
func (o *options) loadHosts(cmd *cli.Command) error {
	if !cmd.IsSet("hosts-dir") {
		o.hosts = hosts.Default()
		return nil
	}
	c, err := hosts.New(filepath.SplitList(o.hostsDirs)...)
	if err != nil {
		return fmt.Errorf("--hosts-dir: %w", err)
	}
	o.hosts = c
	return nil
}

// stderr returns the root command's error stream.
func stderr(cmd *cli.Command) io.Writer { return cmd.Root().ErrWriter }

// stdout returns the root command's output stream.
func stdout(cmd *cli.Command) io.Writer { return cmd.Root().Writer }

// registryArg checks a REGISTRY argument ("host[:port]", "docker.io", with or
// without an http(s):// prefix) and returns it without scheme or trailing slash,
// and whether the scheme asked for plain HTTP.
func registryArg(s string) (host string, plain bool, err error) {
	host = s
	if rest, ok := strings.CutPrefix(host, "http://"); ok {
		host, plain = rest, true
	} else {
		host = strings.TrimPrefix(host, "https://")
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.ContainsAny(host, "/@ \t") {
		return "", false, fmt.Errorf("invalid registry %q: want host[:port], like ghcr.io or localhost:5000", ref.RedactUserinfo(s))
	}
	return host, plain, nil
}

// newClient returns a client for a command about the registries named on the command
// line (one, or two for copy). The connection flags (--plain-http, --insecure) apply to
// them alone, and the credentials of -u/-p to the first; every other host (a token
// server, a storage redirect) gets the keychain's.
func (st *state) newClient(ctx context.Context, cmd *cli.Command, named ...string) (*ocistream.Client, error) {
	o := &st.opts
	host := named[0]
	opts := []ocistream.Option{ocistream.WithUserAgent("ocipull/" + ocistream.Version)}
	// A token server or mirror on another port of the same machine is part of the
	// same deployment: the flags cover the registry's host name on every port.
	var hosts []string
	for _, h := range named {
		hosts = append(hosts, h)
		if name, _, err := net.SplitHostPort(h); err == nil && name != "" {
			hosts = append(hosts, name)
		}
	}
	if o.plainHTTP {
		opts = append(opts, ocistream.WithPlainHTTP(hosts...))
	}
	if o.insecure {
		opts = append(opts, ocistream.WithInsecureSkipVerify(hosts...))
	}
	if o.concurrency > 0 {
		opts = append(opts, ocistream.WithConcurrency(o.concurrency))
	}
	errw := stderr(cmd)
	if o.hosts != nil && len(o.hosts.Dirs()) > 0 {
		opts = append(opts, ocistream.WithHosts(o.hosts))
	}
	if !o.quiet {
		opts = append(opts, ocistream.WithRetryNotify(func(n ocistream.RetryNotice) {
			fmt.Fprintf(errw, "ocipull: %s\n", n)
		}))
	}
	if o.verbose {
		opts = append(opts, ocistream.WithLogger(newDebugLogger(errw)))
	}
	keychain := ocistream.NewKeychain(&ocistream.KeychainOptions{
		Logf: func(format string, args ...any) {
			if o.verbose {
				fmt.Fprintf(errw, "credentials: "+format+"\n", args...)
			}
		},
	})
	var static ocistream.CredentialStore
	if o.username != "" {
		password := o.password
		if o.passwordStdin {
			p, err := readPassword(cmd.Root().Reader)
			if err != nil {
				return nil, usageError{err}
			}
			password = p
		}
		static = ocistream.StaticCredentials(host, ocistream.Credential{Username: o.username, Password: password})
	}
	store := ocistream.CredentialFunc(func(ctx context.Context, h string) (ocistream.Credential, error) {
		if static != nil {
			c, err := static.Credential(ctx, h)
			if err != nil || !c.IsZero() {
				st.noteCredential(h, host, "-u")
				return c, err
			}
		}
		c, err := keychain.Credential(ctx, h)
		if err != nil {
			// Like docker with a broken config.json: say so, and go on anonymously.
			st.warn(errw, fmt.Sprintf("ignoring stored credentials: %v", err))
			return ocistream.Credential{}, nil
		}
		if !c.IsZero() {
			st.noteCredential(h, host, "the keychain")
		}
		return c, nil
	})
	opts = append(opts, ocistream.WithCredentials(store))
	return ocistream.New(opts...)
}

// noteCredential records that a credential for the command's registry was used.
func (st *state) noteCredential(h, host, from string) {
	if credentials.CanonicalHost(h) == credentials.CanonicalHost(host) {
		st.credsFrom.CompareAndSwap(nil, &from)
	}
}

// warn prints msg once per run, unless --quiet.
func (st *state) warn(w io.Writer, msg string) {
	st.warnOnce.Do(func() {
		if !st.opts.quiet {
			fmt.Fprintf(w, "ocipull: warning: %s\n", msg)
		}
	})
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("--password-stdin: no stdin")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: stdin holds no password")
	}
	return line, nil
}

// newDebugLogger logs the SDK's debug records (one line per HTTP exchange) to w,
// without time stamps or levels.
func newDebugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
}
