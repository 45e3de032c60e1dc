package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema2 media types, for the images built by makeDockerImage.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// The platforms of the images built by makeIndex when none are given.
var (
	platformAMD64   = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	platformARM64v8 = ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	platformARMv7   = ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	// defaultPlatforms is linux/amd64, linux/arm64/v8, linux/arm/v7.
	defaultPlatforms = []ocispec.Platform{platformAMD64, platformARM64v8, platformARMv7}
)

// seedTime is the fixed creation time of every generated config and tar entry.
var seedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// testImage is one generated single-platform image: its blobs, their
// descriptors and the exact manifest bytes the registry stores.
type testImage struct {
	// Manifest is the exact manifest JSON pushed.
	Manifest []byte
	// ManifestDesc describes Manifest: media type, digest, size, and the
	// image's platform (as it appears in an index).
	ManifestDesc ocispec.Descriptor
	// Config is the exact config JSON.
	Config []byte
	// ConfigDesc describes Config.
	ConfigDesc ocispec.Descriptor
	// Layers are the compressed layer blobs (gzip'd tars), in manifest order.
	Layers [][]byte
	// LayerDescs describe Layers, in manifest order.
	LayerDescs []ocispec.Descriptor
	// DiffIDs are the digests of the uncompressed layer tars (rootfs.diff_ids).
	DiffIDs []digest.Digest
	// Platform is the image's platform.
	Platform ocispec.Platform
}

// Blobs returns the config and the layers keyed by digest.
func (img testImage) Blobs() map[digest.Digest][]byte {
	m := map[digest.Digest][]byte{img.ConfigDesc.Digest: img.Config}
	for i, d := range img.LayerDescs {
		m[d.Digest] = img.Layers[i]
	}
	return m
}

// Descriptors returns the config descriptor followed by the layer descriptors.
func (img testImage) Descriptors() []ocispec.Descriptor {
	return append([]ocispec.Descriptor{img.ConfigDesc}, img.LayerDescs...)
}

// BlobSize returns the total size of config and layers in bytes.
func (img testImage) BlobSize() int64 {
	n := img.ConfigDesc.Size
	for _, d := range img.LayerDescs {
		n += d.Size
	}
	return n
}

// testIndex is a generated multi-platform index (OCI image index or Docker
// manifest list) and its child images.
type testIndex struct {
	// Index is the exact index JSON pushed.
	Index []byte
	// Desc describes Index (media type, digest, size).
	Desc ocispec.Descriptor
	// Images are the children, in the index's order.
	Images []testImage
}

// Image returns the child image whose platform is exactly p.
func (ix testIndex) Image(p ocispec.Platform) (testImage, bool) {
	for _, img := range ix.Images {
		if img.Platform.OS == p.OS && img.Platform.Architecture == p.Architecture && img.Platform.Variant == p.Variant {
			return img, true
		}
	}
	return testImage{}, false
}

// makeBlob returns size pseudo-random bytes determined by seed. It costs
// about a millisecond per MiB.
func makeBlob(seed int64, size int64) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// makeLayer returns a gzip'd (level 1) tar holding one regular file of size
// pseudo-random bytes named name, and the digest of the uncompressed tar.
// The output is deterministic. Random content does not compress: the blob is
// about size + 1.5 KiB.
func makeLayer(seed int64, name string, size int64) (blob []byte, diffID digest.Digest) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     size,
		ModTime:  seedTime,
		Format:   tar.FormatPAX,
	}
	// Writes to a bytes.Buffer cannot fail; the tar writer only errs on a
	// header/size mismatch, which this code does not produce.
	if err := tw.WriteHeader(hdr); err != nil {
		panic(fmt.Sprintf("tar header: %v", err))
	}
	if _, err := tw.Write(makeBlob(seed, size)); err != nil {
		panic(fmt.Sprintf("tar body: %v", err))
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("tar close: %v", err))
	}
	diffID = digest.FromBytes(tarBuf.Bytes())

	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.BestSpeed)
	if err != nil {
		panic(fmt.Sprintf("gzip writer: %v", err))
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		panic(fmt.Sprintf("gzip write: %v", err))
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("gzip close: %v", err))
	}
	return gzBuf.Bytes(), diffID
}

// imageFlavor selects the media types of a generated image.
type imageFlavor struct {
	manifest, config, layer string
}

var (
	ociFlavor    = imageFlavor{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip}
	dockerFlavor = imageFlavor{mediaTypeDockerManifest, mediaTypeDockerConfig, mediaTypeDockerLayerGzip}
)

// makeImage builds a deterministic OCI image for platform with one layer per
// entry of layerSizes; each layer is a gzip'd tar of one file
// "layer-<i>.bin" of that many pseudo-random bytes, so the blob is slightly
// larger than the size given. The config has correct rootfs.diff_ids. The
// same arguments always give the same digests. Cost: about 5 ms per MiB. A
// negative size is a bug in the calling test and panics.
func makeImage(seed int64, layerSizes []int64, platform ocispec.Platform) testImage {
	return buildImage(ociFlavor, seed, layerSizes, platform)
}

// makeDockerImage is makeImage with Docker schema2 media types
// (application/vnd.docker.distribution.manifest.v2+json, a
// ...container.image.v1+json config and ...rootfs.diff.tar.gzip layers).
func makeDockerImage(seed int64, layerSizes []int64, platform ocispec.Platform) testImage {
	return buildImage(dockerFlavor, seed, layerSizes, platform)
}

// buildImage builds an image of the given flavor. See makeImage.
func buildImage(fl imageFlavor, seed int64, layerSizes []int64, platform ocispec.Platform) testImage {
	img := testImage{Platform: platform}
	history := make([]ocispec.History, 0, len(layerSizes))
	for i, size := range layerSizes {
		blob, diffID := makeLayer(seed*1000003+int64(i), fmt.Sprintf("layer-%d.bin", i), size)
		img.Layers = append(img.Layers, blob)
		img.DiffIDs = append(img.DiffIDs, diffID)
		img.LayerDescs = append(img.LayerDescs, ocispec.Descriptor{
			MediaType: fl.layer,
			Digest:    digest.FromBytes(blob),
			Size:      int64(len(blob)),
		})
		history = append(history, ocispec.History{Created: &seedTime, CreatedBy: fmt.Sprintf("e2e seed %d layer %d", seed, i)})
	}
	created := seedTime
	cfg := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"/bin/sh"},
			Labels: map[string]string{
				"org.opencontainers.image.description": fmt.Sprintf("ocistream e2e image, seed %d", seed),
			},
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: append([]digest.Digest{}, img.DiffIDs...)},
		History: history,
	}
	img.Config = mustJSON(cfg)
	img.ConfigDesc = ocispec.Descriptor{MediaType: fl.config, Digest: digest.FromBytes(img.Config), Size: int64(len(img.Config))}

	layers := img.LayerDescs
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: fl.manifest,
		Config:    img.ConfigDesc,
		Layers:    layers,
	}
	img.Manifest = mustJSON(m)
	p := platform
	img.ManifestDesc = ocispec.Descriptor{
		MediaType: fl.manifest,
		Digest:    digest.FromBytes(img.Manifest),
		Size:      int64(len(img.Manifest)),
		Platform:  &p,
	}
	return img
}

// makeIndex builds a deterministic OCI image index with one makeImage child
// per platform (defaultPlatforms when none are given); child i uses seed
// seed*100+i, so children differ.
func makeIndex(seed int64, layerSizes []int64, platforms ...ocispec.Platform) testIndex {
	return buildIndex(ociFlavor, ocispec.MediaTypeImageIndex, seed, layerSizes, platforms)
}

// makeDockerManifestList is makeIndex with Docker schema2 media types: a
// manifest list of makeDockerImage children.
func makeDockerManifestList(seed int64, layerSizes []int64, platforms ...ocispec.Platform) testIndex {
	return buildIndex(dockerFlavor, mediaTypeDockerManifestList, seed, layerSizes, platforms)
}

// buildIndex builds an index of the given flavor. See makeIndex.
func buildIndex(fl imageFlavor, mediaType string, seed int64, layerSizes []int64, platforms []ocispec.Platform) testIndex {
	if len(platforms) == 0 {
		platforms = defaultPlatforms
	}
	var ix testIndex
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mediaType}
	for i, p := range platforms {
		img := buildImage(fl, seed*100+int64(i), layerSizes, p)
		ix.Images = append(ix.Images, img)
		idx.Manifests = append(idx.Manifests, img.ManifestDesc)
	}
	ix.Index = mustJSON(idx)
	ix.Desc = ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(ix.Index), Size: int64(len(ix.Index))}
	return ix
}

// mustJSON marshals v, which is always one of the spec types above.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}

// pushBlob uploads data to repo with a monolithic upload (POST
// /v2/<repo>/blobs/uploads/, then PUT <Location>&digest=...) unless the
// registry already has it (HEAD), and returns its digest. It fails the test
// on any error. Costs two or three requests.
func pushBlob(t testing.TB, reg *testRegistry, repo string, data []byte) digest.Digest {
	t.Helper()
	dgst := digest.FromBytes(data)

	head, _ := http.NewRequest(http.MethodHead, reg.Endpoint("/v2/"+repo+"/blobs/"+dgst.String()), nil)
	resp := reg.do(t, head, repo)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return dgst
	}

	post, _ := http.NewRequest(http.MethodPost, reg.Endpoint("/v2/"+repo+"/blobs/uploads/"), nil)
	resp = reg.do(t, post, repo)
	drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push blob %s to %s: start upload: status %s", dgst, repo, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("push blob %s to %s: upload location: %v", dgst, repo, err)
	}
	q := loc.Query()
	q.Set("digest", dgst.String())
	loc.RawQuery = q.Encode()

	put, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
	put.Header.Set("Content-Type", "application/octet-stream")
	put.ContentLength = int64(len(data))
	resp = reg.do(t, put, repo)
	body := drain(resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob %s to %s: status %s: %s", dgst, repo, resp.Status, body)
	}
	return dgst
}

// pushManifest uploads manifest bytes of mediaType as repo:ref (ref is a tag
// or a digest) and fails the test unless the registry answers 201.
func pushManifest(t testing.TB, reg *testRegistry, repo, ref, mediaType string, manifest []byte) {
	t.Helper()
	put, _ := http.NewRequest(http.MethodPut, reg.Endpoint("/v2/"+repo+"/manifests/"+url.PathEscape(ref)), bytes.NewReader(manifest))
	put.Header.Set("Content-Type", mediaType)
	resp := reg.do(t, put, repo)
	body := drain(resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest %s:%s: status %s: %s", repo, ref, resp.Status, body)
	}
}

// pushImage uploads img's config and layers to repo, then its manifest under
// tag, or under its digest only when tag is "". It fails the test on error.
func pushImage(t testing.TB, reg *testRegistry, repo, tag string, img testImage) {
	t.Helper()
	pushBlob(t, reg, repo, img.Config)
	for _, l := range img.Layers {
		pushBlob(t, reg, repo, l)
	}
	ref := tag
	if ref == "" {
		ref = img.ManifestDesc.Digest.String()
	}
	pushManifest(t, reg, repo, ref, img.ManifestDesc.MediaType, img.Manifest)
}

// pushIndex uploads every child image of ix to repo by digest, then the index
// under tag (or under its digest only when tag is ""). It fails the test on
// error.
func pushIndex(t testing.TB, reg *testRegistry, repo, tag string, ix testIndex) {
	t.Helper()
	for _, img := range ix.Images {
		pushImage(t, reg, repo, "", img)
	}
	ref := tag
	if ref == "" {
		ref = ix.Desc.Digest.String()
	}
	pushManifest(t, reg, repo, ref, ix.Desc.MediaType, ix.Index)
}

// drain reads up to 1 MiB of resp's body for error messages and closes it.
func drain(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_, _ = io.Copy(io.Discard, resp.Body)
	return b
}
