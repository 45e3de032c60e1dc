package ocistream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// memRegistry serves manifests (by tag and digest) and blobs from memory, counting
// blob bytes served.
type memRegistry struct {
	mu        sync.Mutex
	manifests map[string]memManifest // "repo:tag" and "repo@digest"
	blobs     map[digest.Digest][]byte
	served    atomic.Int64
	blobGets  atomic.Int64
}

type memManifest struct {
	mediaType string
	body      []byte
}

func newMemRegistry() *memRegistry {
	return &memRegistry{manifests: map[string]memManifest{}, blobs: map[digest.Digest][]byte{}}
}

func (m *memRegistry) addBlob(b []byte, mediaType string) ocitypes.Descriptor {
	d := digest.FromBytes(b)
	m.mu.Lock()
	m.blobs[d] = b
	m.mu.Unlock()
	return ocitypes.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (m *memRegistry) addManifest(repo, tag, mediaType string, v any) ocitypes.Descriptor {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d := digest.FromBytes(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manifests[repo+"@"+d.String()] = memManifest{mediaType, body}
	if tag != "" {
		m.manifests[repo+":"+tag] = memManifest{mediaType, body}
	}
	return ocitypes.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

func (m *memRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v2/")
	if repo, ref, ok := strings.Cut(path, "/manifests/"); ok {
		sep := ":"
		if strings.Contains(ref, ":") {
			sep = "@"
		}
		m.mu.Lock()
		mf, found := m.manifests[repo+sep+ref]
		m.mu.Unlock()
		if !found {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		w.Header().Set("Content-Type", mf.mediaType)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(mf.body).String())
		w.Write(mf.body)
		return
	}
	if _, d, ok := strings.Cut(path, "/blobs/"); ok {
		m.mu.Lock()
		b, found := m.blobs[digest.Digest(d)]
		m.mu.Unlock()
		if !found {
			http.NotFound(w, r)
			return
		}
		m.blobGets.Add(1)
		start, end := int64(0), int64(len(b)-1)
		if rng := r.Header.Get("Range"); rng != "" {
			fmt.Sscanf(rng, "bytes=%d-%d", &start, &end)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(b)))
			w.Header().Set("Content-Length", fmt.Sprint(end-start+1))
			w.WriteHeader(http.StatusPartialContent)
		}
		n, _ := w.Write(b[start : end+1])
		m.served.Add(int64(n))
		return
	}
	http.NotFound(w, r)
}

// pushImage adds a one-platform image with n layers of size bytes each.
func (m *memRegistry) pushImage(repo, tag string, p ocitypes.Platform, n, size int, seed byte) ocitypes.Descriptor {
	var layers []ocitypes.Descriptor
	var diffIDs []digest.Digest
	for i := range n {
		b := bytes.Repeat([]byte{seed, byte(i)}, size/2)
		layers = append(layers, m.addBlob(b, ocitypes.MediaTypeOCILayer))
		diffIDs = append(diffIDs, digest.FromBytes(b))
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": p.Architecture, "os": p.OS, "variant": p.Variant,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	config := m.addBlob(cfg, ocitypes.MediaTypeOCIConfig)
	return m.addManifest(repo, tag, ocitypes.MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest, "config": config, "layers": layers,
	})
}

func (m *memRegistry) pushIndex(repo, tag string, platforms ...ocitypes.Platform) ocitypes.Descriptor {
	var entries []ocitypes.Descriptor
	for i, p := range platforms {
		d := m.pushImage(repo, "", p, 2, 4096, byte(i+1))
		p := p
		d.Platform = &p
		entries = append(entries, d)
	}
	return m.addManifest(repo, tag, ocitypes.MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIIndex, "manifests": entries,
	})
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
	reg := newMemRegistry()
	amd64 := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocitypes.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv7 := ocitypes.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	reg.pushIndex("multi", "v1", amd64, arm64, armv7)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	c, host := newPullClient(t, srv)

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
	reg := newMemRegistry()
	reg.pushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 3, 2<<20, 7)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	c, host := newPullClient(t, srv)
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
	served := reg.served.Load()
	second := pull()
	if second[ocistream.BlobSkipped] != 4 || second[ocistream.BlobStarted] != 0 {
		t.Errorf("second pull events = %v, want 4 skipped", second)
	}
	if reg.served.Load() != served {
		t.Errorf("second pull downloaded %d blob bytes, want 0", reg.served.Load()-served)
	}
}

func TestPullIntoTar(t *testing.T) {
	reg := newMemRegistry()
	reg.pushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 10000, 3)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	c, host := newPullClient(t, srv)
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
	reg := newMemRegistry()
	reg.pushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, 2, 1000, 3)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	c, host := newPullClient(t, srv)
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

	push := func(reg *memRegistry, repo string, urls ...string) {
		cfg := reg.addBlob([]byte(`{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}`), ocitypes.MediaTypeOCIConfig)
		foreign := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeDockerForeignLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer)), URLs: urls}
		reg.addManifest(repo, "v1", ocitypes.MediaTypeDockerManifest, map[string]any{
			"schemaVersion": 2, "mediaType": ocitypes.MediaTypeDockerManifest,
			"config": ocitypes.Descriptor{MediaType: ocitypes.MediaTypeDockerConfig, Digest: cfg.Digest, Size: cfg.Size}, "layers": []ocitypes.Descriptor{foreign},
		})
	}
	reg := newMemRegistry()
	push(reg, "good", good.URL+"/layer")
	push(reg, "fallback", bad.URL+"/layer", good.URL+"/layer")
	push(reg, "bad", bad.URL+"/layer")
	push(reg, "plainhttp", strings.Replace(good.URL, "https://", "http://", 1)+"/layer")
	// The registry demands credentials; the foreign host must never see them.
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(authed)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	pool := good.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := ocistream.New(ocistream.WithPlainHTTP(u.Host), ocistream.WithRootCAs(pool),
		ocistream.WithCredentials(ocistream.StaticCredentials(u.Host, ocistream.Credential{Username: "u", Password: "p"})))
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
			desc, err := c.Pull(t.Context(), u.Host+"/"+tt.repo+":v1", dir, &ocistream.PullOptions{Platform: &windows, SkipForeign: tt.skip})
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
