package unpack

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocistream/ocistream/ocitypes"
)

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001:App:/home/app:/bin/sh\nbroken line\n"
	testGroup  = "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\naudio:x:29:app\n"
)

func TestResolveUser(t *testing.T) {
	tests := []struct {
		user    string
		want    specs.User
		home    string
		wantErr string
	}{
		{"", specs.User{UID: 0, GID: 0}, "/root", ""},
		{"app", specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 29}}, "/home/app", ""},
		{"1000", specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 29}}, "/home/app", ""},
		{"app:wheel", specs.User{UID: 1000, GID: 10}, "/home/app", ""},
		{"app:42", specs.User{UID: 1000, GID: 42}, "/home/app", ""},
		{"4242:4343", specs.User{UID: 4242, GID: 4343}, "", ""},
		{"4242", specs.User{UID: 4242, GID: 0}, "", ""},
		{"nobody", specs.User{}, "", `user "nobody" is not in`},
		{"app:nogroup", specs.User{}, "", `group "nogroup" is not in`},
	}
	dir := t.TempDir()
	// /etc/passwd behind an absolute link, as some images have it.
	writeFile(t, filepath.Join(dir, "usr/share/passwd"), testPasswd)
	writeFile(t, filepath.Join(dir, "etc/group"), testGroup)
	if err := os.Symlink("/usr/share/passwd", filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, home, err := resolveUser(root, tt.user)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || home != tt.home {
				t.Errorf("got %+v home %q, want %+v home %q", got, home, tt.want, tt.home)
			}
		})
	}
}

func TestBundle(t *testing.T) {
	layer := layerTar(t,
		fileE("etc/passwd", testPasswd, 0o644),
		fileE("etc/group", testGroup, 0o644),
		fileE("bin/app", "#!/bin/sh\n", 0o755),
	)
	src, _ := testImage(t, func(c *ocitypes.Image) {
		c.Config.Entrypoint = []string{"/bin/app", "--serve"}
		c.Config.Cmd = []string{"--port", "80"}
		c.Config.Env = []string{"PATH=/bin", "LANG=C.UTF-8"}
		c.Config.WorkingDir = "/srv"
		c.Config.User = "app"
		c.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}, "53/udp": {}}
		c.Config.Labels = map[string]string{"org.example.team": "core", "org.opencontainers.image.os": "label wins"}
		c.Config.StopSignal = "SIGQUIT"
	}, testLayer{tar: layer})
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := Image(t.Context(), src, dir, &Options{Bundle: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	p := spec.Process
	if want := []string{"/bin/app", "--serve", "--port", "80"}; !slices.Equal(p.Args, want) {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	if want := []string{"PATH=/bin", "LANG=C.UTF-8", "HOME=/home/app"}; !slices.Equal(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if p.Cwd != "/srv" || p.User.UID != 1000 || p.User.GID != 1001 || p.Terminal {
		t.Errorf("cwd %q user %+v terminal %v", p.Cwd, p.User, p.Terminal)
	}
	wantAnn := map[string]string{
		"org.opencontainers.image.os":           "label wins",
		"org.opencontainers.image.architecture": ocitypes.HostPlatform().Architecture,
		"org.opencontainers.image.stopSignal":   "SIGQUIT",
		"org.opencontainers.image.exposedPorts": "53/udp,80/tcp",
		"org.example.team":                      "core",
	}
	if !reflect.DeepEqual(spec.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", spec.Annotations, wantAnn)
	}
	if spec.Root == nil || spec.Root.Path != "rootfs" || spec.Version != specs.Version {
		t.Errorf("root %+v version %q", spec.Root, spec.Version)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range spec.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if want := []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount"}; !slices.Equal(ns, want) {
		t.Errorf("namespaces %v, want %v", ns, want)
	}
	var mounts []string
	for _, m := range spec.Mounts {
		mounts = append(mounts, m.Destination)
	}
	for _, m := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} {
		if !slices.Contains(mounts, m) {
			t.Errorf("no %s mount in %v", m, mounts)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "rootfs/bin/app")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("rootfs/bin/app: %q %v", b, err)
	}
}

func TestBundleNothingToRun(t *testing.T) {
	src, _ := testImage(t, func(c *ocitypes.Image) { c.Config.Cmd = nil }, testLayer{tar: layerTar(t, fileE("f", "f", 0o644))})
	base := t.TempDir()
	_, err := Image(t.Context(), src, filepath.Join(base, "bundle"), &Options{Bundle: true})
	if err == nil || !strings.Contains(err.Error(), "neither entrypoint nor cmd") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestRuncRun runs a bundle with runc: a static program that prints its
// arguments, its working directory and its user. It needs root, runc on PATH and
// OCISTREAM_TEST_RUNC=1.
func TestRuncRun(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if os.Getenv("OCISTREAM_TEST_RUNC") == "" || err != nil || os.Geteuid() != 0 {
		t.Skip("set OCISTREAM_TEST_RUNC=1, as root with runc on PATH, to run a bundle")
	}
	work := t.TempDir()
	prog := filepath.Join(work, "main.go")
	writeFile(t, prog, `package main

import ("fmt"; "os")

func main() {
	wd, _ := os.Getwd()
	fmt.Println(os.Args[1:], wd, os.Getuid(), os.Getgid(), os.Getenv("HOME"))
}
`)
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(work, "hello"), prog)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(work, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	hello := fileE("bin/hello", string(bin), 0o755)
	src, _ := testImage(t, func(c *ocitypes.Image) {
		c.Config.Entrypoint = []string{"/bin/hello", "from"}
		c.Config.Cmd = []string{"the", "bundle"}
		c.Config.WorkingDir = "/srv"
		c.Config.User = "app"
	}, testLayer{tar: layerTar(t, fileE("etc/passwd", testPasswd, 0o644), fileE("etc/group", testGroup, 0o644), dirE("srv/", 0o755), hello)})
	dir := filepath.Join(work, "bundle")
	if _, err := Image(t.Context(), src, dir, &Options{Bundle: true}); err != nil {
		t.Fatal(err)
	}
	id := "ocistream-test-" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(t.Context(), runc, "--root", filepath.Join(work, "runc-state"), "run", "-b", dir, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), "[from the bundle] /srv 1000 1001 /home/app\n"; got != want {
		t.Errorf("the container printed %q, want %q", got, want)
	}
}
