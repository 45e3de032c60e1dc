package ocistream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// exampleRegistry serves the tags of one repository to clients presenting Basic
// credentials, like a registry:2 with htpasswd auth.
func exampleRegistry() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "reader" || pass != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"name": "team/app", "tags": []string{"1.0", "1.1", "latest"}})
	}))
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
	reg := newMemRegistry()
	reg.pushImage("team/app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 1024, 1)
	srv := httptest.NewServer(reg)
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
	reg := newMemRegistry()
	blob := []byte("0123456789abcdefghij")
	d := reg.addBlob(blob, "application/octet-stream")
	srv := httptest.NewServer(reg)
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
