package fakeregistry

import (
	"encoding/json"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream/ocitypes"
)

// Image is what PushImage stored: the descriptors of its manifest, config and layers.
type Image struct {
	Manifest ocitypes.Descriptor
	Config   ocitypes.Descriptor
	Layers   []ocitypes.Descriptor
}

// PushImage stores a one-platform OCI image in repo: layers as blobs of media type
// application/vnd.oci.image.layer.v1.tar, an image config for platform naming them as
// its diff IDs, and the manifest, tagged tag unless tag is "". It hashes each layer once.
func (r *Registry) PushImage(repo, tag string, platform ocitypes.Platform, layers ...Content) Image {
	var img Image
	var diffIDs []digest.Digest
	for _, l := range layers {
		d := r.PutBlob(repo, l)
		img.Layers = append(img.Layers, ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCILayer, Digest: d, Size: l.Size()})
		diffIDs = append(diffIDs, d)
	}
	img.Config = r.PutJSON(repo, ocitypes.MediaTypeOCIConfig, ocitypes.Image{
		Platform: platform,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	img.Manifest = r.PushManifest(repo, tag, ocitypes.MediaTypeOCIManifest, ocitypes.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocitypes.MediaTypeOCIManifest,
		Config:    img.Config,
		Layers:    img.Layers,
	})
	return img
}

// PushIndex stores an OCI image index of manifests (give each its Platform) in repo,
// tagged tag unless tag is "", and returns its descriptor. The manifests must be in
// repo already.
func (r *Registry) PushIndex(repo, tag string, manifests ...ocitypes.Descriptor) ocitypes.Descriptor {
	return r.PushManifest(repo, tag, ocitypes.MediaTypeOCIIndex, ocitypes.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocitypes.MediaTypeOCIIndex,
		Manifests: manifests,
	})
}

// PushManifest stores v, marshalled to JSON, as a manifest of mediaType in repo,
// tagged tag unless tag is "", and returns its descriptor. It panics if v does not
// marshal.
func (r *Registry) PushManifest(repo, tag, mediaType string, v any) ocitypes.Descriptor {
	body := mustJSON(v)
	d := r.PutManifest(repo, tag, mediaType, body)
	return ocitypes.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

// PutJSON stores v, marshalled to JSON, as a blob of repo and returns its descriptor
// with mediaType. It panics if v does not marshal.
func (r *Registry) PutJSON(repo, mediaType string, v any) ocitypes.Descriptor {
	body := mustJSON(v)
	return ocitypes.Descriptor{MediaType: mediaType, Digest: r.PutBlob(repo, Bytes(body)), Size: int64(len(body))}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakeregistry: " + err.Error())
	}
	return b
}
