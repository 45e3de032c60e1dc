package layout_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// putBlob writes data into dir as a blob of the given media type and returns its
// descriptor.
func putBlob(ctx context.Context, dir *layout.Dir, mediaType string, data []byte) ocitypes.Descriptor {
	desc := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	w, err := dir.OpenBlob(ctx, desc)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[w.Offset():]); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	return desc
}

func ExampleVerify() {
	tmp, err := os.MkdirTemp("", "verify-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	// A layout holding one image: a layer, its config and its manifest.
	dir, err := layout.OpenDir(filepath.Join(tmp, "app"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()
	layer := putBlob(ctx, dir, ocitypes.MediaTypeOCILayer, []byte("the bytes of a layer"))
	config := putBlob(ctx, dir, ocitypes.MediaTypeOCIConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	manifest := putBlob(ctx, dir, ocitypes.MediaTypeOCIManifest, fmt.Appendf(nil,
		`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocitypes.MediaTypeOCIManifest, config.MediaType, config.Digest, config.Size, layer.MediaType, layer.Digest, layer.Size))
	name, err := ref.Parse("example.com/team/app:v1")
	if err != nil {
		log.Fatal(err)
	}
	if err := dir.Tag(ctx, name, manifest); err != nil {
		log.Fatal(err)
	}

	report, err := layout.Verify(ctx, dir.Path(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Blobs, "blobs,", report.Bytes, "bytes, ok:", report.OK())

	// Damage the layer: one byte changes.
	if err := os.WriteFile(dir.BlobPath(layer.Digest), []byte("the bytes of a lawyer"[:layer.Size]), 0o644); err != nil {
		log.Fatal(err)
	}
	report, err = layout.Verify(ctx, dir.Path(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", report.OK())
	for _, p := range report.Problems {
		fmt.Println(p.Kind, p.Digest == layer.Digest, p.Path == "blobs/sha256/"+layer.Digest.Encoded())
		fmt.Println(p.Detail)
	}
	// Output:
	// 3 blobs, 451 bytes, ok: true
	// ok: false
	// corrupt true true
	// content hashes to sha256:f95c6eeb8223321f87c503ccd7382e8b6f122c028756dd491c5583ca3da43745
}
