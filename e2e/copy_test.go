package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
)

// uploads counts the requests through fp that carry blob bytes to the registry or
// open an upload session (not mounts).
func uploads(fp *faultProxy) int {
	n := 0
	for _, r := range fp.Requests() {
		if !strings.Contains(r.Path, "/blobs/uploads/") {
			continue
		}
		if r.Method == http.MethodPatch || r.Method == http.MethodPut {
			n++
		}
	}
	return n
}

// copyRepo copies src to dst with c and returns the copied root.
func copyRepo(t *testing.T, c *ocistream.Client, src, dst string, opts *ocistream.CopyOptions) ocispec.Descriptor {
	t.Helper()
	root, err := copyRepoErr(t, c, src, dst, opts)
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
	return root
}

func TestCopyRegistryToRegistry(t *testing.T) {
	src := newRegistry(t, registryOptions{Auth: authHtpasswd})
	dst := newRegistry(t, registryOptions{Auth: authToken})
	fp := newFaultProxy(t, mustURL(t, dst.URL))
	multi := makeIndex(21, []int64{300_000, 2_000_000})
	pushIndex(t, src, "team/multi", "v1", multi)

	// One client for both registries: the keychain (here static credentials) covers
	// each host.
	c := sdkClient(t, src, false, ocistream.WithPlainHTTP(fp.Host, hostOfURL(dst.Issuer.Realm)),
		ocistream.WithCredentials(ocistream.CredentialFunc(func(_ context.Context, host string) (ocistream.Credential, error) {
			return ocistream.Credential{Username: testUser, Password: testPassword}, nil
		})))
	srcRef, dstRef := src.Ref("team/multi", "v1"), fp.Host+"/mirror/multi:v1"

	root := copyRepo(t, c, srcRef, dstRef, nil)
	if root.Digest != multi.Desc.Digest {
		t.Errorf("copied root %s, want the source index %s", root.Digest, multi.Desc.Digest)
	}
	got, _, err := c.Manifest(t.Context(), dstRef)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != multi.Desc.Digest {
		t.Errorf("destination tag resolves to %s, want %s", got.Digest, multi.Desc.Digest)
	}
	// Every platform's image arrived: pull each from the destination and verify it.
	for _, img := range multi.Images {
		path := filepath.Join(t.TempDir(), "out")
		p := img.Platform
		if _, _, err := pullDir(t, c, path, dstRef, &ocistream.PullOptions{Platform: &p}); err != nil {
			t.Fatalf("pull %s/%s from the destination: %v", p.OS, p.Architecture, err)
		}
		expectImage(t, path, img)
		verifyLayout(t, path)
	}
	if uploads(fp) == 0 {
		t.Fatal("the first copy uploaded nothing")
	}

	// A rerun uploads nothing.
	before := uploads(fp)
	copyRepo(t, c, srcRef, dstRef, nil)
	if n := uploads(fp) - before; n != 0 {
		t.Errorf("the rerun made %d upload requests, want none", n)
	}

	// Token scopes: the destination was asked pull,push on its repository.
	found := false
	for _, s := range dst.Issuer.RequestedScopes() {
		if strings.Contains(s, "repository:mirror/multi:") && strings.Contains(s, "push") {
			found = true
		}
	}
	if !found {
		t.Errorf("no token asked push on mirror/multi: %v", dst.Issuer.RequestedScopes())
	}
}

func TestCopyMountsWithinARegistry(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	fp := newFaultProxy(t, mustURL(t, reg.URL))
	img := makeImage(22, []int64{1_000_000, 500_000}, amd64)
	pushImage(t, reg, "team/a", "v1", img)
	c := sdkClient(t, reg, false, ocistream.WithPlainHTTP(fp.Host),
		ocistream.WithCredentials(ocistream.StaticCredentials(fp.Host, ocistream.Credential{Username: testUser, Password: testPassword})))

	copyRepo(t, c, fp.Host+"/team/a:v1", fp.Host+"/team/b:v1", nil)
	if n := uploads(fp); n != 0 {
		t.Errorf("a copy within one registry made %d upload requests, want mounts only", n)
	}
	path := filepath.Join(t.TempDir(), "out")
	if _, _, err := pullDir(t, c, path, fp.Host+"/team/b:v1", nil); err != nil {
		t.Fatal(err)
	}
	expectImage(t, path, img)
}

// TestCopyToLayoutAndBack copies a registry image into a layout directory and a tar,
// then each of those into a registry: the digests never change.
func TestCopyToLayoutAndBack(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	multi := makeIndex(23, []int64{100_000})
	pushIndex(t, reg, "team/src", "v1", multi)
	c := sdkClient(t, reg, false)
	from, err := c.Repository(reg.Ref("team/src", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layout")
	dir, err := layout.OpenDir(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ocistream.Copy(t.Context(), from, dir, nil); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	src, err := layout.OpenSource(path, "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	to, err := c.Repository(reg.Ref("team/back", "v2"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := ocistream.Copy(t.Context(), src, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if root.Digest != multi.Desc.Digest {
		t.Errorf("layout → registry gave %s, want %s", root.Digest, multi.Desc.Digest)
	}
}

// TestCopyDropDuringUpload cuts the destination's connection in the middle of a
// streamed upload: the copy starts that blob over and completes under the source's
// digest; when every upload is cut, the copy fails and nothing is tagged.
func TestCopyDropDuringUpload(t *testing.T) {
	src := newRegistry(t, registryOptions{})
	img := makeImage(24, []int64{3 << 20, 2 << 20}, amd64)
	pushImage(t, src, "team/app", "v1", img)
	for _, tc := range []struct {
		what  string
		cuts  int32 // PATCH requests cut; -1 for all
		tagOK bool
	}{
		{"one upload cut", 1, true},
		{"every upload cut", -1, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			reg := newRegistry(t, registryOptions{})
			var left atomic.Int32
			left.Store(tc.cuts)
			dst := newPushProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPatch || (tc.cuts >= 0 && left.Add(-1) < 0) {
					return false
				}
				_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return true
			})
			c := sdkClient(t, src, false, ocistream.WithPlainHTTP(dst.Host))
			root, err := copyRepoErr(t, c, src.Ref("team/app", "v1"), dst.Ref("team/app", "v1"), nil)
			got, _, rerr := c.Manifest(t.Context(), dst.Ref("team/app", "v1"))
			if tc.tagOK {
				if err != nil || root.Digest != img.ManifestDesc.Digest || rerr != nil || got.Digest != img.ManifestDesc.Digest {
					t.Fatalf("copy = %v, %v; destination resolves to %s, %v", root.Digest, err, got.Digest, rerr)
				}
				return
			}
			if err == nil {
				t.Fatal("a copy whose every upload was cut succeeded")
			}
			t.Log(err)
			if rerr == nil {
				t.Errorf("the failed copy tagged %s", got.Digest)
			}
		})
	}
}

func copyRepoErr(t *testing.T, c *ocistream.Client, src, dst string, opts *ocistream.CopyOptions) (ocispec.Descriptor, error) {
	t.Helper()
	from, err := c.Repository(src)
	if err != nil {
		t.Fatal(err)
	}
	to, err := c.Repository(dst)
	if err != nil {
		t.Fatal(err)
	}
	return ocistream.Copy(t.Context(), from, to, opts)
}
