package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIHabits covers what users of docker, crane, regctl and skopeo expect of the
// built ocipull: --format, completion, usage errors, nothing left behind by a failed
// pull, platform checks, .tar.gz output and repairing a corrupt blob.
func TestCLIHabits(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	f := seedCLIRegistry(t, newRegistry(t, registryOptions{}))
	host := f.reg.Host
	v1 := f.ref("team/app", "v1")
	ocipull := func(t *testing.T, args ...string) cliRun {
		t.Helper()
		return runProgram(t, bin, cliOptions{}, append([]string{"--plain-http"}, args...)...)
	}

	t.Run("format", func(t *testing.T) {
		appDigest := f.app.ManifestDesc.Digest.String()
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"tags", "--format", "json", host + "/team/app"}, `["v1","v2","v3"]` + "\n"},
			{[]string{"tags", "--format", "{{.Reference}}", host + "/team/app"}, v1 + "\n" + f.ref("team/app", "v2") + "\n" + f.ref("team/app", "v3") + "\n"},
			{[]string{"catalog", "--format", "json", host}, `["multi","team/app"]` + "\n"},
			{[]string{"catalog", "--format", "{{.Repository}}", host}, host + "/multi\n" + host + "/team/app\n"},
			{[]string{"resolve", "--format", "{{.Digest}}", v1}, appDigest + "\n"},
			{[]string{"resolve", "--format", "json", v1}, `{"mediaType":"` + f.app.ManifestDesc.MediaType + `","digest":"` + appDigest + `","size":` + itoa(f.app.ManifestDesc.Size) + "}\n"},
			{[]string{"manifest", "--format", "json", v1}, string(f.app.Manifest)},
			{[]string{"manifest", "--format", "{{.Config.Digest}} {{len .Layers}}", v1}, f.app.ConfigDesc.Digest.String() + " 2\n"},
			{[]string{"ping", "--format", "json", host}, `{"registry":"` + host + `","ok":true,"authenticated":false}` + "\n"},
		}
		for _, tt := range tests {
			r := ocipull(t, tt.args...).mustSucceed(t, strings.Join(tt.args, " "))
			if string(r.stdout) != tt.want {
				t.Errorf("ocipull %q printed %q, want %q", tt.args, r.stdout, tt.want)
			}
		}
		r := ocipull(t, "resolve", "--format", "{{.Digest", v1)
		if r.code != 2 || r.stderr != "ocipull: --format: unclosed action (line 1)\n" || len(r.stdout) != 0 {
			t.Errorf("bad template: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("completion and suggestions", func(t *testing.T) {
		r := ocipull(t, "--help").mustSucceed(t, "--help")
		if !strings.Contains(string(r.stdout), "\n   completion  print a shell completion script") {
			t.Errorf("--help does not list completion:\n%s", r.stdout)
		}
		r = ocipull(t, "completion", "bash").mustSucceed(t, "completion bash")
		if !strings.Contains(string(r.stdout), "complete ") {
			t.Errorf("completion bash printed no script:\n%s", r.stdout)
		}
		r = runProgram(t, bin, cliOptions{}, "--generate-shell-completion").mustSucceed(t, "completing")
		if !strings.Contains(string(r.stdout), "login:") || !strings.Contains(string(r.stdout), "pull:") {
			t.Errorf("completing the command name printed %q", r.stdout)
		}
		r = ocipull(t, "pul", v1)
		if r.code != 2 || r.stderr != `ocipull: unknown command "pul"; did you mean "pull"?`+"\n" {
			t.Errorf("ocipull pul: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("failed pull leaves no directory", func(t *testing.T) {
		authReg := newRegistry(t, registryOptions{Auth: authHtpasswd})
		for _, tc := range []struct{ name, ref string }{
			{"connection refused", closedLocalPort(t) + "/team/app:v1"},
			{"unknown repository", host + "/nope:v1"},
			{"unknown tag", host + "/team/app:nope"},
			{"unauthorized", authReg.Host + "/team/app:v1"},
		} {
			parent := filepath.Join(t.TempDir(), "new")
			out := filepath.Join(parent, "deeper", "app")
			r := ocipull(t, "pull", tc.ref, "-o", out)
			if r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%s: exit %d, stderr %q; want 1 and one line", tc.name, r.code, r.stderr)
			}
			if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %s is left behind (%v)", tc.name, parent, err)
			}
		}
		// An empty directory the user made stays, emptied of what the pull wrote.
		mine := t.TempDir()
		ocipull(t, "pull", host+"/nope:v1", "-o", mine)
		if entries, err := os.ReadDir(mine); err != nil || len(entries) != 0 {
			t.Errorf("the user's directory: %v, %v; want it empty and present", entries, err)
		}
	})

	t.Run("platform checks", func(t *testing.T) {
		r := ocipull(t, "--platform", "linux/arm64", "--all-platforms", "pull", f.ref("multi", "latest"), "-o", filepath.Join(t.TempDir(), "m"))
		if r.code != 2 || !strings.Contains(r.stderr, "--platform and --all-platforms exclude each other") {
			t.Errorf("--platform with --all-platforms: exit %d, stderr %q", r.code, r.stderr)
		}
		out := filepath.Join(t.TempDir(), "app")
		r = ocipull(t, "--platform", "linux/arm64", "pull", v1, "-o", out)
		want := "ocipull: " + v1 + " is a single-platform image for linux/amd64, not linux/arm64: drop --platform to pull it as it is\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("--platform mismatch: exit %d, stderr %q; want %q", r.code, r.stderr, want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused pull left %s", out)
		}
		ocipull(t, "--platform", "linux/amd64", "pull", v1, "-o", out).mustSucceed(t, "--platform matching")
	})

	t.Run("tar.gz", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "app.tar.gz")
		ocipull(t, "pull", v1, "-o", out).mustSucceed(t, "pull -o app.tar.gz")
		fh, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		names := map[string]bool{}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names[h.Name] = true
		}
		for _, want := range []string{"index.json", "manifest.json", "oci-layout", "blobs/sha256/" + f.app.ConfigDesc.Digest.Encoded()} {
			if !names[want] {
				t.Errorf("app.tar.gz lacks %s (has %v)", want, names)
			}
		}
		r := ocipull(t, "pull", v1, "-o", filepath.Join(t.TempDir(), "app.tar.zst"))
		if r.code != 2 || !strings.Contains(r.stderr, "only .tar and .tar.gz") {
			t.Errorf("-o app.tar.zst: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("re-pull summary and repair", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "app")
		ocipull(t, "pull", v1, "-o", out).mustSucceed(t, "pull")
		r := ocipull(t, "pull", v1, "-o", out).mustSucceed(t, "re-pull")
		if !strings.HasPrefix(r.stderr, "3 blobs, 3 skipped (already present)\n") {
			t.Errorf("re-pull stderr %q: want the summary", r.stderr)
		}

		// Corrupt one layer in place, keeping its size: verify says so and prints the
		// command that repairs it.
		layer := filepath.Join(out, "blobs", "sha256", f.app.LayerDescs[0].Digest.Encoded())
		b, err := os.ReadFile(layer)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(layer, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r = ocipull(t, "verify", out)
		fix := "ocipull pull --verify " + v1 + " -o " + out
		if r.code != 1 || !strings.Contains(r.stderr, "1 corrupt") || !strings.HasSuffix(r.stderr, fix+"\n") {
			t.Fatalf("verify of a corrupt layout: exit %d, stderr %q; want the command %q", r.code, r.stderr, fix)
		}
		// A plain re-pull trusts sizes; the printed command repairs.
		args := strings.Fields(strings.TrimPrefix(fix, "ocipull "))
		r = ocipull(t, args...).mustSucceed(t, fix)
		if !strings.Contains(r.stderr, "1 blob bad, moved to "+filepath.Join(out, ".quarantine")) {
			t.Errorf("pull --verify stderr %q: want the quarantine note", r.stderr)
		}
		r = ocipull(t, "verify", out).mustSucceed(t, "verify after the repair")
		checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v1")
	})

	t.Run("verify format", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "app")
		ocipull(t, "pull", v1, "-o", out).mustSucceed(t, "pull")
		r := ocipull(t, "verify", "--format", "json", out).mustSucceed(t, "verify --format json")
		var rep struct {
			OK    bool `json:"ok"`
			Blobs int  `json:"blobs"`
		}
		if err := json.Unmarshal(r.stdout, &rep); err != nil || !rep.OK || rep.Blobs != 4 {
			t.Errorf("verify --format json: %+v, %v\n%s", rep, err, r.stdout)
		}
		r = ocipull(t, "verify", "--format", "{{.OK}} {{.Blobs}}", out).mustSucceed(t, "verify --format TEMPLATE")
		if string(r.stdout) != "true 4\n" {
			t.Errorf("verify --format TEMPLATE printed %q", r.stdout)
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
