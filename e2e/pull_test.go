package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// pullDir pulls ref into a fresh layout directory and returns it.
func pullDir(t *testing.T, c *ocistream.Client, path, ref string, opts *ocistream.PullOptions) (*layout.Dir, ocitypes.Descriptor, error) {
	t.Helper()
	dir, err := layout.OpenDir(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	desc, err := c.Pull(t.Context(), ref, dir, opts)
	return dir, desc, err
}

// verifyLayout re-hashes every blob reachable from index.json and checks nothing
// under blobs/ is wrong; it returns the number of blobs checked.
func verifyLayout(t *testing.T, path string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(path, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := fmt.Sprintf("%x", h.Sum(nil)); got != filepath.Base(p) {
			t.Errorf("blob %s holds content %s", filepath.Base(p), got)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expectImage checks that the layout at path holds every blob of img.
func expectImage(t *testing.T, path string, img testImage) {
	t.Helper()
	for _, d := range append(img.Descriptors(), img.ManifestDesc) {
		p := filepath.Join(path, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
		st, err := os.Stat(p)
		if err != nil || st.Size() != d.Size {
			t.Errorf("blob %s: %v", d.Digest, err)
		}
	}
}

func TestPullImages(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	multi := makeIndex(10, []int64{200_000, 300_000})
	pushIndex(t, reg, "team/multi", "v1", multi)
	list := makeDockerManifestList(11, []int64{100_000})
	pushIndex(t, reg, "team/list", "v1", list)
	sizes := make([]int64, 64)
	for i := range sizes {
		sizes[i] = 20_000 + int64(i)*100
	}
	many := makeImage(12, sizes, amd64)
	pushImage(t, reg, "team/many", "v1", many)
	docker := makeDockerImage(13, []int64{50_000, 60_000}, amd64)
	pushImage(t, reg, "team/docker", "v1", docker)
	c := sdkClient(t, reg, true)
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}

	t.Run("index selects arm64", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		_, desc, err := pullDir(t, c, path, reg.Ref("team/multi", "v1"), &ocistream.PullOptions{Platform: &arm64})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := multi.Image(ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
		if desc.Digest != want.ManifestDesc.Digest {
			t.Errorf("pulled %s, want the arm64 manifest %s", desc.Digest, want.ManifestDesc.Digest)
		}
		expectImage(t, path, want)
		if n := verifyLayout(t, path); n != 1+len(want.Descriptors()) {
			t.Errorf("layout holds %d blobs, want %d", n, 1+len(want.Descriptors()))
		}
	})
	t.Run("index all platforms", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		_, desc, err := pullDir(t, c, path, reg.Ref("team/multi", "v1"), &ocistream.PullOptions{AllPlatforms: true})
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != multi.Desc.Digest {
			t.Errorf("root = %s, want the index %s", desc.Digest, multi.Desc.Digest)
		}
		for _, img := range multi.Images {
			expectImage(t, path, img)
		}
		verifyLayout(t, path)
	})
	t.Run("docker manifest list", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		if _, _, err := pullDir(t, c, path, reg.Ref("team/list", "v1"), &ocistream.PullOptions{Platform: &amd64}); err != nil {
			t.Fatal(err)
		}
		img, _ := list.Image(amd64)
		expectImage(t, path, img)
	})
	t.Run("64 layers", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		if _, _, err := pullDir(t, c, path, reg.Ref("team/many", "v1"), nil); err != nil {
			t.Fatal(err)
		}
		expectImage(t, path, many)
		if n := verifyLayout(t, path); n != 66 {
			t.Errorf("layout holds %d blobs, want 66", n)
		}
	})
	t.Run("docker schema2 into tar", func(t *testing.T) {
		tarPath := filepath.Join(t.TempDir(), "img.tar")
		f, err := os.Create(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		tw := layout.NewTar(f, nil)
		if _, err := c.Pull(t.Context(), reg.Ref("team/docker", "v1"), tw, nil); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		files := tarEntries(t, tarPath)
		for _, d := range docker.Descriptors() {
			if files["blobs/sha256/"+d.Digest.Encoded()] != d.Size {
				t.Errorf("tar lacks blob %s", d.Digest)
			}
		}
		for _, name := range []string{"oci-layout", "index.json", "manifest.json", "repositories"} {
			if _, ok := files[name]; !ok {
				t.Errorf("tar lacks %s", name)
			}
		}
		skopeoCheck(t, "docker-archive:"+tarPath)
		skopeoCheck(t, "oci-archive:"+tarPath)
	})
	t.Run("second image into the same directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		pullDir(t, c, path, reg.Ref("team/docker", "v1"), nil)
		dir, _, err := pullDir(t, c, path, reg.Ref("team/many", "v1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := dir.Index()
		if err != nil || len(idx.Manifests) != 2 {
			t.Fatalf("index.json has %d entries, %v; want 2", len(idx.Manifests), err)
		}
		skopeoCheck(t, "oci:"+path+":v1")
	})
}

// readWholeTar reads every entry of a tar stream; nil means a complete archive.
func readWholeTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return err
		}
	}
}

// tarEntries lists the regular files of a tar with their sizes.
func tarEntries(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			out[h.Name] = h.Size
		}
	}
}

// skopeoCheck copies src with skopeo (when installed) to a dir: transport, proving
// another tool reads what we wrote.
func skopeoCheck(t *testing.T, src string) {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Log("skopeo not installed; skipping its check of " + src)
		return
	}
	out := filepath.Join(t.TempDir(), "skopeo-out")
	cmd := exec.CommandContext(t.Context(), "skopeo", "--insecure-policy", "copy", src, "dir:"+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("skopeo copy %s: %v\n%s", src, err, b)
	}
}

// TestPullFaults pulls through a fault-injecting proxy in front of the real registry.
// Each fault either heals (the layout then verifies and equals the registry's image) or
// fails with a clear error, and no wrong blob ever lands under blobs/.
func TestPullFaults(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(20, []int64{3 << 20, 2 << 20, 1 << 20}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	tests := []struct {
		name    string
		fault   func(fp *faultProxy)
		opts    []ocistream.Option
		wantErr error // nil: the pull heals
	}{
		{name: "dropped at random offsets", fault: func(fp *faultProxy) { fp.DropRandom(1, 12) }},
		{name: "dropped many times per blob", fault: func(fp *faultProxy) { fp.DropAfter(300_000, 9) }},
		{name: "truncated", fault: func(fp *faultProxy) { fp.Truncate(100_000, 2) }},
		{name: "503 with retry-after", fault: func(fp *faultProxy) { fp.Status(503, "1", 2) }},
		{name: "429 with retry-after", fault: func(fp *faultProxy) { fp.Status(429, "0", 3) }},
		{name: "range ignored after drops", fault: func(fp *faultProxy) { fp.DropAfter(500_000, 3); fp.IgnoreRange(always) }},
		{name: "stalled connection", fault: func(fp *faultProxy) { fp.Stall(100_000, 30*time.Second, 1) }, opts: []ocistream.Option{ocistream.WithReadTimeout(time.Second)}},
		{name: "one flipped byte", fault: func(fp *faultProxy) { fp.FlipByte(1234, always) }, wantErr: ocistream.ErrDigestMismatch},
		{name: "429 beyond the cap", fault: func(fp *faultProxy) { fp.Status(429, "3600", always) }, wantErr: ocistream.ErrTooManyRequests},
		{name: "always dropped", fault: func(fp *faultProxy) { fp.DropAfter(10, always) }, opts: []ocistream.Option{ocistream.WithMaxResumes(4)}, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFaultProxy(t, mustURL(t, reg.URL))
			tt.fault(fp)
			c := sdkClient(t, reg, false, append([]ocistream.Option{ocistream.WithPlainHTTP(fp.Host)}, tt.opts...)...)
			path := filepath.Join(t.TempDir(), "out")
			_, _, err := pullDir(t, c, path, fp.Host+"/team/app:v1", nil)
			verifyLayout(t, path) // never a wrong blob, whatever happened
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pull = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "sha256:") {
					t.Errorf("error %q does not name the blob", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pull = %v (faults injected: %d)", err, fp.FaultCount())
			}
			if fp.FaultCount() == 0 {
				t.Error("no fault was injected")
			}
			expectImage(t, path, img)
		})
	}
}

// TestPullTarAbortsOnBadBlob checks that a verification failure aborts the tar stream
// instead of finishing an archive with a bad blob.
func TestPullTarAbortsOnBadBlob(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(21, []int64{500_000}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	fp := newFaultProxy(t, mustURL(t, reg.URL))
	fp.FlipByte(4000, always)
	c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host))
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- readWholeTar(pr)
		io.Copy(io.Discard, pr) // keep the writer unblocked after a read error
	}()
	tw := layout.NewTar(pw, nil)
	_, err := c.Pull(t.Context(), fp.Host+"/team/app:v1", tw, nil)
	cerr := tw.Close()
	pw.Close()
	if !errors.Is(err, ocistream.ErrDigestMismatch) || cerr == nil {
		t.Fatalf("Pull = %v, Close = %v; want a digest mismatch and a failed tar", err, cerr)
	}
	// A reader of the stream must fail rather than see a complete archive.
	if readErr := <-done; readErr == nil {
		t.Error("a tar reader read the aborted stream without error")
	}
}

// TestResumeAcrossRuns kills a pull mid-way (the context ends, as with Ctrl-C or a
// crash) and checks that the next pull downloads less than the whole image again.
func TestResumeAcrossRuns(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(30, []int64{8 << 20, 6 << 20}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	fp := newFaultProxy(t, mustURL(t, reg.URL))
	c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host))
	path := filepath.Join(t.TempDir(), "out")
	total := img.BlobSize()

	// First run: every blob response hangs after 3 MiB; once both layers are there,
	// the pull is stopped (as by Ctrl-C or a crash).
	fp.Stall(3<<20, time.Minute, always)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	dir, err := layout.OpenDir(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := map[digest.Digest]int64{}
	_, err = c.Pull(ctx, fp.Host+"/team/app:v1", dir, &ocistream.PullOptions{Progress: func(e ocistream.ProgressEvent) {
		if e.Kind == ocistream.BlobProgress {
			held[e.Descriptor.Digest] = e.Offset
		}
		if held[img.LayerDescs[0].Digest] >= 3<<20 && held[img.LayerDescs[1].Digest] >= 3<<20 {
			cancel()
		}
	}})
	cancel()
	dir.Close()
	fp.Reset()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first pull = %v, want context.Canceled", err)
	}
	partials, _ := filepath.Glob(filepath.Join(path, ".ingest", "*"))
	if len(partials) == 0 {
		t.Fatal("the interrupted pull left no partial download")
	}
	// Second run completes, resuming the partials: count what it downloads from its
	// own events (a blob started at offset N fetches only size-N bytes, with Range).
	var downloaded, resumed int64
	dir2, err := layout.OpenDir(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dir2.Close()
	_, err = c.Pull(t.Context(), fp.Host+"/team/app:v1", dir2, &ocistream.PullOptions{Progress: func(e ocistream.ProgressEvent) {
		if e.Kind == ocistream.BlobStarted {
			downloaded += e.Descriptor.Size - e.Offset
			resumed += e.Offset
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resumed < 6<<20 || downloaded >= total-6<<20 {
		t.Errorf("second pull downloaded %d of %d bytes, resuming %d: nothing was resumed", downloaded, total, resumed)
	}
	expectImage(t, path, img)
	verifyLayout(t, path)
	t.Logf("image %d bytes; the resumed run kept %d and downloaded %d", total, resumed, downloaded)
}

// TestPullLarge pulls a 1 GiB image (4 × 256 MiB) into a directory and into a tar
// stream. It takes tens of seconds; -short skips it.
func TestPullLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB pull skipped with -short")
	}
	reg := newRegistry(t, registryOptions{Filesystem: true})
	var layers []ocispec.Descriptor
	for i := range 4 {
		b := makeBlob(int64(100+i), 256<<20)
		d := pushBlob(t, reg, "team/big", b)
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(b))})
	}
	cfg := mustJSON(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{}}})
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: pushBlob(t, reg, "team/big", cfg), Size: int64(len(cfg))}
	manifest := mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers})
	pushManifest(t, reg, "team/big", "v1", ocispec.MediaTypeImageManifest, manifest)
	c := sdkClient(t, reg, false)

	path := filepath.Join(t.TempDir(), "out")
	if _, _, err := pullDir(t, c, path, reg.Ref("team/big", "v1"), nil); err != nil {
		t.Fatal(err)
	}
	if n := verifyLayout(t, path); n != 6 {
		t.Errorf("layout holds %d blobs, want 6", n)
	}
	os.RemoveAll(path)

	h := sha256.New()
	tw := layout.NewTar(h, nil)
	if _, err := c.Pull(t.Context(), reg.Ref("team/big", "v1"), tw, nil); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPullForeignLayer pushes to the real registry a manifest whose non-distributable
// layer the registry does not hold, and serves that layer from TLS servers: one with
// the right bytes, one with wrong bytes. The pull falls back from the registry to the
// URLs, skips the wrong one, and no URL sees the registry's credentials.
func TestPullForeignLayer(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	layer := makeBlob(40, 300_000)
	var sawAuth atomic.Bool
	serve := func(body []byte) *httptest.Server {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				sawAuth.Store(true)
			}
			http.ServeContent(w, r, "layer", time.Time{}, bytes.NewReader(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	wrong := bytes.Clone(layer)
	wrong[1000] ^= 1
	good, bad := serve(layer), serve(wrong)
	cfg := mustJSON(map[string]any{"architecture": "amd64", "os": "windows", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: pushBlob(t, reg, "team/win", cfg), Size: int64(len(cfg))}
	foreign := ocispec.Descriptor{
		MediaType: ocitypes.MediaTypeOCILayerNondistributableGzip, // deprecated by the spec, still what such images carry
		Digest:    digest.FromBytes(layer), Size: int64(len(layer)),
		URLs: []string{bad.URL + "/layer", good.URL + "/layer"},
	}
	manifest := mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{foreign}})
	pushManifest(t, reg, "team/win", "v1", ocispec.MediaTypeImageManifest, manifest)

	pool := good.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := sdkClient(t, reg, true, ocistream.WithRootCAs(pool))
	windows := ocispec.Platform{OS: "windows", Architecture: "amd64"}
	path := filepath.Join(t.TempDir(), "out")
	if _, _, err := pullDir(t, c, path, reg.Ref("team/win", "v1"), &ocistream.PullOptions{Platform: &windows}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(path, "blobs", "sha256", foreign.Digest.Encoded())); err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("foreign layer in the layout: %v", err)
	}
	verifyLayout(t, path)
	if sawAuth.Load() {
		t.Error("a foreign URL received an Authorization header")
	}

	// --skip-foreign: the layer is left out and recorded as absent.
	path2 := filepath.Join(t.TempDir(), "out2")
	_, desc, err := pullDir(t, c, path2, reg.Ref("team/win", "v1"), &ocistream.PullOptions{Platform: &windows, SkipForeign: true})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Annotations[ocitypes.AnnotationAbsentBlobs] != foreign.Digest.String() {
		t.Errorf("absent annotation = %q", desc.Annotations[ocitypes.AnnotationAbsentBlobs])
	}
}
