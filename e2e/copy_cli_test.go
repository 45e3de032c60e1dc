package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/layout"
)

// TestCopyCLI runs ocipull copy between a registry, a layout directory, a layout tar
// and a second registry that needs credentials, and every bad input the command
// documents: each is one line on stderr and a non-zero exit, and nothing is tagged.
func TestCopyCLI(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	ocipull := func(t *testing.T, o cliOptions, args ...string) cliRun {
		t.Helper()
		return runProgram(t, bin, o, args...)
	}
	f := seedCLIRegistry(t, newRegistry(t, registryOptions{}))
	dst := newRegistry(t, registryOptions{Auth: authHtpasswd})
	login := cliOptions{stdin: testPassword + "\n"}
	work := t.TempDir()
	indexDigest := f.multi.Desc.Digest.String()
	appDigest := f.app.ManifestDesc.Digest.String()

	t.Run("registry to layout keeps every platform", func(t *testing.T) {
		out := filepath.Join(work, "multi")
		r := ocipull(t, cliOptions{}, "copy", f.ref("multi", "latest"), "oci:"+out).mustSucceed(t, "copy")
		if got := strings.TrimSpace(string(r.stdout)); got != indexDigest {
			t.Errorf("stdout %q, want the index digest %s", got, indexDigest)
		}
		report, err := layout.Verify(t.Context(), out, nil)
		if err != nil || !report.OK() {
			t.Fatalf("layout does not verify: %v %+v", err, report.Problems)
		}
	})

	t.Run("layout tar to a registry with credentials", func(t *testing.T) {
		tarPath := filepath.Join(work, "app.tar")
		ocipull(t, cliOptions{}, "pull", f.ref("team/app", "v1"), "-o", tarPath).mustSucceed(t, "pull to tar")
		to := dst.Ref("mirror/app", "v1")
		r := ocipull(t, login, "-u", testUser, "--password-stdin", "copy", "oci-archive:"+tarPath, to).mustSucceed(t, "copy")
		if got := strings.TrimSpace(string(r.stdout)); got != appDigest {
			t.Errorf("stdout %q, want %s", got, appDigest)
		}
		r = ocipull(t, login, "-u", testUser, "--password-stdin", "resolve", "--format", "{{.Digest}}", to).mustSucceed(t, "resolve")
		if got := strings.TrimSpace(string(r.stdout)); got != appDigest {
			t.Errorf("the destination resolves to %q, want %s", got, appDigest)
		}
	})

	t.Run("layout directory to layout directory under a new tag", func(t *testing.T) {
		out := filepath.Join(work, "copy-of-multi")
		ocipull(t, cliOptions{}, "copy", "oci:"+filepath.Join(work, "multi"), "oci:"+out+":stable").mustSucceed(t, "copy")
		src, err := layout.OpenSource(out, "stable")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if got := src.Image().Descriptor.Digest.String(); got != indexDigest {
			t.Errorf("copied image is %s, want %s", got, indexDigest)
		}
	})

	notLayout := filepath.Join(work, "not-a-layout.tar")
	if err := os.WriteFile(notLayout, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		o    cliOptions
		args []string
		code int
		says string
	}{
		{"missing source image", cliOptions{}, []string{"copy", f.ref("team/app", "nope"), "oci:" + filepath.Join(work, "x")}, 1, "not found"},
		{"REF matching nothing", cliOptions{}, []string{"copy", "oci:" + filepath.Join(work, "multi") + ":nope", "oci:" + filepath.Join(work, "y")}, 1, "latest"},
		{"archive that is not a layout", cliOptions{}, []string{"copy", "oci-archive:" + notLayout, dst.Ref("x/y", "v1")}, 1, "not-a-layout.tar"},
		{"destination refuses the push", cliOptions{}, []string{"copy", f.ref("team/app", "v1"), dst.Ref("denied/app", "v1")}, 1, "denied/app"},
		{"one argument", cliOptions{}, []string{"copy", f.ref("team/app", "v1")}, 2, "copy wants SRC and DST"},
		{"-u with two registries", login, []string{"-u", testUser, "--password-stdin", "copy", f.ref("team/app", "v1"), dst.Ref("x/app", "v1")}, 2, "log in to each"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r := ocipull(t, tc.o, tc.args...)
			t.Logf("stderr: %s", r.stderr)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.says) || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "ocipull: ") {
				t.Errorf("exit %d, stderr %q; want exit %d and one line saying %q", r.code, r.stderr, tc.code, tc.says)
			}
		})
	}
	// Nothing was tagged by the refused push.
	r := ocipull(t, login, "-u", testUser, "--password-stdin", "resolve", dst.Ref("denied/app", "v1"))
	if r.code == 0 {
		t.Errorf("a refused copy left a tag behind")
	}
}
