package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// generatorVersion changes whenever the generated content would; a cached plan of
// another version is generated again.
const generatorVersion = 1

// fileSize is the size of each file inside a generated layer tar; with its 512-byte
// header an entry takes exactly 4 MiB.
const fileSize = 4<<20 - 512

// imageSpec describes one benchmark image.
type imageSpec struct {
	name      string // repository, tagged "latest"
	platforms []ocispec.Platform
	layers    int   // per platform
	layerSize int64 // uncompressed tar size of each layer, roughly its compressed size too
	// pullPlatform is what the benchmark pulls of an index ("" for a single manifest).
	pullPlatform string
}

var imageSpecs = map[string]imageSpec{
	"big": {name: "big", platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}},
		layers: 4, layerSize: 256 << 20},
	"many": {name: "many", platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}},
		layers: 64, layerSize: 1 << 20},
	"one": {name: "one", platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}},
		layers: 1, layerSize: 256 << 20},
	"multi": {name: "multi", platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		layers: 2, layerSize: 25 << 20, pullPlatform: "linux/amd64"},
}

// imageOrder is the order images are listed and benchmarked in.
var imageOrder = []string{"big", "many", "multi", "one"}

// plan is what was generated for one image, as cached in <cache>/<name>.json: every
// blob (configs, layers, manifests) lives in <cache>/blobs/sha256/<hex>.
type plan struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// Blobs are the configs and layers, pushed first.
	Blobs []ocispec.Descriptor `json:"blobs"`
	// Manifests are pushed in order, by digest, after the blobs; the last one is the
	// root, also tagged "latest".
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// root returns the descriptor of the tagged manifest or index.
func (p *plan) root() ocispec.Descriptor { return p.Manifests[len(p.Manifests)-1] }

// blobPath returns where the cache keeps the blob dg.
func blobPath(cache string, dg digest.Digest) string {
	return filepath.Join(cache, "blobs", string(dg.Algorithm()), dg.Encoded())
}

// loadPlan returns the cached plan of name when it is current and all its blobs are
// present with the right sizes.
func loadPlan(cache, name string) (*plan, bool) {
	b, err := os.ReadFile(filepath.Join(cache, name+".json"))
	if err != nil {
		return nil, false
	}
	var p plan
	if json.Unmarshal(b, &p) != nil || p.Version != generatorVersion || p.Name != name || len(p.Manifests) == 0 {
		return nil, false
	}
	for _, d := range append(append([]ocispec.Descriptor{}, p.Blobs...), p.Manifests...) {
		fi, err := os.Stat(blobPath(cache, d.Digest))
		if err != nil || fi.Size() != d.Size {
			return nil, false
		}
	}
	return &p, true
}

// ensureImage returns the plan of image spec, generating its blobs into cache unless
// a current plan is cached.
func ensureImage(cache string, spec imageSpec, logf func(string, ...any)) (*plan, error) {
	if p, ok := loadPlan(cache, spec.name); ok {
		logf("image %s: cached (%s)", spec.name, p.root().Digest)
		return p, nil
	}
	start := time.Now()
	p := &plan{Version: generatorVersion, Name: spec.name}
	type job struct {
		platform, layer int
		seed            [32]byte
	}
	var jobs []job
	for pi := range spec.platforms {
		for li := 0; li < spec.layers; li++ {
			jobs = append(jobs, job{platform: pi, layer: li, seed: seedOf(spec.name, pi, li)})
		}
	}
	type layerResult struct {
		desc   ocispec.Descriptor
		diffID digest.Digest
	}
	results := make([]layerResult, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, diffID, err := writeLayer(cache, j.seed, spec.layerSize, fmt.Sprintf("p%d/l%02d", j.platform, j.layer))
			results[i], errs[i] = layerResult{d, diffID}, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("generate %s: %w", spec.name, err)
	}

	var children []ocispec.Descriptor
	for pi, plat := range spec.platforms {
		var layers []ocispec.Descriptor
		var diffIDs []digest.Digest
		for i, j := range jobs {
			if j.platform == pi {
				layers = append(layers, results[i].desc)
				diffIDs = append(diffIDs, results[i].diffID)
			}
		}
		cfg := ocispec.Image{
			Platform: ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture},
			Config:   ocispec.ImageConfig{Labels: map[string]string{"org.ocistream.bench": spec.name}},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		}
		cfgDesc, err := writeJSON(cache, ocispec.MediaTypeImageConfig, cfg)
		if err != nil {
			return nil, err
		}
		p.Blobs = append(p.Blobs, cfgDesc)
		p.Blobs = append(p.Blobs, layers...)
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cfgDesc,
			Layers:    layers,
		}
		mDesc, err := writeJSON(cache, ocispec.MediaTypeImageManifest, m)
		if err != nil {
			return nil, err
		}
		mDesc.Platform = &ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture}
		children = append(children, mDesc)
	}
	if len(children) == 1 {
		c := children[0]
		c.Platform = nil
		p.Manifests = []ocispec.Descriptor{c}
	} else {
		idx := ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageIndex,
			Manifests: children,
		}
		iDesc, err := writeJSON(cache, ocispec.MediaTypeImageIndex, idx)
		if err != nil {
			return nil, err
		}
		p.Manifests = append(children, iDesc)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(cache, spec.name+".json"), b); err != nil {
		return nil, err
	}
	logf("image %s: generated %d layers in %s (%s)", spec.name, len(jobs), time.Since(start).Round(time.Millisecond), p.root().Digest)
	return p, nil
}

// seedOf derives the content seed of one layer from the image name and position.
func seedOf(name string, platform, layer int) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "ocistream-bench/%d/%s", generatorVersion, name)
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(platform))
	binary.BigEndian.PutUint64(n[8:], uint64(layer))
	h.Write(n[:])
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// writeLayer writes a gzip (level 1) tar of incompressible files totalling about size
// bytes into the cache and returns its descriptor and diff ID (the digest of the tar).
func writeLayer(cache string, seed [32]byte, size int64, dir string) (ocispec.Descriptor, digest.Digest, error) {
	tmp, err := os.CreateTemp(filepath.Join(cache, "blobs"), "layer-*.tmp")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	outer := sha256.New()
	counted := &countWriter{w: io.MultiWriter(tmp, outer)}
	gz, err := gzip.NewWriterLevel(counted, gzip.BestSpeed)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	inner := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, inner))
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	epoch := time.Unix(0, 0).UTC()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	remaining := size - 512 - 1024 // the directory entry and the end marker
	for i := 0; remaining > 512; i++ {
		n := min(int64(fileSize), remaining-512)
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/f%03d.bin", dir, i), Mode: 0o644, Size: n, ModTime: epoch, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		for left := n; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			_, _ = rng.Read(chunk)
			if _, err := tw.Write(chunk); err != nil {
				return ocispec.Descriptor{}, "", err
			}
			left -= int64(len(chunk))
		}
		remaining -= 512 + (n+511)/512*512
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := tmp.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	dg := digest.NewDigest(digest.SHA256, outer)
	final := blobPath(cache, dg)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: dg, Size: counted.n}
	return d, digest.NewDigest(digest.SHA256, inner), nil
}

// writeJSON stores v, marshalled, as a blob of the cache.
func writeJSON(cache, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dg := digest.FromBytes(b)
	path := blobPath(cache, dg)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: dg, Size: int64(len(b))}, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dirBytes returns the total size of the regular files under dir.
func dirBytes(dir string) (files int, size int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			files++
			size += fi.Size()
		}
		return nil
	})
	return files, size, err
}
