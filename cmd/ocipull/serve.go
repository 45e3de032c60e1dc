package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream/serve"
)

// defaultListen is where serve listens unless --listen says otherwise: loopback only,
// on the port registries conventionally use.
const defaultListen = "127.0.0.1:5000"

// shutdownGrace bounds how long requests in flight may take to finish after SIGINT or
// SIGTERM.
const shutdownGrace = 10 * time.Second

// serveFlags are the flags of the serve command.
type serveFlags struct {
	listen   string
	tlsCert  string
	tlsKey   string
	htpasswd string
}

func newServeCommand(st *state) *cli.Command {
	var f serveFlags
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve an OCI layout directory as a read-only registry",
		ArgsUsage: "DIR",
		UsageText: "ocipull serve [options] DIR",
		Description: `Serve every image of the OCI layout DIR over the OCI distribution API, read-only,
so that any client (docker, podman, containerd, crane, skopeo, ocipull itself)
pulls from it. A repository is the repository part of each image's full name in
DIR/index.json (127.0.0.1:5000/app:v1 is tag v1 of repository app); an image named
only by a tag, as skopeo writes it, belongs to the repository named after DIR.

Manifests and blobs up to 4 MiB are hashed before they are served; larger blobs are
checked by size and sent from the file as is. A blob missing or damaged on disk
answers 404 or 500 and is logged: run ocipull verify DIR. index.json is re-read
when it changes, so an image pulled into DIR meanwhile is served without a restart.
Writes answer 405 UNSUPPORTED.

Once it listens, the address and the repositories are printed on stderr
(--listen 127.0.0.1:0 picks a free port), then one access log line per request.
SIGINT or SIGTERM stops it: requests in flight get 10 seconds to finish.

Examples:
   ocipull serve testdata/hello &
   ocipull --plain-http pull localhost:5000/hello -o hello
   ocipull serve --listen :5000 --tls-cert cert.pem --tls-key key.pem --htpasswd users ./mirror`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "listen",
				Usage:       "the address to listen on, host:port",
				Value:       defaultListen,
				Destination: &f.listen,
			},
			&cli.StringFlag{
				Name:        "tls-cert",
				Usage:       "serve HTTPS with this certificate (PEM; with --tls-key)",
				Destination: &f.tlsCert,
			},
			&cli.StringFlag{
				Name:        "tls-key",
				Usage:       "the private key of --tls-cert (PEM)",
				Destination: &f.tlsKey,
			},
			&cli.StringFlag{
				Name:        "htpasswd",
				Usage:       "require basic auth with the users of this file (bcrypt, as htpasswd -B writes)",
				Destination: &f.htpasswd,
			},
		},
		Action: oneArg("DIR", func(ctx context.Context, cmd *cli.Command, dir string) error {
			return st.serve(ctx, cmd, dir, f)
		}),
	}
}

func (st *state) serve(ctx context.Context, cmd *cli.Command, dir string, f serveFlags) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("serve: --tls-cert and --tls-key go together")
	}
	t := target{name: dir}
	opts := &serve.Options{Logger: slog.New(slog.NewTextHandler(stderr(cmd), nil))}
	if f.htpasswd != "" {
		users, err := serve.LoadHtpasswd(f.htpasswd)
		if err != nil {
			return st.fail(t, err)
		}
		opts.Users = users
	}
	var tlsConfig *tls.Config
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return st.fail(t, fmt.Errorf("load --tls-cert/--tls-key: %w", err))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	h, err := serve.New(dir, opts)
	if err != nil {
		// Said as is: the layout's own error names what is wrong with it.
		return st.fail(t, errors.New(err.Error()))
	}
	defer h.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return st.fail(t, err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stderr(cmd), "serving %s at %s://%s (repositories: %s)\n", dir, scheme, ln.Addr(), listNames(h.Repositories()))

	done := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			done <- srv.ServeTLS(ln, "", "") // HTTP/2 too
			return
		}
		done <- srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return st.fail(t, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
		return st.fail(t, fmt.Errorf("stop: requests still running after %s: %w", shutdownGrace, err))
	}
	fmt.Fprintln(stderr(cmd), "stopped")
	return nil
}

// listNames prints names for the startup line: the first five, then how many more.
func listNames(names []string) string {
	const most = 5
	switch {
	case len(names) == 0:
		return "none"
	case len(names) > most:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
	}
	return strings.Join(names, ", ")
}
