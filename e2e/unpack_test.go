package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ocistream/ocistream/unpack"
)

// Layer media types of the images pushed here.
const (
	mtLayerTar  = ocispec.MediaTypeImageLayer
	mtLayerGzip = ocispec.MediaTypeImageLayerGzip
	mtLayerZstd = ocispec.MediaTypeImageLayerZstd
)

// uLayer is a layer of an image pushed for the unpack tests: its uncompressed tar,
// how it is stored, and the diff_id the config claims (default: the right one).
type uLayer struct {
	tar       []byte
	mediaType string
	diffID    digest.Digest
}

// uEntry describes a tar entry compactly: "d NAME MODE", "f NAME MODE CONTENT",
// "l NAME TARGET" (symlink), "h NAME TARGET" (hard link), "w NAME" (empty file,
// for whiteouts).
func uTar(t testing.TB, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		f := strings.SplitN(e, " ", 4)
		h := &tar.Header{Name: f[1], ModTime: seedTime, Mode: 0o644, Format: tar.FormatPAX}
		var body string
		mode := func() {
			if _, err := fmt.Sscanf(f[2], "%o", &h.Mode); err != nil {
				t.Fatalf("entry %q: %v", e, err)
			}
		}
		switch f[0] {
		case "d":
			h.Typeflag = tar.TypeDir
			mode()
		case "f":
			h.Typeflag = tar.TypeReg
			mode()
			if len(f) > 3 {
				body = f[3]
			}
		case "l":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f[2], 0o777
		case "h":
			h.Typeflag, h.Linkname = tar.TypeLink, f[2]
		case "w":
			h.Typeflag = tar.TypeReg
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressLayer stores a tar as mediaType says.
func compressLayer(t testing.TB, mediaType string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch mediaType {
	case mtLayerGzip:
		w = gzip.NewWriter(&buf)
	case mtLayerZstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return b
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushLayers pushes an OCI image of layers as repo:tag; edit, when set, changes
// the config first. It returns the layer descriptors.
func pushLayers(t testing.TB, reg *testRegistry, repo, tag string, edit func(*ocispec.Image), layers ...uLayer) []ocispec.Descriptor {
	t.Helper()
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: hostArch()},
		RootFS:   ocispec.RootFS{Type: "layers"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
	}
	var descs []ocispec.Descriptor
	for _, l := range layers {
		mt := l.mediaType
		if mt == "" {
			mt = mtLayerGzip
		}
		blob := compressLayer(t, mt, l.tar)
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: pushBlob(t, reg, repo, blob), Size: int64(len(blob))})
		d := l.diffID
		if d == "" {
			d = digest.FromBytes(l.tar)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
	}
	if edit != nil {
		edit(&cfg)
	}
	cb := mustJSON(cfg)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: pushBlob(t, reg, repo, cb), Size: int64(len(cb))},
		Layers:    descs,
	}
	m.SchemaVersion = 2
	pushManifest(t, reg, repo, tag, m.MediaType, mustJSON(m))
	return descs
}

// hostArch is the architecture the unpacker picks by default.
func hostArch() string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}

// exportLayers are the layers of the image compared with crane export: every
// kind of entry and every whiteout rule, in the three compressions.
func exportLayers(t testing.TB) []uLayer {
	long := strings.Repeat("a-long-directory-name/", 6) + "file-whose-path-needs-pax"
	return []uLayer{
		{mediaType: mtLayerGzip, tar: uTar(t,
			"d etc 0755",
			"f etc/hostname 0644 base",
			"f etc/removed 0644 gone soon",
			"f etc/shadow 0600 secret",
			"d usr 0755", "d usr/bin 0755",
			"f usr/bin/busybox 0755 #!busybox",
			"h usr/bin/ls usr/bin/busybox",
			"l usr/bin/sh busybox",
			"l bin usr/bin",
			"l lib64 /usr/lib",
			"d usr/lib 0755",
			"f usr/lib/libc.so 0755 libc",
			"f usr/bin/sudo 4755 setuid",
			"d var 0755", "d var/lib 0755", "d var/lib/data 0700",
			"f var/lib/data/db 0600 rows",
			"d opq 0755", "f opq/lower 0644 lower", "d opq/sub 0755", "f opq/sub/deep 0644 deep",
			"d tmp 1777",
			"f empty 0644",
			"f "+long+" 0644 pax",
			"f replaced 0644 a file first",
			"d dir-to-file 0755", "f dir-to-file/child 0644 child",
		)},
		{mediaType: mtLayerZstd, tar: uTar(t,
			"w etc/.wh.removed",
			"w var/lib/.wh.data",
			"d opq 0750", "w opq/.wh..wh..opq", "f opq/upper 0644 upper",
			"d etc 0700",
			"f etc/hostname 0644 changed",
			"l replaced etc/hostname",
			"f dir-to-file 0640 now a file",
		)},
		{mediaType: mtLayerTar, tar: uTar(t,
			"w .wh.usr",
			"d usr 0755", "d usr/bin 0755",
			"f usr/bin/busybox 0755 #!busybox v2",
			"h usr/bin/cat usr/bin/busybox",
			"f kept 0644 kept",
			"w .wh.kept",
		)},
	}
}

// treeDesc describes every path under dir: type, permission and set-id bits, link
// count for files, size and content or link target.
func treeDesc(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := fi.Mode()
		bits := mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch {
		case mode.IsDir():
			m[rel] = fmt.Sprintf("dir %v", bits)
		case mode&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "symlink -> " + target
		case mode.IsRegular():
			b, _ := os.ReadFile(p)
			nlink := fi.Sys().(*syscall.Stat_t).Nlink
			m[rel] = fmt.Sprintf("file %v links %d size %d %q", bits, nlink, len(b), b)
		default:
			m[rel] = "other " + mode.String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffDesc(got, want map[string]string) string {
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "  %s:\n    unpack: %s\n    export: %s\n", k, got[k], want[k])
		}
	}
	return b.String()
}

// craneExport writes what crane export writes (go-containerregistry's
// mutate.Extract of the image ref) into dir the way tar -x does: with GNU tar.
func craneExport(t testing.TB, reg *testRegistry, ref, dir string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithTransport(http.DefaultTransport), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tarCmd := exec.CommandContext(t.Context(), "tar", "-x", "-p", "-f", "-", "-C", dir)
	rc := mutate.Extract(img)
	defer rc.Close()
	tarCmd.Stdin = rc
	if out, err := tarCmd.CombinedOutput(); err != nil {
		t.Fatalf("crane export | tar -x: %v\n%s", err, out)
	}
}

func TestUnpackMatchesCraneExport(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar to compare with")
	}
	reg := newRegistry(t, registryOptions{})
	pushLayers(t, reg, "export", "v1", nil, exportLayers(t)...)
	ref := reg.Ref("export", "v1")

	want := filepath.Join(t.TempDir(), "export")
	craneExport(t, reg, ref, want)

	repo, err := sdkClient(t, reg, false).Repository(ref)
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(t.TempDir(), "rootfs")
	res, err := unpack.Image(t.Context(), repo, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layers) != 3 {
		t.Errorf("%d layers applied, want 3", len(res.Layers))
	}
	g, w := treeDesc(t, got), treeDesc(t, want)
	// Where crane is wrong: go-containerregistry v0.22.1 applies a whiteout to
	// the entries of its own layer too, so a directory whited out and recreated
	// in one layer (usr, in the third) disappears from its export. The
	// image-spec says a whiteout hides lower layers only; the checks below hold
	// unpack to that.
	for _, m := range []map[string]string{g, w} {
		for p := range m {
			if p == "usr" || strings.HasPrefix(p, "usr/") {
				delete(m, p)
			}
		}
	}
	if d := diffDesc(g, w); d != "" {
		t.Errorf("unpack and crane export | tar -x differ:\n%s", d)
	}
	g = treeDesc(t, got)
	// The rules themselves, not only agreement with crane.
	for p, desc := range map[string]string{
		"etc/hostname":    `file -rw-r--r-- links 1 size 7 "changed"`,
		"opq/upper":       `file -rw-r--r-- links 1 size 5 "upper"`,
		"usr/bin/cat":     `file -rwxr-xr-x links 2 size 12 "#!busybox v2"`,
		"replaced":        "symlink -> etc/hostname",
		"usr/bin/sudo":    "",
		"kept":            `file -rw-r--r-- links 1 size 4 "kept"`,
		"var/lib/data":    "",
		"etc/removed":     "",
		"opq/lower":       "",
		"opq/sub":         "",
		"lib64":           "symlink -> /usr/lib",
		"dir-to-file":     `file -rw-r----- links 1 size 10 "now a file"`,
		"usr/lib/libc.so": "",
		"usr/bin/ls":      "",
		"usr/bin":         "dir -rwxr-xr-x",
		"usr/bin/busybox": `file -rwxr-xr-x links 2 size 12 "#!busybox v2"`,
	} {
		if g[p] != desc {
			t.Errorf("%s: %q, want %q", p, g[p], desc)
		}
	}
}

func TestUnpackBundleValidates(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	pushLayers(t, reg, "bundle", "v1", func(c *ocispec.Image) {
		c.Config.Entrypoint = []string{"/bin/app"}
		c.Config.Cmd = []string{"--flag"}
		c.Config.Env = []string{"A=b"}
		c.Config.User = "app:app"
		c.Config.WorkingDir = "/srv"
		c.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
		c.Config.Labels = map[string]string{"org.example": "yes"}
	}, uLayer{tar: uTar(t,
		"f etc/passwd 0644 app:x:100:101::/home/app:/bin/sh",
		"f etc/group 0644 app:x:101:",
		"f bin/app 0755 #!/bin/sh",
	)})
	repo, err := sdkClient(t, reg, false).Repository(reg.Ref("bundle", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := unpack.Image(t.Context(), repo, dir, &unpack.Options{Bundle: true}); err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	schema := compileRuntimeSchema(t)
	if schema.Validate(map[string]any{"process": map[string]any{}}) == nil {
		t.Fatal("the schema accepts a config without ociVersion and root: it checks nothing")
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("config.json does not validate against the runtime-spec schema: %v\n%s", err, config)
	}
	var spec struct {
		Process struct {
			Args []string
			User struct{ UID, GID uint32 }
		}
	}
	json.Unmarshal(config, &spec)
	if strings.Join(spec.Process.Args, " ") != "/bin/app --flag" || spec.Process.User.UID != 100 || spec.Process.User.GID != 101 {
		t.Errorf("process %+v", spec.Process)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs/bin/app")); err != nil {
		t.Error(err)
	}
}

// compileRuntimeSchema compiles the runtime-spec's config schema, from the module
// the SDK builds bundles with.
func compileRuntimeSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/runtime-spec").Output()
	if err != nil {
		t.Fatalf("go list runtime-spec: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files in %s: %v", dir, err)
	}
	c := jsonschema.NewCompiler()
	// The files the config schema refers to do not say their draft: it is 4.
	c.DefaultDraft(jsonschema.Draft4)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// One reference lacks the slash of its JSON pointer ("#definitions/uint32").
		b = bytes.ReplaceAll(b, []byte(`"#definitions/`), []byte(`"#/definitions/`))
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource("file://"+f, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("file://" + filepath.Join(dir, "config-schema.json"))
	if err != nil {
		t.Fatalf("compile the runtime-spec config schema: %v", err)
	}
	return s
}

// TestUnpackCLI runs ocipull unpack against the registry: an image in every
// compression, then each bad input of the issue, one line each and exit 1.
func TestUnpackCLI(t *testing.T) {
	reg := newRegistry(t, registryOptions{})
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	good := uTar(t, "d etc 0755", "f etc/os-release 0644 ID=test")
	pushLayers(t, reg, "app", "v1", nil,
		uLayer{tar: good},
		uLayer{tar: uTar(t, "f zstd 0644 z"), mediaType: mtLayerZstd},
		uLayer{tar: uTar(t, "f plain 0644 p"), mediaType: mtLayerTar},
	)
	pushLayers(t, reg, "app", "bad-diffid", nil, uLayer{tar: good, diffID: digest.FromString("not this")})
	pushLayers(t, reg, "app", "unknown-type", nil, uLayer{tar: good, mediaType: "application/vnd.example.layer.v1.tar+lz4"})
	pushLayers(t, reg, "app", "hostile", nil, uLayer{tar: uTar(t, "l evil ../../..", "f evil/escape 0644 x")})
	pushLayers(t, reg, "app", "foreign", nil,
		uLayer{tar: good, mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
		uLayer{tar: uTar(t, "f app 0644 app")},
	)

	work := t.TempDir()
	run := func(args ...string) cliRun {
		return runProgram(t, bin, cliOptions{dir: work}, append([]string{"--plain-http"}, args...)...)
	}
	r := run("unpack", reg.Ref("app", "v1"), "rootfs").mustSucceed(t, "unpack")
	if !strings.HasPrefix(string(r.stdout), "sha256:") {
		t.Errorf("stdout %q: want the manifest digest", r.stdout)
	}
	want := map[string]string{
		"etc":            "dir -rwxr-xr-x",
		"etc/os-release": `file -rw-r--r-- links 1 size 7 "ID=test"`,
		"zstd":           `file -rw-r--r-- links 1 size 1 "z"`,
		"plain":          `file -rw-r--r-- links 1 size 1 "p"`,
	}
	if d := diffDesc(treeDesc(t, filepath.Join(work, "rootfs")), want); d != "" {
		t.Errorf("rootfs (got / want):\n%s", d)
	}
	run("unpack", "--skip-foreign", reg.Ref("app", "foreign"), "foreign").mustSucceed(t, "unpack --skip-foreign")

	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"unpack", reg.Ref("app", "v1"), "rootfs"}, "is not empty (overwrite it with --force)"},
		{[]string{"unpack", reg.Ref("app", "bad-diffid"), "d1"}, "digest mismatch: the uncompressed layer is"},
		{[]string{"unpack", reg.Ref("app", "unknown-type"), "d2"}, `unknown layer media type "application/vnd.example.layer.v1.tar+lz4"`},
		{[]string{"unpack", reg.Ref("app", "hostile"), "d3"}, `entry "evil/escape": invalid layer`},
		{[]string{"unpack", reg.Ref("app", "foreign"), "d4"}, "foreign, non-distributable layer"},
		{[]string{"unpack", reg.Ref("app", "missing"), "d5"}, "manifest unknown"},
	} {
		r := run(tt.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.says) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("ocipull %q: exit %d, stderr %q; want exit 1 and one line saying %q", tt.args, r.code, r.stderr, tt.says)
		}
	}
	entries, _ := os.ReadDir(work)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "foreign rootfs" {
		t.Errorf("work directory holds %q, want only the two unpacked trees", names)
	}
	run("unpack", "--force", "--skip-foreign", reg.Ref("app", "foreign"), "rootfs").mustSucceed(t, "unpack --force")

	// A full disk: a 1 MiB tmpfs, where mounting one is allowed.
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Logf("no full-disk check: cannot mount a small tmpfs: %v", err)
		return
	}
	defer syscall.Unmount(small, 0)
	var big bytes.Buffer
	tw := tar.NewWriter(&big)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: 2 << 20})
	tw.Write(makeBlob(3, 2<<20))
	tw.Close()
	pushLayers(t, reg, "app", "big", nil, uLayer{tar: big.Bytes()})
	r = run("unpack", reg.Ref("app", "big"), filepath.Join(small, "rootfs"))
	if want := "ocipull: no space left on device writing " + filepath.Join(small, "rootfs") + "\n"; r.code != 1 || r.stderr != want {
		t.Errorf("unpack onto a full disk: exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, want)
	}
	if entries, _ := os.ReadDir(small); len(entries) != 0 {
		t.Errorf("left on the full disk: %v", entries)
	}
}

// TestCraneExportHelper is not a test: run by BenchmarkUnpack1GiB in a process of
// its own, it writes what crane export writes (mutate.Extract of the image
// OCISTREAM_EXPORT_REF) on stdout.
func TestCraneExportHelper(t *testing.T) {
	ref := os.Getenv("OCISTREAM_EXPORT_REF")
	if ref == "" {
		t.Skip("run by BenchmarkUnpack1GiB")
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithTransport(http.DefaultTransport))
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if _, err := io.Copy(os.Stdout, rc); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkUnpack1GiB unpacks an image of 4 × 256 MiB gzip layers from the
// registry with "ocipull unpack", and alternately with crane export's code
// (go-containerregistry's mutate.Extract, in a process of its own) piped into GNU
// tar -x, and reports the wall-time ratio and the peak RSS of each side (for
// crane, exporter plus tar). It runs only when OCISTREAM_BENCH_UNPACK is set, as
// it pushes 1 GiB and writes 2 GiB per iteration.
func BenchmarkUnpack1GiB(b *testing.B) {
	if os.Getenv("OCISTREAM_BENCH_UNPACK") == "" {
		b.Skip("set OCISTREAM_BENCH_UNPACK=1 to compare unpacking 1 GiB with crane export | tar -x")
	}
	reg := newRegistry(b, registryOptions{Filesystem: true})
	const layer = 256 << 20
	img := makeImage(7, []int64{layer, layer, layer, layer}, ocispec.Platform{OS: "linux", Architecture: hostArch()})
	pushImage(b, reg, "big", "latest", img)
	img = testImage{} // let the 1 GiB go
	ref := reg.Ref("big", "latest")
	binDir := b.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "ocipull"), "./cmd/ocipull")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	bin := filepath.Join(binDir, "ocipull")
	work := b.TempDir()

	ours := func(dir string) (float64, float64) {
		c := exec.Command(bin, "--plain-http", "-q", "unpack", ref, dir)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		start := nowSeconds()
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		rss := watchRSS(c.Process.Pid)
		if err := c.Wait(); err != nil {
			b.Fatalf("ocipull unpack: %v: %s", err, stderr.String())
		}
		return nowSeconds() - start, rss()
	}
	theirs := func(dir string) (float64, float64) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		exp := exec.Command(os.Args[0], "-test.run=^TestCraneExportHelper$")
		exp.Env = append(os.Environ(), "OCISTREAM_EXPORT_REF="+ref)
		x := exec.Command("tar", "-x", "-p", "-f", "-", "-C", dir)
		pipe, err := exp.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		x.Stdin = pipe
		start := nowSeconds()
		if err := exp.Start(); err != nil {
			b.Fatal(err)
		}
		if err := x.Start(); err != nil {
			b.Fatal(err)
		}
		rssE, rssX := watchRSS(exp.Process.Pid), watchRSS(x.Process.Pid)
		errX := x.Wait()
		errE := exp.Wait()
		if errX != nil || errE != nil {
			b.Fatalf("export | tar -x: %v, %v", errE, errX)
		}
		return nowSeconds() - start, rssE() + rssX()
	}

	var ourWall, theirWall, ourRSS, theirRSS float64
	b.SetBytes(4 * layer)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, c := filepath.Join(work, fmt.Sprintf("ours-%d", i)), filepath.Join(work, fmt.Sprintf("theirs-%d", i))
		var w1, r1, w2, r2 float64
		if i%2 == 0 {
			w1, r1 = ours(a)
			w2, r2 = theirs(c)
		} else {
			w2, r2 = theirs(c)
			w1, r1 = ours(a)
		}
		ourWall += w1
		theirWall += w2
		ourRSS, theirRSS = max(ourRSS, r1), max(theirRSS, r2)
		os.RemoveAll(a)
		os.RemoveAll(c)
	}
	b.ReportMetric(ourWall/float64(b.N), "unpack-s/op")
	b.ReportMetric(theirWall/float64(b.N), "export-tar-s/op")
	b.ReportMetric(ourWall/theirWall, "wall-ratio")
	b.ReportMetric(ourRSS, "unpack-peak-RSS-MiB")
	b.ReportMetric(theirRSS, "export-tar-peak-RSS-MiB")
	b.ReportMetric(ourRSS/theirRSS, "RSS-ratio")
}

// watchRSS samples the peak resident set (VmHWM) of process pid every 5 ms until
// the returned function is called, which returns it in MiB. (The rusage of a
// child is no use here: its ru_maxrss counts the memory of the test process it
// was forked from.) Call it after Wait: the last sample then is the last word.
func watchRSS(pid int) func() float64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		file := fmt.Sprintf("/proc/%d/status", pid)
		for {
			if b, err := os.ReadFile(file); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					var kib int64
					if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kib); err == nil && kib > peak.Load() {
						peak.Store(kib)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		return float64(peak.Load()) / 1024
	}
}

// nowSeconds is the monotonic time in seconds.
func nowSeconds() float64 { return float64(time.Since(benchEpoch)) / float64(time.Second) }

var benchEpoch = time.Now()
