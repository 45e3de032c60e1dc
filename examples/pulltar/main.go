// Command pulltar pulls an image into a tar file that docker load and podman load
// accept (and that is an OCI image layout too): [ocistream.Client.Pull] into a
// [layout.Tar], streaming each blob straight from the registry into the archive
// while its digest is checked. The archive is written to a temporary file and renamed
// into place only when the pull succeeded.
//
//	go run ./examples/pulltar alpine:3.20 alpine.tar && docker load -i alpine.tar
//	go run ./examples/pulltar -plain-http -platform linux/arm64 localhost:5000/app:v1 app.tar
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk plain HTTP, not HTTPS (to a local test registry and its token server)")
	platform := flag.String("platform", "", "os/arch[/variant] to pull from a multi-platform image (default: the host's)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: pulltar [flags] REFERENCE FILE.tar\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("pulltar: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), flag.Arg(1), *plainHTTP, *platform); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, reference, file string, plainHTTP bool, platform string) (err error) {
	pullOpts := &ocistream.PullOptions{}
	if platform != "" {
		p, err := ocitypes.ParsePlatform(platform)
		if err != nil {
			return err
		}
		pullOpts.Platform = &p
	}
	opts := []ocistream.Option{ocistream.WithCredentials(ocistream.NewKeychain(nil))}
	if plainHTTP {
		opts = append(opts, ocistream.WithPlainHTTP())
	}
	client, err := ocistream.New(opts...)
	if err != nil {
		return err
	}

	f, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.partial")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := layout.NewTar(f, &layout.TarOptions{Platform: pullOpts.Platform})
	desc, err := client.Pull(ctx, reference, tw, pullOpts)
	if err != nil {
		return err
	}
	// Close writes index.json, manifest.json and the tar trailer; the file is only
	// complete after it.
	if err := errors.Join(tw.Close(), f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return err
	}
	fmt.Printf("%s %s\n", desc.Digest, file)
	return nil
}
