package e2e

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamples builds each program under examples/ and runs it against the
// in-process registry.
func TestExamples(t *testing.T) {
	binDir := t.TempDir()
	bin := map[string]string{}
	for _, name := range []string{"tags", "catalog", "pulltar", "verifyblob"} {
		bin[name] = buildProgram(t, binDir, "./examples/"+name)
	}

	anon := seedCLIRegistry(t, newRegistry(t, registryOptions{}))
	basic := seedCLIRegistry(t, newRegistry(t, registryOptions{Auth: authHtpasswd}))
	token := seedCLIRegistry(t, newRegistry(t, registryOptions{Auth: authToken}))

	t.Run("tags", func(t *testing.T) {
		for _, f := range []cliFixture{basic, token} {
			r := runProgram(t, bin["tags"], cliOptions{}, "-plain-http", "-username", testUser, "-password", testPassword, f.reg.Host+"/team/app").
				mustSucceed(t, "tags with credentials")
			if got := string(r.stdout); got != "v1\nv2\nv3\n" {
				t.Errorf("tags (%v) printed %q, want v1 v2 v3", f.reg.Auth, got)
			}
		}
		r := runProgram(t, bin["tags"], cliOptions{}, "-plain-http", "-limit", "2", anon.reg.Host+"/team/app").mustSucceed(t, "tags -limit 2")
		if got := string(r.stdout); got != "v1\nv2\n" {
			t.Errorf("tags -limit 2 printed %q", got)
		}
		r = runProgram(t, bin["tags"], cliOptions{}, "-plain-http", basic.reg.Host+"/team/app")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "tags: ") || !strings.Contains(r.stderr, "401 Unauthorized") {
			t.Errorf("tags without credentials: exit %d, stderr %q; want 1 and a 401", r.code, r.stderr)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		r := runProgram(t, bin["catalog"], cliOptions{}, "-plain-http", anon.reg.Host).mustSucceed(t, "catalog")
		if got := string(r.stdout); got != "multi\nteam/app\n" {
			t.Errorf("catalog printed %q", got)
		}
		if r.stderr != "catalog: 2 repositories\n" {
			t.Errorf("catalog stderr %q", r.stderr)
		}
		r = runProgram(t, bin["catalog"], cliOptions{}, "-plain-http", "-tags", "-page-size", "1", anon.reg.Host).mustSucceed(t, "catalog -tags")
		if got := string(r.stdout); got != "multi\tlatest\nteam/app\tv1 v2 v3\n" {
			t.Errorf("catalog -tags printed %q", got)
		}
	})

	t.Run("pulltar", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "app.tar")
		r := runProgram(t, bin["pulltar"], cliOptions{}, "-plain-http", anon.ref("team/app", "v1"), out).mustSucceed(t, "pulltar")
		if want := anon.app.ManifestDesc.Digest.String() + " " + out + "\n"; string(r.stdout) != want {
			t.Errorf("pulltar printed %q, want %q", r.stdout, want)
		}
		tf, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer tf.Close()
		files := readTarFiles(t, tf)
		checkLayoutHolds(t, files, anon.app, "v1")
		if _, ok := files["manifest.json"]; !ok {
			t.Errorf("the tar has no manifest.json")
		}

		arm, _ := anon.multi.Image(platformARMv7)
		out = filepath.Join(dir, "multi.tar")
		runProgram(t, bin["pulltar"], cliOptions{}, "-plain-http", "-platform", "linux/arm/v7", anon.ref("multi", "latest"), out).mustSucceed(t, "pulltar -platform")
		tf2, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer tf2.Close()
		checkLayoutHolds(t, readTarFiles(t, tf2), arm, "latest")

		r = runProgram(t, bin["pulltar"], cliOptions{}, "-plain-http", anon.ref("team/app", "nope"), filepath.Join(dir, "nope.tar"))
		if r.code != 1 || !strings.Contains(r.stderr, "manifest unknown") {
			t.Errorf("pulltar of an unknown tag: exit %d, stderr %q", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "nope.tar")); err == nil {
			t.Errorf("a failed pulltar left nope.tar")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("the directory holds %v, want app.tar and multi.tar only", entries)
		}
	})

	t.Run("verifyblob", func(t *testing.T) {
		layer := anon.app.LayerDescs[0]
		arg := anon.reg.Host + "/team/app@" + layer.Digest.String()
		r := runProgram(t, bin["verifyblob"], cliOptions{}, "-plain-http", arg).mustSucceed(t, "verifyblob")
		if want := layer.Digest.String() + " verified, " + strconv.FormatInt(layer.Size, 10) + " bytes\n"; string(r.stdout) != want {
			t.Errorf("verifyblob printed %q, want %q", r.stdout, want)
		}
		out := filepath.Join(t.TempDir(), "layer")
		runProgram(t, bin["verifyblob"], cliOptions{}, "-plain-http", "-o", out, arg).mustSucceed(t, "verifyblob -o")
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, anon.app.Layers[0]) {
			t.Errorf("verifyblob -o wrote %d bytes (%v), want the layer", len(got), err)
		}

		// A byte flipped on the way is caught, and the file removed.
		proxy := newFaultProxy(t, &url.URL{Scheme: "http", Host: anon.reg.Host})
		proxy.FlipByte(1000, -1)
		out = filepath.Join(t.TempDir(), "layer")
		r = runProgram(t, bin["verifyblob"], cliOptions{}, "-plain-http", "-o", out, proxy.Host+"/team/app@"+layer.Digest.String())
		if r.code != 1 || !strings.Contains(r.stderr, "digest mismatch") {
			t.Errorf("verifyblob of a corrupted blob: exit %d, stderr %q; want 1 and a digest mismatch", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("verifyblob kept the corrupted file")
		}
	})
}
