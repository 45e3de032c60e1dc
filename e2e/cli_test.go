package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildProgram builds the main package pkg of the root module (a path relative to
// it, like "./cmd/ocipull") into dir and returns the binary's path. The build runs in
// the root module, whose go.sum holds the program's dependencies.
func buildProgram(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, pkg)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// programEnv is an environment without the machine's credentials: HOME, the docker
// config and podman's auth file point into dir, and no OCIPULL_* variable is set.
func programEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "OCIPULL_"), name == "HOME", name == "DOCKER_CONFIG",
			name == "REGISTRY_AUTH_FILE", name == "XDG_RUNTIME_DIR", name == "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+dir,
		"DOCKER_CONFIG="+filepath.Join(dir, "docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(dir, "containers-auth.json"),
		"XDG_RUNTIME_DIR="+dir,
		"XDG_CONFIG_HOME="+dir,
	)
	return append(env, extra...)
}

// cliRun is one finished run of a program.
type cliRun struct {
	code   int
	stdout []byte
	stderr string
}

// cliOptions tune runProgram.
type cliOptions struct {
	dir    string   // working directory; default: a new temporary directory
	env    []string // extra environment variables
	stdin  string
	stdout *os.File // default: captured
}

// runProgram runs bin with args in an isolated environment and returns what it
// printed and its exit status. It fails the test if the program cannot start or
// runs for more than two minutes.
func runProgram(t *testing.T, bin string, o cliOptions, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	cmd.Dir = o.dir
	if cmd.Dir == "" {
		cmd.Dir = home
	}
	cmd.Env = programEnv(home, o.env...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q: timed out; stderr:\n%s", filepath.Base(bin), args, stderr.String())
	case errors.As(err, &exit):
	case err != nil:
		t.Fatalf("%s %q: %v", filepath.Base(bin), args, err)
	}
	return cliRun{code: cmd.ProcessState.ExitCode(), stdout: stdout.Bytes(), stderr: stderr.String()}
}

// mustSucceed fails the test unless r exited 0.
func (r cliRun) mustSucceed(t *testing.T, what string) cliRun {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, stderr:\n%s", what, r.code, r.stderr)
	}
	return r
}

// cliFixture is what seedCLIRegistry pushes: a two-layer image under three tags and
// a three-platform index.
type cliFixture struct {
	reg   *testRegistry
	app   testImage // team/app:v1, v2 and v3
	multi testIndex // multi:latest: linux/amd64, linux/arm64/v8, linux/arm/v7
}

func (f cliFixture) ref(repo, tag string) string { return f.reg.Ref(repo, tag) }

// seedCLIRegistry pushes the fixture into reg. The layers are small: a pull takes
// milliseconds.
func seedCLIRegistry(t *testing.T, reg *testRegistry) cliFixture {
	t.Helper()
	f := cliFixture{
		reg:   reg,
		app:   makeImage(101, []int64{300 << 10, 40 << 10}, platformAMD64),
		multi: makeIndex(202, []int64{64 << 10}),
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		pushImage(t, reg, "team/app", tag, f.app)
	}
	pushIndex(t, reg, "multi", "latest", f.multi)
	return f
}

// readTarFiles returns the regular files of a tar stream by name, failing the test on a
// malformed archive.
func readTarFiles(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar entry %s: %v", h.Name, err)
		}
		files[h.Name] = b
	}
}

// layoutBlobPath is the path of a blob inside an OCI layout.
func layoutBlobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// checkLayoutHolds checks that files (an OCI layout as path → content) holds img,
// named by tag in index.json.
func checkLayoutHolds(t *testing.T, files map[string][]byte, img testImage, tag string) {
	t.Helper()
	if got := string(files["oci-layout"]); !strings.Contains(got, `"imageLayoutVersion":"1.0.0"`) && !strings.Contains(got, `"imageLayoutVersion": "1.0.0"`) {
		t.Errorf("oci-layout = %q", got)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v\n%s", err, files["index.json"])
	}
	found := false
	for _, m := range idx.Manifests {
		if m.Digest == img.ManifestDesc.Digest && m.Annotations[ocispec.AnnotationRefName] == tag {
			found = true
		}
	}
	if !found {
		t.Errorf("index.json %s does not name %s as %q", files["index.json"], img.ManifestDesc.Digest, tag)
	}
	want := img.Blobs()
	want[img.ManifestDesc.Digest] = img.Manifest
	for d, content := range want {
		if got, ok := files[layoutBlobPath(d)]; !ok || !bytes.Equal(got, content) {
			t.Errorf("blob %s: present %v, %d bytes; want %d bytes equal to what was pushed", d, ok, len(got), len(content))
		}
	}
}

// readLayoutFiles reads every regular file under dir, by slash-separated relative path.
func readLayoutFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read layout %s: %v", dir, err)
	}
	return files
}

// closedLocalPort returns "127.0.0.1:port" for a port nothing listens on.
func closedLocalPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCLI(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	ocipull := func(t *testing.T, o cliOptions, args ...string) cliRun {
		t.Helper()
		return runProgram(t, bin, o, args...)
	}

	t.Run("anonymous", func(t *testing.T) {
		f := seedCLIRegistry(t, newRegistry(t, registryOptions{}))
		host := f.reg.Host
		v1 := f.ref("team/app", "v1")
		appDigest := f.app.ManifestDesc.Digest.String()

		t.Run("pull to dir", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "app")
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", v1, "-o", out).mustSucceed(t, "pull")
			if got := string(r.stdout); got != appDigest+"\n" {
				t.Errorf("stdout %q, want the digest %s", got, appDigest)
			}
			if want := "pulled " + v1 + " " + appDigest + " into " + out + "/\n"; r.stderr != want {
				t.Errorf("stderr %q, want %q", r.stderr, want)
			}
			checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v1")

			// Again: every blob is already there.
			r = ocipull(t, cliOptions{}, "-v", "--plain-http", "pull", v1, "-o", out).mustSucceed(t, "second pull")
			if n := strings.Count(r.stderr, "skipped sha256:"); n != 3 {
				t.Errorf("second pull skipped %d blobs, want 3 (config and two layers); stderr:\n%s", n, r.stderr)
			}
			if strings.Contains(r.stderr, "started ") {
				t.Errorf("second pull downloaded again:\n%s", r.stderr)
			}
		})

		t.Run("pull to default dir", func(t *testing.T) {
			wd := t.TempDir()
			r := ocipull(t, cliOptions{dir: wd}, "--plain-http", "-q", "pull", v1).mustSucceed(t, "pull")
			if string(r.stdout) != appDigest+"\n" || r.stderr != "" {
				t.Errorf("pull -q: stdout %q, stderr %q; want only the digest", r.stdout, r.stderr)
			}
			checkLayoutHolds(t, readLayoutFiles(t, filepath.Join(wd, "app")), f.app, "v1")
		})

		t.Run("pull verbose", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "-v", "--plain-http", "pull", v1, "-o", filepath.Join(t.TempDir(), "app")).mustSucceed(t, "pull -v")
			for _, d := range f.app.Descriptors() {
				for _, want := range []string{"started " + d.Digest.String(), "done    " + d.Digest.String()} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("pull -v stderr lacks %q:\n%s", want, r.stderr)
					}
				}
			}
			if !strings.Contains(r.stderr, "msg=http method=GET url=http://"+host+"/v2/team/app/manifests/v1") {
				t.Errorf("pull -v stderr lacks the manifest request:\n%s", r.stderr)
			}
		})

		t.Run("pull a platform", func(t *testing.T) {
			arm, _ := f.multi.Image(platformARM64v8)
			out := filepath.Join(t.TempDir(), "multi")
			r := ocipull(t, cliOptions{}, "--plain-http", "--platform", "linux/arm64", "pull", f.ref("multi", "latest"), "-o", out).mustSucceed(t, "pull --platform")
			if got := string(r.stdout); got != arm.ManifestDesc.Digest.String()+"\n" {
				t.Errorf("stdout %q, want the arm64 manifest %s", got, arm.ManifestDesc.Digest)
			}
			if !strings.Contains(r.stderr, "(linux/arm64/v8)") {
				t.Errorf("stderr %q does not name the platform", r.stderr)
			}
			checkLayoutHolds(t, readLayoutFiles(t, out), arm, "latest")
		})

		t.Run("pull all platforms", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "multi")
			r := ocipull(t, cliOptions{}, "--plain-http", "--all-platforms", "pull", f.ref("multi", "latest"), "-o", out).mustSucceed(t, "pull --all-platforms")
			if got := string(r.stdout); got != f.multi.Desc.Digest.String()+"\n" {
				t.Errorf("stdout %q, want the index %s", got, f.multi.Desc.Digest)
			}
			files := readLayoutFiles(t, out)
			for _, img := range f.multi.Images {
				for d := range img.Blobs() {
					if _, ok := files[layoutBlobPath(d)]; !ok {
						t.Errorf("blob %s of %s missing", d, img.Platform.Architecture)
					}
				}
			}
		})

		t.Run("pull to tar file", func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "app.tar")
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", v1, "-o", out).mustSucceed(t, "pull -o app.tar")
			if string(r.stdout) != appDigest+"\n" {
				t.Errorf("stdout %q, want the digest", r.stdout)
			}
			tf, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer tf.Close()
			files := readTarFiles(t, tf)
			checkLayoutHolds(t, files, f.app, "v1")
			if _, ok := files["manifest.json"]; !ok {
				t.Errorf("the tar has no manifest.json for docker load")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("the output directory holds %v, want only app.tar", entries)
			}
		})

		t.Run("pull to a pipe", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", v1, "-o", "-").mustSucceed(t, "pull -o -")
			checkLayoutHolds(t, readTarFiles(t, bytes.NewReader(r.stdout)), f.app, "v1")
			if !bytes.HasSuffix(r.stdout, make([]byte, 1024)) {
				t.Errorf("stdout does not end with the tar trailer: something else was written after it")
			}
			if want := "pulled " + v1 + " " + appDigest + " into stdout\n"; r.stderr != want {
				t.Errorf("stderr %q, want %q", r.stderr, want)
			}
		})

		t.Run("tags", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "tags", host+"/team/app").mustSucceed(t, "tags")
			if got := string(r.stdout); got != "v1\nv2\nv3\n" {
				t.Errorf("tags printed %q", got)
			}
		})

		t.Run("catalog", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "catalog", host).mustSucceed(t, "catalog")
			if got := string(r.stdout); got != "multi\nteam/app\n" {
				t.Errorf("catalog printed %q", got)
			}
		})

		t.Run("manifest", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "manifest", v1).mustSucceed(t, "manifest")
			if !bytes.Equal(r.stdout, f.app.Manifest) {
				t.Errorf("manifest printed %q, want the pushed bytes %q", r.stdout, f.app.Manifest)
			}
			r = ocipull(t, cliOptions{}, "--plain-http", "manifest", f.ref("multi", "latest")).mustSucceed(t, "manifest of an index")
			if !bytes.Equal(r.stdout, f.multi.Index) {
				t.Errorf("manifest of the index printed %q, want the pushed index", r.stdout)
			}
			armv7, _ := f.multi.Image(platformARMv7)
			r = ocipull(t, cliOptions{}, "--plain-http", "manifest", "--platform", "linux/arm/v7", f.ref("multi", "latest")).mustSucceed(t, "manifest --platform")
			if !bytes.Equal(r.stdout, armv7.Manifest) {
				t.Errorf("manifest --platform linux/arm/v7 printed %q, want the arm/v7 manifest", r.stdout)
			}
		})

		t.Run("resolve", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "resolve", v1).mustSucceed(t, "resolve")
			var got ocispec.Descriptor
			if err := json.Unmarshal(r.stdout, &got); err != nil {
				t.Fatalf("resolve printed %q: %v", r.stdout, err)
			}
			want := f.app.ManifestDesc
			if got.MediaType != want.MediaType || got.Digest != want.Digest || got.Size != want.Size {
				t.Errorf("resolve = %+v, want %+v", got, want)
			}
			arm, _ := f.multi.Image(platformARM64v8)
			r = ocipull(t, cliOptions{}, "--plain-http", "resolve", "--platform", "linux/arm64/v8", f.ref("multi", "latest")).mustSucceed(t, "resolve --platform")
			got = ocispec.Descriptor{}
			if err := json.Unmarshal(r.stdout, &got); err != nil {
				t.Fatalf("resolve printed %q: %v", r.stdout, err)
			}
			if got.Digest != arm.ManifestDesc.Digest || got.Platform == nil || got.Platform.Architecture != "arm64" {
				t.Errorf("resolve --platform = %s, want the arm64 manifest %s with its platform", r.stdout, arm.ManifestDesc.Digest)
			}
		})

		t.Run("blob", func(t *testing.T) {
			layer := f.app.LayerDescs[0]
			ref := host + "/team/app@" + layer.Digest.String()
			r := ocipull(t, cliOptions{}, "--plain-http", "blob", ref).mustSucceed(t, "blob")
			if !bytes.Equal(r.stdout, f.app.Layers[0]) {
				t.Errorf("blob printed %d bytes, want the %d bytes pushed", len(r.stdout), len(f.app.Layers[0]))
			}
			out := filepath.Join(t.TempDir(), "layer.tar.gz")
			ocipull(t, cliOptions{}, "--plain-http", "blob", ref, "-o", out).mustSucceed(t, "blob -o")
			if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, f.app.Layers[0]) {
				t.Errorf("blob -o wrote %d bytes (%v), want the %d bytes pushed", len(got), err, len(f.app.Layers[0]))
			}
		})

		t.Run("ping", func(t *testing.T) {
			r := ocipull(t, cliOptions{}, "--plain-http", "ping", host).mustSucceed(t, "ping")
			if got := string(r.stdout); got != host+": ok\n" {
				t.Errorf("ping printed %q", got)
			}
		})

		// Each failure is one line on stderr, naming what failed and why.
		errorTests := []struct {
			name string
			args []string
			want string
		}{
			{"unknown manifest", []string{"--plain-http", "manifest", f.ref("team/app", "nope")},
				"ocipull: manifest unknown: " + f.ref("team/app", "nope") + " not found\n"},
			{"unknown manifest on pull", []string{"--plain-http", "pull", f.ref("team/app", "nope"), "-o", "-"},
				"ocipull: manifest unknown: " + f.ref("team/app", "nope") + " not found\n"},
			{"unknown repository", []string{"--plain-http", "tags", host + "/no/such"},
				"ocipull: repository unknown: " + host + "/no/such not found on " + host + "\n"},
			{"unknown blob", []string{"--plain-http", "blob", host + "/team/app@" + digest.FromString("nothing").String()},
				"ocipull: blob unknown: " + host + "/team/app@" + digest.FromString("nothing").String() + " not found\n"},
			{"no matching platform", []string{"--plain-http", "--platform", "linux/s390x", "pull", f.ref("multi", "latest")},
				"ocipull: no matching platform: " + f.ref("multi", "latest") + " has no image for linux/s390x; available: linux/amd64, linux/arm64/v8, linux/arm/v7 (choose one with --platform)\n"},
			{"bad reference", []string{"--plain-http", "pull", host + "/Team/App:v1"},
				`ocipull: invalid reference "` + host + `/Team/App:v1": repository name must be lowercase` + "\n"},
		}
		for _, tt := range errorTests {
			t.Run(tt.name, func(t *testing.T) {
				r := ocipull(t, cliOptions{}, tt.args...)
				if r.code != 1 || r.stderr != tt.want {
					t.Errorf("ocipull %q: exit %d, stderr %q; want exit 1, %q", tt.args, r.code, r.stderr, tt.want)
				}
			})
		}

		t.Run("unreachable registry", func(t *testing.T) {
			addr := closedLocalPort(t)
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", addr+"/a:v1", "-o", "-")
			if want := "ocipull: cannot reach " + addr + ": connection refused\n"; r.code != 1 || r.stderr != want {
				t.Errorf("pull from a closed port: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
		})

		t.Run("failed tar leaves no file", func(t *testing.T) {
			dir := t.TempDir()
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", f.ref("team/app", "nope"), "-o", filepath.Join(dir, "x.tar"))
			if r.code != 1 {
				t.Errorf("pull of an unknown tag: exit %d", r.code)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed pull left %v", entries)
			}
		})

		t.Run("disk full on stdout", func(t *testing.T) {
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Skipf("no /dev/full: %v", err)
			}
			defer full.Close()
			r := ocipull(t, cliOptions{stdout: full}, "--plain-http", "pull", v1, "-o", "-")
			if want := "ocipull: no space left on device writing stdout\n"; r.code != 1 || r.stderr != want {
				t.Errorf("pull -o - > /dev/full: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
		})

		t.Run("disk full in a directory", func(t *testing.T) {
			mnt := filepath.Join(t.TempDir(), "small")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a small tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", mnt).Run() })
			big := makeImage(303, []int64{3 << 20}, platformAMD64)
			pushImage(t, f.reg, "big", "v1", big)
			out := filepath.Join(mnt, "big")
			r := ocipull(t, cliOptions{}, "--plain-http", "pull", f.ref("big", "v1"), "-o", out)
			if want := "ocipull: no space left on device writing " + out + "\n"; r.code != 1 || r.stderr != want {
				t.Errorf("pull into a full tmpfs: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
		})
	})

	t.Run("htpasswd", func(t *testing.T) {
		f := seedCLIRegistry(t, newRegistry(t, registryOptions{Auth: authHtpasswd}))
		v1 := f.ref("team/app", "v1")

		r := ocipull(t, cliOptions{}, "--plain-http", "-u", testUser, "-p", testPassword, "pull", v1, "-o", "-").mustSucceed(t, "pull with -u -p")
		checkLayoutHolds(t, readTarFiles(t, bytes.NewReader(r.stdout)), f.app, "v1")

		r = ocipull(t, cliOptions{stdin: testPassword + "\n"}, "--plain-http", "-u", testUser, "--password-stdin", "tags", f.reg.Host+"/team/app").mustSucceed(t, "tags with --password-stdin")
		if string(r.stdout) != "v1\nv2\nv3\n" {
			t.Errorf("tags printed %q", r.stdout)
		}

		env := []string{"OCIPULL_USERNAME=" + testUser, "OCIPULL_PASSWORD=" + testPassword, "OCIPULL_PLAIN_HTTP=1"}
		r = ocipull(t, cliOptions{env: env}, "catalog", f.reg.Host).mustSucceed(t, "catalog with the environment")
		if string(r.stdout) != "multi\nteam/app\n" {
			t.Errorf("catalog printed %q", r.stdout)
		}

		// docker login's config.json.
		home := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
		writeTestFile(t, filepath.Join(home, "config.json"), `{"auths":{"`+f.reg.Host+`":{"auth":"`+auth+`"}}}`)
		r = ocipull(t, cliOptions{env: []string{"DOCKER_CONFIG=" + home}}, "--plain-http", "manifest", v1).mustSucceed(t, "manifest with a docker login")
		if !bytes.Equal(r.stdout, f.app.Manifest) {
			t.Errorf("manifest printed %q", r.stdout)
		}

		for _, tt := range []struct {
			name string
			args []string
			want string
		}{
			{"anonymous", []string{"--plain-http", "pull", v1, "-o", "-"},
				"ocipull: unauthorized: authentication required for " + v1 + " — run ocipull login or pass -u\n"},
			{"bad credentials", []string{"--plain-http", "-u", testUser, "--password-stdin", "resolve", v1},
				"ocipull: unauthorized: " + f.reg.Host + " refused the credentials from -u for " + v1 + "\n"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := ocipull(t, cliOptions{stdin: "wrong\n"}, tt.args...)
				if r.code != 1 || r.stderr != tt.want {
					t.Errorf("ocipull %q: exit %d, stderr %q; want 1, %q", tt.args, r.code, r.stderr, tt.want)
				}
			})
		}
	})

	t.Run("token", func(t *testing.T) {
		f := seedCLIRegistry(t, newRegistry(t, registryOptions{Auth: authToken}))
		v1 := f.ref("team/app", "v1")

		// Anonymous pulls get a pull token.
		out := filepath.Join(t.TempDir(), "app")
		ocipull(t, cliOptions{}, "--plain-http", "pull", v1, "-o", out).mustSucceed(t, "anonymous pull")
		checkLayoutHolds(t, readLayoutFiles(t, out), f.app, "v1")

		r := ocipull(t, cliOptions{}, "--plain-http", "-u", testUser, "-p", testPassword, "catalog", f.reg.Host).mustSucceed(t, "catalog with -u -p")
		if string(r.stdout) != "multi\nteam/app\n" {
			t.Errorf("catalog printed %q", r.stdout)
		}
		ocipull(t, cliOptions{}, "--plain-http", "-u", testUser, "-p", testPassword, "ping", f.reg.Host).mustSucceed(t, "ping with -u -p")

		for _, tt := range []struct {
			name string
			args []string
			want string
		}{
			{"catalog anonymously", []string{"--plain-http", "catalog", f.reg.Host},
				"ocipull: unauthorized: authentication required for " + f.reg.Host + " — run ocipull login or pass -u\n"},
			{"bad credentials", []string{"--plain-http", "-u", testUser, "--password-stdin", "pull", v1},
				"ocipull: unauthorized: " + f.reg.Host + " refused the credentials from -u for " + v1 + "\n"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := ocipull(t, cliOptions{stdin: "wrong\n"}, tt.args...)
				if r.code != 1 || r.stderr != tt.want {
					t.Errorf("ocipull %q: exit %d, stderr %q; want 1, %q", tt.args, r.code, r.stderr, tt.want)
				}
			})
		}
	})

	t.Run("tls", func(t *testing.T) {
		f := seedCLIRegistry(t, newRegistry(t, registryOptions{Auth: authToken, TLS: true}))
		v1 := f.ref("team/app", "v1")
		r := ocipull(t, cliOptions{}, "resolve", v1)
		if want := "ocipull: cannot verify the TLS certificate of " + f.reg.Host + ": x509: certificate signed by unknown authority (--insecure skips verification)\n"; r.code != 1 || r.stderr != want {
			t.Errorf("resolve over untrusted TLS: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
		}
		r = ocipull(t, cliOptions{}, "--insecure", "-u", testUser, "-p", testPassword, "pull", v1, "-o", "-").mustSucceed(t, "pull --insecure")
		checkLayoutHolds(t, readTarFiles(t, bytes.NewReader(r.stdout)), f.app, "v1")
	})

	t.Run("interrupt and resume", func(t *testing.T) {
		reg := newRegistry(t, registryOptions{})
		img := makeImage(505, []int64{4 << 20}, platformAMD64)
		pushImage(t, reg, "big", "v1", img)
		proxy := newFaultProxy(t, &url.URL{Scheme: "http", Host: reg.Host})
		const held = 1 << 20
		proxy.Stall(held, time.Minute, -1) // every blob hangs after its first MiB
		layer := img.LayerDescs[0]

		out := filepath.Join(t.TempDir(), "big")
		home := t.TempDir()
		cmd := exec.CommandContext(t.Context(), bin, "--plain-http", "pull", proxy.Host+"/big:v1", "-o", out)
		cmd.Env = programEnv(home)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for proxy.BlobGetCount() < 2 { // the config and the layer
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the layer download did not start; stderr:\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // let the client take in the first MiB
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("ocipull did not stop after SIGINT; stderr:\n%s", stderr.String())
		}
		want := "ocipull: interrupted: partial downloads are kept in " + out + "; run the same command to resume\n"
		if code := cmd.ProcessState.ExitCode(); code != 130 || stderr.String() != want {
			t.Errorf("interrupted pull: exit %d, stderr %q; want 130, %q", code, stderr.String(), want)
		}
		if _, err := os.Stat(filepath.Join(out, layoutBlobPath(layer.Digest))); err == nil {
			t.Fatalf("the interrupted layer is in blobs/ already")
		}

		proxy.Reset()
		r := ocipull(t, cliOptions{}, "-v", "--plain-http", "pull", proxy.Host+"/big:v1", "-o", out).mustSucceed(t, "pull after the interrupt")
		if !strings.Contains(r.stderr, "resumed "+layer.Digest.String()+" at ") {
			t.Errorf("the second pull did not resume the layer:\n%s", r.stderr)
		}
		checkLayoutHolds(t, readLayoutFiles(t, out), img, "v1")
	})

	t.Run("terminal", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Skip("no script(1) to run the binary under a terminal")
		}
		reg := newRegistry(t, registryOptions{})
		img := makeImage(404, []int64{4 << 20, 1 << 20}, platformAMD64)
		pushImage(t, reg, "big", "v1", img)
		// The proxy holds each blob download for a moment so that the bars are drawn
		// while it runs, not only at the end.
		proxy := newFaultProxy(t, &url.URL{Scheme: "http", Host: reg.Host})
		proxy.Stall(512<<10, 700*time.Millisecond, -1)

		// A terminal with a size, and a bare pty that reports none.
		for _, setup := range []string{"stty cols 120 rows 40; ", ""} {
			t.Run(map[bool]string{true: "sized", false: "unsized"}[setup != ""], func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "big")
				line := setup + shellQuoteArg(bin) + " --plain-http pull " + shellQuoteArg(proxy.Host+"/big:v1") + " -o " + shellQuoteArg(out)
				r := runProgram(t, script, cliOptions{env: []string{"TERM=xterm"}}, "-qfec", line, "/dev/null")
				r.mustSucceed(t, "pull under script(1)")
				screen := string(r.stdout)
				big := img.LayerDescs[0].Digest
				for _, want := range []string{
					big.Algorithm().String() + ":" + big.Encoded()[:12], // the bar's name
					"/ 4.0 MiB",                        // bytes so far of the total
					"pulled " + proxy.Host + "/big:v1", // the summary after the bars
				} {
					if !strings.Contains(screen, want) {
						t.Errorf("terminal output lacks %q:\n%q", want, screen)
					}
				}
				if !strings.Contains(screen, "\x1b[") {
					t.Errorf("terminal output has no escape sequence: the bars were not redrawn:\n%q", screen)
				}
				checkLayoutHolds(t, readLayoutFiles(t, out), img, "v1")
			})
		}

		// Binary output is not sprayed onto a terminal.
		for _, args := range []string{
			"pull " + shellQuoteArg(reg.Host+"/big:v1") + " -o -",
			"blob " + shellQuoteArg(reg.Host+"/big@"+img.LayerDescs[0].Digest.String()),
		} {
			r := runProgram(t, script, cliOptions{}, "-qfec", shellQuoteArg(bin)+" --plain-http "+args, "/dev/null")
			if r.code != 2 || !strings.Contains(string(r.stdout), "ocipull: refusing to write a ") {
				t.Errorf("ocipull %s on a terminal: exit %d, output %q; want exit 2 and a refusal", args, r.code, r.stdout)
			}
		}
	})
}

// shellQuoteArg quotes s for sh -c.
func shellQuoteArg(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeTestFile writes content to path, creating its directory, or fails the test.
func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
