package ocistream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

// exampleServer serves an in-memory registry that setup fills, on loopback.
func exampleServer(setup func(reg *fakeregistry.Registry)) *httptest.Server {
	reg := fakeregistry.New()
	setup(reg)
	return httptest.NewServer(reg)
}

// exampleRegistry serves the tags of one repository to clients presenting Basic
// credentials, like a registry:2 with htpasswd auth.
func exampleRegistry() *httptest.Server {
	return exampleServer(func(reg *fakeregistry.Registry) {
		reg.SetAuth(fakeregistry.Auth{Scheme: "basic", Username: "reader", Password: "s3cret"})
		for _, tag := range []string{"1.0", "1.1", "latest"} {
			reg.PushImage("team/app", tag, ocitypes.Platform{OS: "linux", Architecture: "amd64"})
		}
	})
}

// Range over the tags of a repository that needs credentials. Pages are fetched as
// the loop asks for them; the registry's 401 challenge is answered with the
// credentials for its host.
func ExampleClient_Tags() {
	srv := exampleRegistry()
	defer srv.Close()
	host := srv.Listener.Addr().String()

	c, err := ocistream.New(
		ocistream.WithPlainHTTP(host), // a local test registry; real ones speak HTTPS
		ocistream.WithCredentials(ocistream.StaticCredentials(host, ocistream.Credential{Username: "reader", Password: "s3cret"})),
	)
	if err != nil {
		log.Fatal(err)
	}
	for tag, err := range c.Tags(context.Background(), host+"/team/app", nil) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tag)
	}
	// Output:
	// 1.0
	// 1.1
	// latest
}

// Collect gathers a whole walk into a slice.
func ExampleCollect() {
	srv := exampleRegistry()
	defer srv.Close()
	host := srv.Listener.Addr().String()
	c, _ := ocistream.New(ocistream.WithPlainHTTP(host),
		ocistream.WithCredentials(ocistream.StaticCredentials(host, ocistream.Credential{Username: "reader", Password: "s3cret"})))
	tags, err := ocistream.Collect(c.Tags(context.Background(), host+"/team/app", nil))
	fmt.Println(tags, err)
	// Output: [1.0 1.1 latest] <nil>
}

// Pull an image into an OCI image layout directory. A second pull of the same image
// downloads nothing; an interrupted one continues where it stopped.
func ExampleClient_Pull() {
	srv := exampleServer(func(reg *fakeregistry.Registry) {
		pushImage(reg, "team/app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 1024, 1)
	})
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	tmp, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(tmp)
	dir, err := layout.OpenDir(filepath.Join(tmp, "app"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()

	c, _ := ocistream.New(ocistream.WithPlainHTTP(u.Host))
	var downloaded int
	desc, err := c.Pull(context.Background(), u.Host+"/team/app:v1", dir, &ocistream.PullOptions{
		Platform: &ocitypes.Platform{OS: "linux", Architecture: "amd64"},
		Progress: func(e ocistream.ProgressEvent) {
			if e.Kind == ocistream.BlobDone {
				downloaded++
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(desc.MediaType)
	fmt.Println("blobs downloaded:", downloaded)
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// blobs downloaded: 3
}

// Stream a blob in Range-requested chunks; the iterator verifies the digest of the
// whole once the last chunk is read.
func ExampleClient_BlobChunks() {
	blob := []byte("0123456789abcdefghij")
	d := ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	srv := exampleServer(func(reg *fakeregistry.Registry) { reg.PutBlob("team/app", fakeregistry.Bytes(blob)) })
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, _ := ocistream.New(ocistream.WithPlainHTTP(u.Host))

	for chunk, err := range c.BlobChunks(context.Background(), u.Host+"/team/app", d, 8) {
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(chunk.Body)
		fmt.Printf("%d+%d %s\n", chunk.Offset, chunk.Length, b)
	}
	// Output:
	// 0+8 01234567
	// 8+8 89abcdef
	// 16+4 ghij
}

// Pull into an OCI image layout directory from a registry that speaks plain HTTP (a
// registry:2 on localhost). WithPlainHTTP names the hosts that may be reached without
// TLS; every other host stays HTTPS-only. The descriptor is used only once err is nil.
func ExampleWithPlainHTTP() {
	srv := exampleServer(func(reg *fakeregistry.Registry) {
		reg.PushImage("team/app", "v1", ocitypes.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
			fakeregistry.Generated(7, 512), fakeregistry.Generated(8, 512))
	})
	defer srv.Close()
	host := srv.Listener.Addr().String() // "127.0.0.1:PORT", as "localhost:5000" would be

	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	c, err := ocistream.New(ocistream.WithPlainHTTP(host))
	if err != nil {
		log.Fatal(err)
	}
	dir, err := layout.OpenDir(filepath.Join(tmp, "app"), nil)
	if err != nil {
		log.Fatal(err)
	}
	desc, err := c.Pull(context.Background(), host+"/team/app:v1", dir, &ocistream.PullOptions{
		Platform: &ocitypes.Platform{OS: "linux", Architecture: "arm64"},
	})
	if cerr := dir.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(desc.MediaType, desc.Digest.Validate() == nil)
	// Output:
	// application/vnd.oci.image.manifest.v1+json true
}

// Put a tar on disk only when it is complete: the pull streams into a temporary file
// in the same directory, which is synced and renamed over the final name only once
// the pull and the tar's trailer succeeded. A failed pull leaves nothing under that
// name (and removes its temporary file).
func ExampleClient_Pull_tarFile() {
	srv := exampleServer(func(reg *fakeregistry.Registry) {
		reg.PushImage("team/app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, fakeregistry.Generated(3, 256))
	})
	defer srv.Close()
	host := srv.Listener.Addr().String()
	c, err := ocistream.New(ocistream.WithPlainHTTP(host))
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	name := filepath.Join(tmp, "app.tar")

	pullTar := func(ref string) (err error) {
		f, err := os.CreateTemp(filepath.Dir(name), ".app.tar.*.partial")
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}()
		tw := layout.NewTar(f, nil)
		if _, err := c.Pull(context.Background(), ref, tw, nil); err != nil {
			return err
		}
		if err := tw.Close(); err != nil { // index.json, manifest.json and the trailer
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), name)
	}

	err = pullTar(host + "/team/app:nope")
	_, statErr := os.Stat(name)
	fmt.Println("missing tag:", errors.Is(err, ocistream.ErrNotFound), "file exists:", statErr == nil)

	if err := pullTar(host + "/team/app:v1"); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// missing tag: true file exists: false
	// app.tar
}
