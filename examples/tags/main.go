// Command tags prints the tags of a repository, one a line, as the registry pages
// through them: a range over [ocistream.Client.Tags], an iterator that fetches each
// page only when the loop reaches it.
//
// Credentials come from -username and -password, else from docker's config.json and
// podman's auth.json (the keychain).
//
//	go run ./examples/tags ghcr.io/owner/app
//	go run ./examples/tags -plain-http -username alice -password s3cret localhost:5000/team/app
//	go run ./examples/tags -limit 10 alpine
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ref"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk plain HTTP, not HTTPS (to a local test registry and its token server)")
	username := flag.String("username", "", "user name for the registry (default: the keychain's)")
	password := flag.String("password", "", "password or token for -username")
	limit := flag.Int("limit", 0, "stop after this many tags (0: all)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tags [flags] REPOSITORY\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("tags: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *plainHTTP, *username, *password, *limit); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, repository string, plainHTTP bool, username, password string, limit int) error {
	repo, err := ref.ParseRepository(repository)
	if err != nil {
		return err
	}
	var creds ocistream.CredentialStore = ocistream.NewKeychain(nil)
	if username != "" {
		creds = ocistream.StaticCredentials(repo.Registry(), ocistream.Credential{Username: username, Password: password})
	}
	opts := []ocistream.Option{ocistream.WithCredentials(creds)}
	if plainHTTP {
		opts = append(opts, ocistream.WithPlainHTTP())
	}
	client, err := ocistream.New(opts...)
	if err != nil {
		return err
	}

	n := 0
	for tag, err := range client.Tags(ctx, repository, nil) {
		if err != nil {
			return err // the iteration's last pair: nothing follows an error
		}
		fmt.Println(tag)
		if n++; n == limit {
			break // no further page is requested
		}
	}
	return nil
}
