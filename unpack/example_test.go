package unpack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/unpack"
)

// Unpack an image into a directory. The source here is held in memory; a program
// passes a registry repository instead:
//
//	c, _ := ocistream.New()
//	repo, _ := c.Repository("alpine:3.20")
//	res, err := unpack.Image(ctx, repo, "alpine-rootfs", nil)
func ExampleImage() {
	src := exampleSource()
	dir := filepath.Join(os.TempDir(), "unpack-example")
	defer os.RemoveAll(dir)

	res, err := unpack.Image(context.Background(), src, dir, &unpack.Options{Overwrite: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("layers:", len(res.Layers))
	b, _ := os.ReadFile(filepath.Join(dir, "etc/motd"))
	fmt.Printf("etc/motd: %s", b)
	target, _ := os.Readlink(filepath.Join(dir, "motd"))
	fmt.Println("motd ->", target)
	// Output:
	// layers: 1
	// etc/motd: hello
	// motd -> etc/motd
}

// memSource serves blobs held in memory. (A real Source also verifies each blob
// against its digest as it reads.)
type memSource struct {
	root  ocitypes.Descriptor
	blobs map[digest.Digest][]byte
}

func (s *memSource) Resolve(context.Context) (ocitypes.Descriptor, error) { return s.root, nil }

func (s *memSource) Fetch(_ context.Context, d ocitypes.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.blobs[d.Digest])), nil
}

func (s *memSource) add(mediaType string, b []byte) ocitypes.Descriptor {
	d := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	s.blobs[d.Digest] = b
	return d
}

// exampleSource builds an image of one uncompressed layer.
func exampleSource() *memSource {
	s := &memSource{blobs: map[digest.Digest][]byte{}}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd", Mode: 0o644, Size: 6})
	tw.Write([]byte("hello\n"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "motd", Linkname: "etc/motd"})
	tw.Close()

	cfg, _ := json.Marshal(ocitypes.Image{
		Platform: ocitypes.HostPlatform(),
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer.Bytes())}},
	})
	m := ocitypes.Manifest{
		MediaType: ocitypes.MediaTypeOCIManifest,
		Config:    s.add(ocitypes.MediaTypeOCIConfig, cfg),
		Layers:    []ocitypes.Descriptor{s.add(ocitypes.MediaTypeOCILayer, layer.Bytes())},
	}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	s.root = s.add(ocitypes.MediaTypeOCIManifest, mb)
	return s
}
