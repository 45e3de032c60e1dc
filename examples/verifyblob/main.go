// Command verifyblob downloads one blob and checks it: [ocistream.Client.BlobDescriptor]
// asks the registry for its size (a HEAD request), then [ocistream.Client.Blob]
// streams it through a reader that counts and hashes every byte and fails on the read
// that would have ended a short or wrong blob. A dropped connection is resumed with a
// Range request, invisibly to the reader. The bytes go to -o FILE, or nowhere.
//
//	go run ./examples/verifyblob alpine@sha256:0123...
//	go run ./examples/verifyblob -plain-http -o layer.tar.gz localhost:5000/app@sha256:4567...
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ref"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk plain HTTP, not HTTPS (to a local test registry and its token server)")
	output := flag.String("o", "", "write the verified bytes to this file (removed if they turn out wrong)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: verifyblob [flags] REPOSITORY@DIGEST\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("verifyblob: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *plainHTTP, *output); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, arg string, plainHTTP bool, output string) (err error) {
	r, err := ref.Parse(arg)
	if err != nil {
		return err
	}
	if r.Digest() == "" {
		return fmt.Errorf("%s: want REPOSITORY@DIGEST", arg)
	}
	opts := []ocistream.Option{ocistream.WithCredentials(ocistream.NewKeychain(nil))}
	if plainHTTP {
		opts = append(opts, ocistream.WithPlainHTTP())
	}
	client, err := ocistream.New(opts...)
	if err != nil {
		return err
	}

	desc, err := client.BlobDescriptor(ctx, r.Name(), r.Digest())
	if err != nil {
		return err
	}
	blob, err := client.Blob(ctx, r.Name(), desc)
	if err != nil {
		return err
	}
	defer blob.Close()

	dst := io.Discard
	if output != "" {
		f, cerr := os.Create(output)
		if cerr != nil {
			return cerr
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(output)
			}
		}()
		dst = f
	}
	n, err := io.Copy(dst, blob) // fails with ocistream.ErrDigestMismatch on a wrong byte
	if err != nil {
		return err
	}
	fmt.Printf("%s verified, %d bytes\n", desc.Digest, n)
	return nil
}
