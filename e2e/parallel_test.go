package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// chunked makes every blob of 1 MiB or more go in 256 KiB ranges, 4 at a time, however
// fast the first one comes.
var chunked = ocistream.WithParallelDownload(ocistream.ParallelDownload{Connections: 4, ChunkSize: 256 << 10, Threshold: 1 << 20, FastStream: -1})

// rangeGets counts the blob GETs of path with a Range header in log.
func rangeGets(log []proxyRequest, path string) int {
	n := 0
	for _, r := range log {
		if r.Path == path && r.Range != "" {
			n++
		}
	}
	return n
}

// monotonic returns a Progress function that fails t when a blob's offset goes back.
func monotonic(t *testing.T, also func(ocistream.ProgressEvent)) func(ocistream.ProgressEvent) {
	var mu sync.Mutex
	last := map[string]int64{}
	return func(e ocistream.ProgressEvent) {
		mu.Lock()
		k := e.Descriptor.Digest.String()
		if (e.Kind == ocistream.BlobProgress || e.Kind == ocistream.BlobDone) && e.Offset < last[k] {
			t.Errorf("progress of %s went back from %d to %d", k, last[k], e.Offset)
		}
		last[k] = max(last[k], e.Offset)
		mu.Unlock()
		if also != nil {
			also(e)
		}
	}
}

// TestPullParallelFaults pulls a 5 MiB layer in ranges through the fault proxy in
// front of the reference registry: every fault heals, or the blob is refused and
// nothing wrong is committed.
func TestPullParallelFaults(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(40, []int64{5 << 20, 300_000}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	big := "/v2/team/app/blobs/" + img.LayerDescs[0].Digest.String()
	tests := []struct {
		name       string
		fault      func(fp *faultProxy)
		wantErr    error
		wantRanges int // at least, for the big layer
	}{
		{name: "no fault", fault: func(fp *faultProxy) {}, wantRanges: 20},
		{name: "drops in random chunks", fault: func(fp *faultProxy) { fp.DropRandom(3, 10) }, wantRanges: 20},
		{name: "503 on chunks", fault: func(fp *faultProxy) { fp.Status(503, "0", 3) }, wantRanges: 20},
		{name: "range ignored on some requests", fault: func(fp *faultProxy) { fp.IgnoreRange(2) }},
		{name: "a corrupt chunk", fault: func(fp *faultProxy) { fp.FlipByte(100_000, 1) }, wantErr: ocistream.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFaultProxy(t, mustURL(t, reg.URL))
			tt.fault(fp)
			c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host), chunked)
			path := filepath.Join(t.TempDir(), "out")
			// One blob at a time, the big one first: the armed faults meet its chunks.
			_, _, err := pullDir(t, c, path, fp.Host+"/team/app:v1", &ocistream.PullOptions{Concurrency: 1, Progress: monotonic(t, nil)})
			verifyLayout(t, path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pull = %v, want %v (faults injected: %d)", err, tt.wantErr, fp.FaultCount())
			}
			if tt.wantErr != nil {
				if _, err := os.Stat(filepath.Join(path, "blobs", "sha256", img.LayerDescs[0].Digest.Encoded())); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the corrupt layer was committed: %v", err)
				}
				return
			}
			expectImage(t, path, img)
			if n := rangeGets(fp.Requests(), big); n < tt.wantRanges {
				t.Errorf("%d range requests for the big layer, want at least %d", n, tt.wantRanges)
			}
		})
	}
}

// TestPullParallelResume stops a chunked pull half way (the context ends, as with
// Ctrl-C) and checks that the next pull fetches exactly the bytes still missing.
func TestPullParallelResume(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(41, []int64{6 << 20}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	layer := img.LayerDescs[0]
	path := "/v2/team/app/blobs/" + layer.Digest.String()
	fp := newFaultProxy(t, mustURL(t, reg.URL))
	c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host), chunked)
	out := filepath.Join(t.TempDir(), "out")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir, err := layout.OpenDir(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pull(ctx, fp.Host+"/team/app:v1", dir, &ocistream.PullOptions{Progress: monotonic(t, func(e ocistream.ProgressEvent) {
		if e.Descriptor.Digest == layer.Digest && e.Offset >= layer.Size/2 {
			cancel()
		}
	})})
	dir.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first pull = %v, want context.Canceled", err)
	}

	// What the interrupted pull kept, as the layout reports it.
	dir, err = layout.OpenDir(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dir.OpenBlob(t.Context(), ocitypes.Descriptor(layer))
	if err != nil {
		t.Fatal(err)
	}
	var missing int64
	for _, n := range w.(ocistream.BlobWriterAt).Missing() {
		missing += n
	}
	w.Close()
	dir.Close()
	if missing == 0 || missing > layer.Size-layer.Size/2 {
		t.Fatalf("%d of %d bytes missing after the interrupted pull", missing, layer.Size)
	}

	fp.Requests() // waits for the handlers of the canceled requests to log their bytes
	before := fp.BytesServed(path)
	if _, _, err := pullDir(t, c, out, fp.Host+"/team/app:v1", nil); err != nil {
		t.Fatal(err)
	}
	if got := fp.BytesServed(path) - before; got != missing {
		t.Errorf("the second pull fetched %d bytes of the layer, want the %d missing", got, missing)
	}
	expectImage(t, out, img)
	verifyLayout(t, out)
	t.Logf("layer %d bytes; the interrupted pull kept %d, the second fetched %d", layer.Size, layer.Size-missing, missing)
}

// TestPullParallelRedirect: the registry (behind a token server) redirects blob GETs to
// a second server, as to a CDN. The chunks go there directly after the first
// redirect, never with the registry's credentials; when that server refuses the URL
// (an expired signature), the registry is asked again.
func TestPullParallelRedirect(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	img := makeImage(42, []int64{4 << 20}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	layer := img.LayerDescs[0]
	path := "/v2/team/app/blobs/" + layer.Digest.String()
	u := mustURL(t, reg.URL)
	front, cdn := newFaultProxy(t, u), newFaultProxy(t, u)
	front.Redirect(mustURL(t, cdn.URL), always)
	cdn.Authorize("Bearer " + reg.Issuer.mustMint(t, "", time.Hour, "repository:team/app:pull"))
	c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(front.Host, cdn.Host), chunked,
		ocistream.WithCredentials(ocistream.StaticCredentials(front.Host, ocistream.Credential{Username: testUser, Password: testPassword})))
	out := filepath.Join(t.TempDir(), "out")
	var once sync.Once
	_, _, err := pullDir(t, c, out, front.Host+"/team/app:v1", &ocistream.PullOptions{Progress: monotonic(t, func(e ocistream.ProgressEvent) {
		if e.Descriptor.Digest == layer.Digest && e.Offset >= 1<<20 {
			once.Do(func() { cdn.Status(http.StatusForbidden, "", 1) })
		}
	})})
	if err != nil {
		t.Fatal(err)
	}
	expectImage(t, out, img)
	verifyLayout(t, out)

	var redirects, chunks int
	for _, r := range front.Requests() {
		if r.Path == path && r.Status == http.StatusTemporaryRedirect {
			redirects++
		}
	}
	for _, r := range cdn.Requests() {
		if r.Authorization != "" {
			t.Errorf("the second server received credentials: %s %s with Authorization %q", r.Method, r.Path, r.Authorization)
		}
		if r.Path == path && r.Range != "" && r.Status == http.StatusPartialContent {
			chunks++
		}
	}
	if chunks < 16 {
		t.Errorf("%d chunks from the second server, want the 16 of the layer", chunks)
	}
	// The first chunks ask the registry (up to 4 connections start at once), then one
	// more after the refusal: far fewer redirects than chunks.
	if redirects < 2 || redirects > 10 {
		t.Errorf("the registry redirected the layer %d times, want 2 to 10 (first chunks, then once per refusal)", redirects)
	}
}

// TestCopyParallelOrdered copies a 5 MiB layer in ranges, through the fault proxy
// dropping some chunks, into the destinations that take bytes only in order: a tar
// archive (which skopeo then reads) and a second reference registry. The chunks pass
// through the reorder window; a corrupt chunk lands nowhere.
func TestCopyParallelOrdered(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	img := makeImage(41, []int64{5 << 20, 300_000}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	dst := newRegistry(t, registryOptions{})
	big := "/v2/team/app/blobs/" + img.LayerDescs[0].Digest.String()
	for _, dest := range []string{"tar", "registry"} {
		for _, tt := range []struct {
			name    string
			fault   func(fp *faultProxy)
			wantErr error
		}{
			{name: "drops in random chunks", fault: func(fp *faultProxy) { fp.DropRandom(3, 10) }},
			{name: "a corrupt chunk", fault: func(fp *faultProxy) { fp.FlipByte(100_000, 1) }, wantErr: ocistream.ErrDigestMismatch},
		} {
			t.Run(dest+"/"+tt.name, func(t *testing.T) {
				fp := newFaultProxy(t, mustURL(t, reg.URL))
				tt.fault(fp)
				c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host, hostOfURL(dst.URL)), chunked)
				src, err := c.Repository(fp.Host + "/team/app:v1")
				if err != nil {
					t.Fatal(err)
				}
				opts := &ocistream.CopyOptions{Concurrency: 1, Progress: monotonic(t, nil)}
				switch dest {
				case "tar":
					tarPath := filepath.Join(t.TempDir(), "img.tar")
					f, err := os.Create(tarPath)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					tw := layout.NewTar(f, nil)
					_, err = ocistream.Copy(t.Context(), src, tw, opts)
					closeErr := tw.Close()
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Copy = %v, want %v", err, tt.wantErr)
					}
					if tt.wantErr != nil {
						if closeErr == nil {
							t.Fatal("the archive of a failed copy closed cleanly")
						}
						return
					}
					if closeErr != nil {
						t.Fatal(closeErr)
					}
					files := tarEntries(t, tarPath)
					if files["blobs/sha256/"+img.LayerDescs[0].Digest.Encoded()] != img.LayerDescs[0].Size {
						t.Errorf("tar lacks the big layer")
					}
					skopeoCheck(t, "oci-archive:"+tarPath)
				case "registry":
					repo := "mirror/" + strings.ReplaceAll(tt.name, " ", "-")
					to, err := c.Repository(hostOfURL(dst.URL) + "/" + repo + ":v1")
					if err != nil {
						t.Fatal(err)
					}
					_, err = ocistream.Copy(t.Context(), src, to, opts)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Copy = %v, want %v", err, tt.wantErr)
					}
					held, herr := to.Exists(t.Context(), img.LayerDescs[0])
					if herr != nil {
						t.Fatal(herr)
					}
					if held != (tt.wantErr == nil) {
						t.Fatalf("destination holds the big layer: %v, want %v", held, tt.wantErr == nil)
					}
					if tt.wantErr != nil {
						return
					}
					path := filepath.Join(t.TempDir(), "out")
					if _, _, err := pullDir(t, c, path, hostOfURL(dst.URL)+"/"+repo+":v1", nil); err != nil {
						t.Fatal(err)
					}
					expectImage(t, path, img)
				}
				if n := rangeGets(fp.Requests(), big); n < 20 {
					t.Errorf("%d range requests for the big layer, want it in chunks", n)
				}
			})
		}
	}
}
