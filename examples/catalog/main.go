// Command catalog walks the repository catalog of a registry, printing one
// repository a line, and with -tags the tags of each: two nested ranges over
// [ocistream.Client.Catalog] and [ocistream.Client.Tags], both fetched page by page as
// the loops advance. Many hosted registries (Docker Hub, GHCR) refuse the catalog;
// private ones (registry:2, Harbor, Artifactory) serve it.
//
//	go run ./examples/catalog registry.example.com
//	go run ./examples/catalog -plain-http -tags -page-size 50 localhost:5000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/ocistream/ocistream"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk plain HTTP, not HTTPS (to a local test registry and its token server)")
	withTags := flag.Bool("tags", false, "list the tags of each repository too")
	pageSize := flag.Int("page-size", 0, "names asked per page (0: the registry's choice)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: catalog [flags] REGISTRY\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("catalog: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *plainHTTP, *withTags, *pageSize); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, registry string, plainHTTP, withTags bool, pageSize int) error {
	opts := []ocistream.Option{
		ocistream.WithCredentials(ocistream.NewKeychain(nil)),
		ocistream.WithPageSize(pageSize),
	}
	if plainHTTP {
		opts = append(opts, ocistream.WithPlainHTTP())
	}
	client, err := ocistream.New(opts...)
	if err != nil {
		return err
	}

	repos := 0
	for repo, err := range client.Catalog(ctx, registry, nil) {
		if err != nil {
			return err
		}
		repos++
		if !withTags {
			fmt.Println(repo)
			continue
		}
		var tags []string
		for tag, err := range client.Tags(ctx, registry+"/"+repo, nil) {
			if err != nil {
				return fmt.Errorf("%s: %w", repo, err)
			}
			tags = append(tags, tag)
		}
		fmt.Printf("%s\t%s\n", repo, strings.Join(tags, " "))
	}
	log.Printf("%d repositories", repos)
	return nil
}
