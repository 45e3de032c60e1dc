package ocistream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
)

// exampleUploadRegistry keeps what is pushed to it in memory: monolithic blob uploads
// (POST, then PUT ?digest=), manifests by digest and by tag.
func exampleUploadRegistry() *httptest.Server {
	var mu sync.Mutex
	content := map[string][]byte{} // "blobs/<digest>", "manifests/<reference>"
	types := map[string]string{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/") // drop the repository
		switch {
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/app/blobs/uploads/1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut && strings.HasPrefix(path, "blobs/uploads/"):
			body, _ := io.ReadAll(r.Body)
			content["blobs/"+r.URL.Query().Get("digest")] = body
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			content[path] = body
			types[path] = r.Header.Get("Content-Type")
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
			w.WriteHeader(http.StatusCreated)
		default: // GET, HEAD
			body, ok := content[path]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", types[path])
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			if r.Method == http.MethodGet {
				w.Write(body)
			}
		}
	}))
}

// push writes one blob or manifest through a Destination; one the destination has
// already is skipped.
func push(ctx context.Context, dst ocistream.Destination, d ocitypes.Descriptor, body []byte) error {
	w, err := dst.OpenBlob(ctx, d)
	if errors.Is(err, ocistream.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Commit()
}

// A Repository is a Destination: push the blobs, then the manifest that references
// them, then tag it. The copy pipeline does this for a whole image graph.
func ExampleRepository_OpenBlob() {
	srv := exampleUploadRegistry()
	defer srv.Close()
	host := srv.Listener.Addr().String()
	c, err := ocistream.New(ocistream.WithPlainHTTP(host))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dst, err := c.Repository(host + "/app:v1")
	if err != nil {
		log.Fatal(err)
	}

	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDesc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		ocitypes.MediaTypeOCIManifest, configDesc.MediaType, configDesc.Digest, configDesc.Size))
	manifestDesc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}

	for _, step := range []struct {
		d    ocitypes.Descriptor
		body []byte
	}{{configDesc, config}, {manifestDesc, manifest}} {
		if err := push(ctx, dst, step.d, step.body); err != nil {
			log.Fatal(err)
		}
	}
	if err := dst.Tag(ctx, dst.Reference(), manifestDesc); err != nil {
		log.Fatal(err)
	}

	got, err := c.Resolve(ctx, host+"/app:v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Digest == manifestDesc.Digest)
	exists, err := dst.Exists(ctx, configDesc)
	fmt.Println(exists, err)
	// Output:
	// true
	// true <nil>
}
