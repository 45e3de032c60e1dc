package layout

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// AnnotationRefName is the index.json annotation holding the tag of an image
	// ("latest"), as the OCI image layout specification suggests.
	AnnotationRefName = v1.AnnotationRefName
	// AnnotationImageName is the index.json annotation holding the full name of an
	// image ("docker.io/library/ubuntu:latest"), as containerd and docker write it.
	AnnotationImageName = "io.containerd.image.name"

	// layoutVersion is the only oci-layout version this package reads and writes.
	layoutVersion = "1.0.0"
)

// ociLayoutJSON is the content of the oci-layout file.
var ociLayoutJSON = []byte(`{"imageLayoutVersion":"` + layoutVersion + `"}`)

// maxIndexSize bounds index.json: about 200,000 entries.
const maxIndexSize = 64 << 20

// readIndexFile reads the index.json at path, a regular file of at most maxIndexSize
// bytes.
func readIndexFile(path string) ([]byte, error) {
	b, err := readRegular(path, maxIndexSize+1)
	if err == nil && len(b) > maxIndexSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, errdef.ErrInvalidLayout, maxIndexSize)
	}
	return b, err
}

// emptyIndex returns an image index with no entries.
func emptyIndex() ocitypes.Index {
	idx := ocitypes.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []ocitypes.Descriptor{}}
	idx.SchemaVersion = 2
	return idx
}

// encodeIndex returns index.json's bytes: compact JSON and a newline.
func encodeIndex(idx ocitypes.Index) ([]byte, error) {
	if idx.Manifests == nil {
		idx.Manifests = []ocitypes.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encode index.json: %w", err)
	}
	return append(b, '\n'), nil
}

// decodeIndex parses index.json; anything but an image index of schema version 2 is an
// error wrapping errdef.ErrInvalidLayout.
func decodeIndex(b []byte) (ocitypes.Index, error) {
	var idx ocitypes.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocitypes.Index{}, fmt.Errorf("index.json: %w: %v", errdef.ErrInvalidLayout, err)
	}
	if idx.SchemaVersion != 2 {
		return ocitypes.Index{}, fmt.Errorf("index.json: %w: schemaVersion %d, want 2", errdef.ErrInvalidLayout, idx.SchemaVersion)
	}
	if idx.MediaType != "" && idx.MediaType != v1.MediaTypeImageIndex {
		return ocitypes.Index{}, fmt.Errorf("index.json: %w: media type %q", errdef.ErrInvalidLayout, idx.MediaType)
	}
	if idx.Manifests == nil {
		idx.Manifests = []ocitypes.Descriptor{}
	}
	return idx, nil
}

// checkLayoutFile checks the content of an oci-layout file.
func checkLayoutFile(b []byte) error {
	var l v1.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("oci-layout: %w: %v", errdef.ErrInvalidLayout, err)
	}
	if l.Version != layoutVersion {
		return fmt.Errorf("oci-layout: %w: imageLayoutVersion %q, want %q", errdef.ErrInvalidLayout, l.Version, layoutVersion)
	}
	return nil
}

// checkDescriptor checks what a destination needs of a blob descriptor: a digest of an
// available algorithm, in canonical form (so that it is a safe file name), and a size.
func checkDescriptor(d ocitypes.Descriptor) error {
	if !d.Digest.Algorithm().Available() {
		return fmt.Errorf("blob %q: %w: digest algorithm %q", d.Digest, errdef.ErrUnsupported, d.Digest.Algorithm())
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s: negative size %d", d.Digest, d.Size)
	}
	return nil
}

// checkRoot checks the root descriptor given to Tag.
func checkRoot(root ocitypes.Descriptor) error {
	if err := checkDescriptor(root); err != nil {
		return err
	}
	if !ocitypes.IsIndex(root.MediaType) && !ocitypes.IsManifest(root.MediaType) {
		return fmt.Errorf("root %s: %w: media type %q is neither a manifest nor an index", root.Digest, errdef.ErrInvalidManifest, root.MediaType)
	}
	return nil
}

// indexEntry returns the index.json descriptor naming root as name: the root
// descriptor with the tag as AnnotationRefName (omitted when name has no tag) and the
// full name as AnnotationImageName.
func indexEntry(name ref.Reference, root ocitypes.Descriptor) ocitypes.Descriptor {
	e := root
	e.Annotations = make(map[string]string, len(root.Annotations)+2)
	maps.Copy(e.Annotations, root.Annotations)
	delete(e.Annotations, AnnotationRefName)
	if tag := name.Tag(); tag != "" {
		e.Annotations[AnnotationRefName] = tag
	}
	e.Annotations[AnnotationImageName] = name.String()
	return e
}

// mergeEntry puts e into manifests: it replaces the entries with the same
// AnnotationImageName (the first one in place, dropping the others) or is appended.
func mergeEntry(manifests []ocitypes.Descriptor, e ocitypes.Descriptor) []ocitypes.Descriptor {
	name := e.Annotations[AnnotationImageName]
	out := manifests[:0:0]
	replaced := false
	for _, m := range manifests {
		if m.Annotations[AnnotationImageName] == name {
			if !replaced {
				out = append(out, e)
				replaced = true
			}
			continue
		}
		out = append(out, m)
	}
	if !replaced {
		out = append(out, e)
	}
	return out
}

// familiarRepoTag returns the short repository name docker prints ("ubuntu",
// "ghcr.io/org/app") and the tag of name; tag is "" when name has none.
func familiarRepoTag(name ref.Reference) (repo, tag string) {
	return name.FamiliarName(), name.Tag()
}
