package layout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// A manifest without layers, enough to name an image.
var manifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)

func ExampleOpenDir() {
	tmp, err := os.MkdirTemp("", "layout-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	dir, err := layout.OpenDir(filepath.Join(tmp, "app"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()

	desc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	w, err := dir.OpenBlob(ctx, desc)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(manifest[w.Offset():]); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}

	name, err := ref.Parse("example.com/team/app:v1")
	if err != nil {
		log.Fatal(err)
	}
	if err := dir.Tag(ctx, name, desc); err != nil {
		log.Fatal(err)
	}

	filepath.WalkDir(dir.Path(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir.Path(), p)
			fmt.Println(filepath.ToSlash(rel))
		}
		return err
	})
	idx, err := dir.Index()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(idx.Manifests[0].Annotations[layout.AnnotationRefName], idx.Manifests[0].Annotations[layout.AnnotationImageName])
	// Output:
	// blobs/sha256/1ccb399e44f3e0ec86bb1a95031c6b9f81ac77860556a81a90acb79bab8005d9
	// index.json
	// oci-layout
	// v1 example.com/team/app:v1
}

func ExampleNewTar() {
	ctx := context.Background()
	var buf bytes.Buffer
	t := layout.NewTar(&buf, nil)

	desc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCIManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	w, err := t.OpenBlob(ctx, desc)
	if err != nil {
		log.Fatal(err)
	}
	w.Write(manifest)
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	name, _ := ref.Parse("example.com/team/app:v1")
	if err := t.Tag(ctx, name, desc); err != nil {
		log.Fatal(err)
	}
	if err := t.Close(); err != nil {
		log.Fatal(err)
	}

	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(hdr.Name, hdr.Size)
	}
	// Output:
	// blobs/ 0
	// blobs/sha256/ 0
	// blobs/sha256/1ccb399e44f3e0ec86bb1a95031c6b9f81ac77860556a81a90acb79bab8005d9 239
	// oci-layout 30
	// index.json 351
	// manifest.json 3
}
