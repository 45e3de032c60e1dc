package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/layout"
)

// verifyReport is the JSON ocipull verify --json prints.
type verifyReport struct {
	Dir      string `json:"dir"`
	OK       bool   `json:"ok"`
	Blobs    int    `json:"blobs"`
	Bytes    int64  `json:"bytes"`
	Problems []struct {
		Kind   string `json:"kind"`
		Digest string `json:"digest"`
		Path   string `json:"path"`
		Detail string `json:"detail"`
	} `json:"problems"`
}

// TestVerifyCLI pulls images with the built ocipull and checks them with ocipull
// verify: a fresh pull is sound, and a corrupt or deleted blob is named.
func TestVerifyCLI(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	ocipull := func(t *testing.T, args ...string) cliRun {
		t.Helper()
		return runProgram(t, bin, cliOptions{}, args...)
	}
	reg := newRegistry(t, registryOptions{})
	img := makeImage(505, []int64{200 << 10, 30 << 10}, platformAMD64)
	pushImage(t, reg, "team/app", "v1", img)
	multi := makeIndex(606, []int64{40 << 10})
	pushIndex(t, reg, "multi", "latest", multi)

	t.Run("image", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "app")
		ocipull(t, "--plain-http", "-q", "pull", reg.Ref("team/app", "v1"), "-o", out).mustSucceed(t, "pull")

		r := ocipull(t, "verify", out).mustSucceed(t, "verify of a fresh pull")
		if len(r.stdout) != 0 || !strings.HasPrefix(r.stderr, "verified 4 blobs (") || !strings.HasSuffix(r.stderr, "): OK\n") {
			t.Errorf("verify of a fresh pull: stdout %q, stderr %q; want no problem and the summary", r.stdout, r.stderr)
		}
		rep, err := layout.Verify(t.Context(), out, nil)
		if err != nil || !rep.OK() || rep.Blobs != 4 || rep.Bytes != img.BlobSize()+img.ManifestDesc.Size {
			t.Errorf("layout.Verify of a fresh pull = %+v, %v; want OK, 4 blobs, %d bytes", rep, err, img.BlobSize()+img.ManifestDesc.Size)
		}

		// Flip one byte in the middle of the first layer.
		layer := img.LayerDescs[0]
		path := filepath.Join(out, layoutBlobPath(layer.Digest))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x20
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r = ocipull(t, "verify", out)
		wantLine := "corrupt " + layer.Digest.String() + " " + layoutBlobPath(layer.Digest) + ": content hashes to sha256:"
		if r.code != 1 || !strings.HasPrefix(string(r.stdout), wantLine) || strings.Count(string(r.stdout), "\n") != 1 {
			t.Errorf("verify of a corrupt layer: exit %d, stdout %q; want exit 1 and one line starting %q", r.code, r.stdout, wantLine)
		}
		if want := "ocipull: layout " + out + " has 1 problem: 1 corrupt (verified 4 blobs, "; !strings.HasPrefix(r.stderr, want) {
			t.Errorf("verify of a corrupt layer: stderr %q, want it to start with %q", r.stderr, want)
		}

		// Delete the second one too; --json names both.
		gone := img.LayerDescs[1]
		if err := os.Remove(filepath.Join(out, layoutBlobPath(gone.Digest))); err != nil {
			t.Fatal(err)
		}
		r = ocipull(t, "verify", "--json", out)
		if r.code != 1 {
			t.Errorf("verify --json of a damaged layout: exit %d, want 1; stderr %q", r.code, r.stderr)
		}
		var got verifyReport
		if err := json.Unmarshal(r.stdout, &got); err != nil {
			t.Fatalf("verify --json printed %q: %v", r.stdout, err)
		}
		kinds := map[string]string{}
		for _, p := range got.Problems {
			kinds[p.Digest] = p.Kind
		}
		if got.OK || got.Dir != out || got.Blobs != 3 || len(got.Problems) != 2 ||
			kinds[layer.Digest.String()] != "corrupt" || kinds[gone.Digest.String()] != "missing" {
			t.Errorf("verify --json = %+v; want not ok, 3 blobs read, %s corrupt and %s missing", got, layer.Digest, gone.Digest)
		}
	})

	t.Run("all platforms", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "multi")
		ocipull(t, "--plain-http", "-q", "--all-platforms", "pull", reg.Ref("multi", "latest"), "-o", out).mustSucceed(t, "pull --all-platforms")
		r := ocipull(t, "verify", "--json", out).mustSucceed(t, "verify of a multi-platform pull")
		var got verifyReport
		if err := json.Unmarshal(r.stdout, &got); err != nil {
			t.Fatalf("verify --json printed %q: %v", r.stdout, err)
		}
		// The index, and a manifest, a config and a layer per platform.
		want := 1 + 3*len(multi.Images)
		if !got.OK || got.Blobs != want || len(got.Problems) != 0 {
			t.Errorf("verify --json = %+v; want ok, %d blobs, no problem", got, want)
		}

		// A second image in the same directory, then a leftover blob once its
		// manifest is gone from index.json: reported as unreferenced.
		ocipull(t, "--plain-http", "-q", "pull", reg.Ref("team/app", "v1"), "-o", out).mustSucceed(t, "pull a second image")
		ocipull(t, "-q", "verify", out).mustSucceed(t, "verify of two images")
		stray := filepath.Join(out, "blobs", "sha256", strings.Repeat("ab", 32))
		if err := os.WriteFile(stray, []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = ocipull(t, "-q", "verify", out)
		want2 := "unreferenced sha256:" + strings.Repeat("ab", 32) + " blobs/sha256/" + strings.Repeat("ab", 32) + ": 5 bytes, not reachable from index.json\n"
		if r.code != 1 || string(r.stdout) != want2 {
			t.Errorf("verify with a stray blob: exit %d, stdout %q; want 1, %q", r.code, r.stdout, want2)
		}
	})
}
