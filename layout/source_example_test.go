package layout_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

func ExampleOpenSource() {
	tmp, err := os.MkdirTemp("", "layout-source")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()
	path := filepath.Join(tmp, "app")

	// A layout holding one image, example.com/team/app:v1.
	dir, err := layout.OpenDir(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	desc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	w, err := dir.OpenBlob(ctx, desc)
	if err != nil {
		log.Fatal(err)
	}
	w.Write(manifest)
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	w.Close()
	name, _ := ref.Parse("example.com/team/app:v1")
	if err := dir.Tag(ctx, name, desc); err != nil {
		log.Fatal(err)
	}
	dir.Close()

	// The same layout as a source of the copy pipeline: the image named v1 (its tag;
	// its full name works too, and "" picks the only image).
	src, err := layout.OpenSource(path, "v1")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	root, err := src.Resolve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	rc, err := src.Fetch(ctx, root) // verified against root.Digest as it is read
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(src.Image().Name, root.MediaType, len(b) == len(manifest))

	_, err = layout.OpenSource(path, "v2")
	fmt.Println(err != nil)
	// Output:
	// example.com/team/app:v1 application/vnd.oci.image.manifest.v1+json true
	// true
}
