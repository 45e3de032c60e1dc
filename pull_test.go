package ocistream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// pushImage stores in reg a one-platform image of n layers of size bytes each, made
// from seed, and returns its manifest's descriptor.
func pushImage(reg *fakeregistry.Registry, repo, tag string, p ocitypes.Platform, n, size int, seed byte) ocitypes.Descriptor {
	var layers []fakeregistry.Content
	for i := range n {
		layers = append(layers, fakeregistry.Bytes(bytes.Repeat([]byte{seed, byte(i)}, size/2)))
	}
	return reg.PushImage(repo, tag, p, layers...).Manifest
}

// pushIndex stores in reg an index of one image (two layers of 4096 bytes) per platform.
func pushIndex(reg *fakeregistry.Registry, repo, tag string, platforms ...ocitypes.Platform) ocitypes.Descriptor {
	var entries []ocitypes.Descriptor
	for i, p := range platforms {
		d := pushImage(reg, repo, "", p, 2, 4096, byte(i+1))
		d.Platform = &p
		entries = append(entries, d)
	}
	return reg.PushIndex(repo, tag, entries...)
}

func newPullClient(t *testing.T, srv *httptest.Server) (*ocistream.Client, string) {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	c, err := ocistream.New(ocistream.WithPlainHTTP(u.Host))
	if err != nil {
		t.Fatal(err)
	}
	return c, u.Host
}

func TestPullPlatformSelection(t *testing.T) {
	reg := fakeregistry.Start(t)
	amd64 := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocitypes.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv7 := ocitypes.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	pushIndex(reg, "multi", "v1", amd64, arm64, armv7)
	c, host := newPullClient(t, reg.Server)

	tests := []struct {
		want     string
		platform ocitypes.Platform
		all      bool
		wantErr  error
		rootType string
	}{
		{want: "amd64", platform: amd64, rootType: ocitypes.MediaTypeOCIManifest},
		{want: "arm64 without variant", platform: ocitypes.Platform{OS: "linux", Architecture: "arm64"}, rootType: ocitypes.MediaTypeOCIManifest},
		{want: "arm v7", platform: armv7, rootType: ocitypes.MediaTypeOCIManifest},
		{want: "arm v6 cannot run v7", platform: ocitypes.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, wantErr: ocistream.ErrNoMatchingPlatform},
		{want: "s390x", platform: ocitypes.Platform{OS: "linux", Architecture: "s390x"}, wantErr: ocistream.ErrNoMatchingPlatform},
		{want: "all", all: true, rootType: ocitypes.MediaTypeOCIIndex},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			dir, err := layout.OpenDir(filepath.Join(t.TempDir(), "out"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			p := tt.platform
			desc, err := c.Pull(t.Context(), host+"/multi:v1", dir, &ocistream.PullOptions{Platform: &p, AllPlatforms: tt.all})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pull = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "linux/amd64") {
					t.Errorf("error %q does not list the available platforms", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc.MediaType != tt.rootType {
				t.Errorf("root media type = %s, want %s", desc.MediaType, tt.rootType)
			}
			idx, err := dir.Index()
			if err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != desc.Digest {
				t.Fatalf("index.json = %+v, %v", idx, err)
			}
			if got := idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "v1" {
				t.Errorf("ref.name = %q, want v1", got)
			}
			// Every blob reachable from the root is present and verifies.
			checkReachable(t, dir, desc)
		})
	}
}

// checkReachable walks the layout from root and re-hashes every blob.
func checkReachable(t *testing.T, dir *layout.Dir, root ocitypes.Descriptor) {
	t.Helper()
	b, err := os.ReadFile(dir.BlobPath(root.Digest))
	if err != nil {
		t.Fatalf("root %s: %v", root.Digest, err)
	}
	if digest.FromBytes(b) != root.Digest {
		t.Fatalf("root %s does not verify", root.Digest)
	}
	var doc struct {
		Manifests []ocitypes.Descriptor `json:"manifests"`
		Config    *ocitypes.Descriptor  `json:"config"`
		Layers    []ocitypes.Descriptor `json:"layers"`
	}
	json.Unmarshal(b, &doc)
	for _, m := range doc.Manifests {
		checkReachable(t, dir, m)
	}
	if doc.Config != nil {
		for _, d := range append([]ocitypes.Descriptor{*doc.Config}, doc.Layers...) {
			blob, err := os.ReadFile(dir.BlobPath(d.Digest))
			if err != nil || digest.FromBytes(blob) != d.Digest || int64(len(blob)) != d.Size {
				t.Errorf("blob %s missing or wrong: %v", d.Digest, err)
			}
		}
	}
}

func TestPullSkipsPresentBlobsAndReportsProgress(t *testing.T) {
	reg := fakeregistry.Start(t)
	pushImage(reg, "app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 3, 2<<20, 7)
	c, host := newPullClient(t, reg.Server)
	path := filepath.Join(t.TempDir(), "out")
	pull := func() map[ocistream.ProgressKind]int {
		dir, err := layout.OpenDir(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		counts := map[ocistream.ProgressKind]int{}
		p := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
		_, err = c.Pull(t.Context(), host+"/app:v1", dir, &ocistream.PullOptions{Platform: &p, Progress: func(e ocistream.ProgressEvent) { counts[e.Kind]++ }})
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	first := pull()
	if first[ocistream.BlobDone] != 4 || first[ocistream.BlobStarted] != 4 || first[ocistream.BlobProgress] < 3 {
		t.Errorf("first pull events = %v", first)
	}
	served := reg.Served("/blobs/")
	second := pull()
	if second[ocistream.BlobSkipped] != 4 || second[ocistream.BlobStarted] != 0 {
		t.Errorf("second pull events = %v, want 4 skipped", second)
	}
	if reg.Served("/blobs/") != served {
		t.Errorf("second pull downloaded %d blob bytes, want 0", reg.Served("/blobs/")-served)
	}
}

func TestPullIntoTar(t *testing.T) {
	reg := fakeregistry.Start(t)
	pushImage(reg, "app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 10000, 3)
	c, host := newPullClient(t, reg.Server)
	var buf bytes.Buffer
	tw := layout.NewTar(&buf, nil)
	if _, err := c.Pull(t.Context(), host+"/app:v1", tw, nil); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"oci-layout", "index.json", "manifest.json"} {
		if !bytes.Contains(buf.Bytes(), []byte(name)) {
			t.Errorf("tar lacks %s", name)
		}
	}
}

func TestPullCanceled(t *testing.T) {
	reg := fakeregistry.Start(t)
	pushImage(reg, "app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 1000, 3)
	c, host := newPullClient(t, reg.Server)
	dir, err := layout.OpenDir(filepath.Join(t.TempDir(), "out"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Pull(ctx, host+"/app:v1", dir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Pull = %v, want context.Canceled", err)
	}
}

func TestPullForeignLayers(t *testing.T) {
	layer := bytes.Repeat([]byte("windows base layer "), 5000)
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
	good := serve(layer)
	bad := serve(append(bytes.Clone(layer[:len(layer)-1]), 'X'))

	push := func(reg *fakeregistry.Registry, repo string, urls ...string) {
		cfg := []byte(`{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}`)
		cfgDigest := reg.PutBlob(repo, fakeregistry.Bytes(cfg))
		foreign := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeDockerForeignLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer)), URLs: urls}
		reg.PushManifest(repo, "v1", ocitypes.MediaTypeDockerManifest, map[string]any{
			"schemaVersion": 2, "mediaType": ocitypes.MediaTypeDockerManifest,
			"config": ocitypes.Descriptor{MediaType: ocitypes.MediaTypeDockerConfig, Digest: cfgDigest, Size: int64(len(cfg))}, "layers": []ocitypes.Descriptor{foreign},
		})
	}
	reg := fakeregistry.Start(t)
	push(reg, "good", good.URL+"/layer")
	push(reg, "fallback", bad.URL+"/layer", good.URL+"/layer")
	push(reg, "bad", bad.URL+"/layer")
	push(reg, "plainhttp", strings.Replace(good.URL, "https://", "http://", 1)+"/layer")
	// The registry demands credentials; the foreign host must never see them.
	reg.SetAuth(fakeregistry.Auth{Scheme: "basic", Username: "u", Password: "p"})
	host := reg.Host()
	pool := good.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := ocistream.New(ocistream.WithPlainHTTP(host), ocistream.WithRootCAs(pool),
		ocistream.WithCredentials(ocistream.StaticCredentials(host, ocistream.Credential{Username: "u", Password: "p"})))
	if err != nil {
		t.Fatal(err)
	}
	windows := ocitypes.Platform{OS: "windows", Architecture: "amd64"}
	tests := []struct {
		repo    string
		skip    bool
		wantErr error
	}{
		{repo: "good"},
		{repo: "fallback"},
		{repo: "bad", wantErr: ocistream.ErrDigestMismatch},
		{repo: "plainhttp", wantErr: ocistream.ErrUnsupported},
		{repo: "bad", skip: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s skip=%v", tt.repo, tt.skip), func(t *testing.T) {
			dir, err := layout.OpenDir(filepath.Join(t.TempDir(), "out"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			desc, err := c.Pull(t.Context(), host+"/"+tt.repo+":v1", dir, &ocistream.PullOptions{Platform: &windows, SkipForeign: tt.skip})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pull = %v, want %v", err, tt.wantErr)
				}
				if _, serr := os.Stat(dir.BlobPath(digest.FromBytes(layer))); serr == nil {
					t.Error("a failed foreign layer landed in blobs/")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, serr := os.Stat(dir.BlobPath(digest.FromBytes(layer)))
			absent := desc.Annotations[ocitypes.AnnotationAbsentBlobs]
			if tt.skip {
				if serr == nil || absent != digest.FromBytes(layer).String() {
					t.Errorf("skipped layer: stat %v, absent annotation %q", serr, absent)
				}
				idx, _ := dir.Index()
				if idx.Manifests[0].Annotations[ocitypes.AnnotationAbsentBlobs] != absent {
					t.Error("index.json does not record the absent layer")
				}
				return
			}
			if serr != nil || absent != "" {
				t.Errorf("foreign layer: stat %v, absent %q", serr, absent)
			}
		})
	}
	if sawAuth.Load() {
		t.Error("a foreign URL received the registry's Authorization header")
	}
}
