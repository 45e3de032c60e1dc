package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// unpackLayers unpacks an image of the given layers (tars, gzip) into a fresh
// directory and returns it.
func unpackLayers(t *testing.T, opts *Options, layers ...[]byte) (string, Result, error) {
	t.Helper()
	var tl []testLayer
	for _, l := range layers {
		tl = append(tl, testLayer{tar: l})
	}
	src, _ := testImage(t, nil, tl...)
	dir := filepath.Join(t.TempDir(), "rootfs")
	res, err := Image(t.Context(), src, dir, opts)
	return dir, res, err
}

func TestLayers(t *testing.T) {
	long := strings.Repeat("long-directory-name/", 8) + "and-a-file-name-over-a-hundred-bytes"
	paxName := "ünïcode name with spaces and a very long tail " + strings.Repeat("x", 120)
	tests := []struct {
		name   string
		layers [][]*tar.Header
		want   map[string]string
	}{
		{
			name: "files dirs links",
			layers: [][]*tar.Header{{
				dirE("etc/", 0o755),
				fileE("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
				fileE("etc/shadow", "secret", 0o600),
				symE("etc/alias", "passwd"),
				linkE("etc/hard", "etc/passwd"),
				dirE("tmp/", 0o1777),
				fileE("usr/bin/tool", "#!/bin/sh\n", 0o755), // parents created implicitly
			}},
			want: map[string]string{
				"etc":          "dir 0755",
				"etc/passwd":   `file 0644 "root:x:0:0::/root:/bin/sh\n"`,
				"etc/shadow":   `file 0600 "secret"`,
				"etc/alias":    "symlink -> passwd",
				"etc/hard":     `file 0644 "root:x:0:0::/root:/bin/sh\n"`,
				"tmp":          "dir 0777",
				"usr":          "dir 0755",
				"usr/bin":      "dir 0755",
				"usr/bin/tool": `file 0755 "#!/bin/sh\n"`,
			},
		},
		{
			name: "long and pax names, dot-slash prefixes",
			layers: [][]*tar.Header{{
				dirE("./", 0o755),
				fileE("./"+long, "long", 0o644),
				fileE(paxName, "pax", 0o640),
			}},
			want: func() map[string]string {
				m := map[string]string{paxName: `file 0640 "pax"`, long: `file 0644 "long"`}
				for d := filepath.Dir(long); d != "."; d = filepath.Dir(d) {
					m[d] = "dir 0755"
				}
				return m
			}(),
		},
		{
			name: "entries out of order: a directory entry after its content",
			layers: [][]*tar.Header{{
				fileE("a/b/c", "c", 0o644),
				dirE("a/b/", 0o700),
				dirE("a/", 0o750),
			}},
			want: map[string]string{"a": "dir 0750", "a/b": "dir 0700", "a/b/c": `file 0644 "c"`},
		},
		{
			name: "an entry through a relative link of a lower layer",
			layers: [][]*tar.Header{
				{dirE("usr/bin/", 0o755), symE("bin", "usr/bin")},
				{fileE("bin/sh", "sh", 0o755)},
			},
			want: map[string]string{"usr": "dir 0755", "usr/bin": "dir 0755", "bin": "symlink -> usr/bin", "usr/bin/sh": `file 0755 "sh"`},
		},
		{
			name: "an absolute link is followed inside the root",
			layers: [][]*tar.Header{
				{dirE("usr/lib64/", 0o755), symE("lib64", "/usr/lib64")},
				{fileE("lib64/ld.so", "ld", 0o755)},
			},
			want: map[string]string{"usr": "dir 0755", "usr/lib64": "dir 0755", "lib64": "symlink -> /usr/lib64", "usr/lib64/ld.so": `file 0755 "ld"`},
		},
		{
			name: "a later layer replaces a file by a dir and a dir by a file",
			layers: [][]*tar.Header{
				{fileE("x", "file", 0o644), dirE("y/", 0o755), fileE("y/child", "c", 0o644)},
				{dirE("x/", 0o711), fileE("y", "now a file", 0o600)},
			},
			want: map[string]string{"x": "dir 0711", "y": `file 0600 "now a file"`},
		},
		{
			name: "a file entry replaces a lower link instead of writing through it",
			layers: [][]*tar.Header{
				{fileE("target", "kept", 0o644), symE("link", "target")},
				{fileE("link", "new", 0o644)},
			},
			want: map[string]string{"target": `file 0644 "kept"`, "link": `file 0644 "new"`},
		},
		{
			name: "a directory entry keeps the lower content and takes the new mode",
			layers: [][]*tar.Header{
				{dirE("d/", 0o755), fileE("d/old", "old", 0o644)},
				{dirE("d/", 0o700), fileE("d/new", "new", 0o644)},
			},
			want: map[string]string{"d": "dir 0700", "d/old": `file 0644 "old"`, "d/new": `file 0644 "new"`},
		},
		{
			name: "whiteouts hide lower files and directories",
			layers: [][]*tar.Header{
				{fileE("a/x", "x", 0o644), fileE("a/y", "y", 0o644), fileE("a/z", "z", 0o644), fileE("b/deep/f", "f", 0o644)},
				{whE("a/.wh.x"), whE(".wh.b")},
				// Whiteout after the same layer's entry: the entry stays (image-spec).
				{fileE("a/y", "y2", 0o644), whE("a/.wh.y")},
				// Whiteout of something that never existed: nothing to do.
				{whE("nowhere/.wh.nothing"), whE("a/.wh.never")},
			},
			want: map[string]string{"a": "dir 0755", "a/y": `file 0644 "y2"`, "a/z": `file 0644 "z"`},
		},
		{
			name: "whiteout then recreate in one layer",
			layers: [][]*tar.Header{
				{fileE("d/old", "old", 0o644), fileE("d/sub/old", "old", 0o644)},
				{whE(".wh.d"), dirE("d/", 0o755), fileE("d/new", "new", 0o644)},
			},
			want: map[string]string{"d": "dir 0755", "d/new": `file 0644 "new"`},
		},
		{
			name: "a whiteout after the same layer's directory hides only the lower children",
			layers: [][]*tar.Header{
				{fileE("d/old", "old", 0o644)},
				{dirE("d/", 0o755), fileE("d/new", "new", 0o644), whE(".wh.d")},
			},
			want: map[string]string{"d": "dir 0755", "d/new": `file 0644 "new"`},
		},
		{
			name: "opaque directory, whatever its place in the layer",
			layers: [][]*tar.Header{
				{fileE("o/lower", "l", 0o644), fileE("o/sub/lower", "l", 0o644), fileE("p/lower", "l", 0o644), fileE("keep", "k", 0o644)},
				{
					dirE("o/", 0o755), whE("o/.wh..wh..opq"), fileE("o/upper", "u", 0o644),
					// Marker after the new content: the new content stays.
					dirE("p/", 0o755), fileE("p/upper", "u", 0o644), fileE("p/sub/upper", "u", 0o644), whE("p/.wh..wh..opq"),
				},
			},
			want: map[string]string{
				"o": "dir 0755", "o/upper": `file 0644 "u"`,
				"p": "dir 0755", "p/upper": `file 0644 "u"`, "p/sub": "dir 0755", "p/sub/upper": `file 0644 "u"`,
				"keep": `file 0644 "k"`,
			},
		},
		{
			name: "hard links to a lower layer's file and to a symlink",
			layers: [][]*tar.Header{
				{fileE("bin/busybox", "bb", 0o755), symE("bin/sh", "busybox")},
				{linkE("bin/ls", "bin/busybox"), linkE("bin/sh2", "bin/sh")},
			},
			want: map[string]string{"bin": "dir 0755", "bin/busybox": `file 0755 "bb"`, "bin/sh": "symlink -> busybox",
				"bin/ls": `file 0755 "bb"`, "bin/sh2": "symlink -> busybox"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers [][]byte
			for _, l := range tt.layers {
				layers = append(layers, layerTar(t, l...))
			}
			dir, res, err := unpackLayers(t, nil, layers...)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffTrees(tree(t, dir), tt.want); d != "" {
				t.Errorf("tree differs:\n%s", d)
			}
			if len(res.Layers) != len(layers) {
				t.Errorf("%d layers applied, want %d", len(res.Layers), len(layers))
			}
			if _, err := os.Lstat(stagingPath(dir)); !os.IsNotExist(err) {
				t.Errorf("staging directory left: %v", err)
			}
		})
	}
}

// TestHostile checks that each way out of the root is refused with an error naming
// the layer and the entry, that nothing is written outside, and that the
// destination is not created.
func TestHostile(t *testing.T) {
	tests := []struct {
		name   string
		layers func(outside string) [][]*tar.Header
		entry  string // named in the error
	}{
		{"dot-dot name", func(string) [][]*tar.Header {
			return [][]*tar.Header{{fileE("../escape", "x", 0o644)}}
		}, "../escape"},
		{"dot-dot inside a name", func(string) [][]*tar.Header {
			return [][]*tar.Header{{fileE("a/../../escape", "x", 0o644)}}
		}, "a/../../escape"},
		{"absolute name", func(o string) [][]*tar.Header {
			return [][]*tar.Header{{fileE(filepath.Join(o, "escape"), "x", 0o644)}}
		}, "/"},
		{"write through a link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("evil", "../../../../../.."), fileE("evil/escape", "x", 0o644)}}
		}, "evil/escape"},
		{"write through a lower layer's link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("evil", "../outside")}, {fileE("evil/escape", "x", 0o644)}}
		}, "evil/escape"},
		{"directory through a link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("evil", ".."), dirE("evil/newdir/", 0o755)}}
		}, "evil/newdir/"},
		{"hard link to a dot-dot path", func(string) [][]*tar.Header {
			return [][]*tar.Header{{linkE("stolen", "../outside/secret")}}
		}, "stolen"},
		{"hard link to an absolute path", func(o string) [][]*tar.Header {
			return [][]*tar.Header{{linkE("stolen", filepath.Join(o, "secret"))}}
		}, "stolen"},
		{"hard link through a link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("up", ".."), linkE("stolen", "up/outside/secret")}}
		}, "stolen"},
		{"hard link to a missing file", func(string) [][]*tar.Header {
			return [][]*tar.Header{{linkE("stolen", "nowhere")}}
		}, "stolen"},
		{"whiteout naming dot-dot", func(string) [][]*tar.Header {
			return [][]*tar.Header{{whE(".wh..."), fileE("x", "x", 0o644)}}
		}, ".wh..."},
		{"whiteout in a dot-dot directory", func(string) [][]*tar.Header {
			return [][]*tar.Header{{whE("../outside/.wh.secret")}}
		}, "../outside/.wh.secret"},
		{"absolute whiteout", func(o string) [][]*tar.Header {
			return [][]*tar.Header{{whE(filepath.Join(o, ".wh.secret"))}}
		}, ".wh.secret"},
		{"whiteout through a link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("up", "..")}, {whE("up/outside/.wh.secret")}}
		}, "up/outside/.wh.secret"},
		{"opaque marker through a link that climbs out", func(string) [][]*tar.Header {
			return [][]*tar.Header{{symE("up", "../outside")}, {whE("up/.wh..wh..opq")}}
		}, "up/.wh..wh..opq"},
		{"empty whiteout", func(string) [][]*tar.Header {
			return [][]*tar.Header{{whE("d/.wh.")}}
		}, "d/.wh."},
		{"a root that is not a directory", func(string) [][]*tar.Header {
			return [][]*tar.Header{{fileE(".", "x", 0o644)}}
		}, `"."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := tree(t, base)
			var tl []testLayer
			hostile := tt.layers(outside)
			for _, l := range hostile {
				tl = append(tl, testLayer{tar: layerTar(t, l...)})
			}
			src, descs := testImage(t, nil, tl...)
			dir := filepath.Join(base, "rootfs")
			_, err := Image(t.Context(), src, dir, nil)
			if !errors.Is(err, ErrInvalidLayer) {
				t.Fatalf("err = %v, want ErrInvalidLayer", err)
			}
			msg := err.Error()
			last := descs[len(descs)-1]
			if !strings.Contains(msg, "layer ") || !strings.Contains(msg, string(last.Digest)) || !strings.Contains(msg, tt.entry) {
				t.Errorf("error %q does not name the layer %s and the entry %q", msg, last.Digest, tt.entry)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if d := diffTrees(tree(t, base), before); d != "" {
				t.Errorf("files changed beside the destination:\n%s", d)
			}
		})
	}
}

// TestContained checks the escapes that are followed inside the root rather than
// refused: what a container would see.
func TestContained(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	layers := [][]byte{
		layerTar(t, symE("abs", "/"), symE("hostfile", filepath.Join(outside, "secret"))),
		layerTar(t,
			fileE("abs/"+strings.TrimPrefix(outside, "/")+"/planted", "x", 0o644), // lands in DIR/<outside>/planted
			fileE("hostfile", "replaced the link, not its target", 0o644),
		),
	}
	var tl []testLayer
	for _, l := range layers {
		tl = append(tl, testLayer{tar: l})
	}
	src, _ := testImage(t, nil, tl...)
	dir := filepath.Join(base, "rootfs")
	if _, err := Image(t.Context(), src, dir, nil); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("%s holds %d entries, want none", outside, len(entries))
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "planted")); err != nil {
		t.Errorf("the entry written through an absolute link is not inside the root: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hostfile")); string(b) != "replaced the link, not its target" {
		t.Errorf("hostfile = %q", b)
	}
}

func TestCompressions(t *testing.T) {
	l1 := layerTar(t, fileE("gz", "gzip", 0o644))
	l2 := layerTar(t, fileE("zst", "zstd", 0o644))
	l3 := layerTar(t, fileE("tar", "plain", 0o644))
	l4 := layerTar(t, fileE("docker", "docker", 0o644))
	src, _ := testImage(t, nil,
		testLayer{tar: l1},
		testLayer{tar: l2, mediaType: ocitypes.MediaTypeOCILayerZstd},
		testLayer{tar: l3, mediaType: ocitypes.MediaTypeOCILayer},
		testLayer{tar: l4, mediaType: ocitypes.MediaTypeDockerLayer},
	)
	dir := filepath.Join(t.TempDir(), "rootfs")
	var events []int64
	res, err := Image(t.Context(), src, dir, &Options{Progress: func(d ocitypes.Descriptor, n int64) { events = append(events, n) }})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gz": `file 0644 "gzip"`, "zst": `file 0644 "zstd"`, "tar": `file 0644 "plain"`, "docker": `file 0644 "docker"`}
	if d := diffTrees(tree(t, dir), want); d != "" {
		t.Errorf("tree differs:\n%s", d)
	}
	var done int
	for i, n := range events {
		if n == res.Layers[min(done, len(res.Layers)-1)].Size && i > 0 {
			done++
		}
	}
	if done != 4 {
		t.Errorf("progress reported %d layers done, want 4 (%v)", done, events)
	}
}

// TestTrailingData checks that what follows the tar's end in the uncompressed
// stream counts in the diff_id, and that the check passes.
func TestTrailingData(t *testing.T) {
	l := append(layerTar(t, fileE("f", "f", 0o644)), make([]byte, 10240)...)
	src, _ := testImage(t, nil, testLayer{tar: l})
	if _, err := Image(t.Context(), src, filepath.Join(t.TempDir(), "r"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadImages(t *testing.T) {
	good := layerTar(t, fileE("f", "f", 0o644))
	tests := []struct {
		name  string
		build func(t *testing.T) *fakeSource
		opts  *Options
		is    error
		says  string
	}{
		{"diff_id mismatch", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: good, diffID: digest.FromString("other")})
			return s
		}, nil, errdef.ErrDigestMismatch, "diff_id"},
		{"blob digest mismatch", func(t *testing.T) *fakeSource {
			// The same tar in a gzip stream of the same size with another time
			// stamp: only the blob's digest can tell.
			s, descs := testImage(t, nil, testLayer{tar: good})
			b := append([]byte(nil), s.blobs[descs[0].Digest]...)
			b[4] ^= 0x01
			s.served[descs[0].Digest] = b
			return s
		}, nil, errdef.ErrDigestMismatch, "layer 1"},
		{"corrupt gzip", func(t *testing.T) *fakeSource {
			s, descs := testImage(t, nil, testLayer{tar: good})
			b := append([]byte(nil), s.blobs[descs[0].Digest]...)
			b[len(b)/2] ^= 0xff
			s.served[descs[0].Digest] = b
			return s
		}, nil, errdef.ErrDigestMismatch, "layer 1"},
		{"unknown media type", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: good, mediaType: "application/vnd.example.layer.v1.tar+lz4"})
			return s
		}, nil, errdef.ErrUnsupported, "application/vnd.example.layer.v1.tar+lz4"},
		{"foreign layer", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: good, mediaType: ocitypes.MediaTypeDockerForeignLayer})
			return s
		}, nil, errdef.ErrUnsupported, "foreign"},
		{"fewer diff_ids than layers", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, func(c *ocitypes.Image) { c.RootFS.DiffIDs = nil }, testLayer{tar: good})
			return s
		}, nil, errdef.ErrInvalidManifest, "diff_ids"},
		{"entry larger than the layer may hold", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE("big", strings.Repeat("x", 4096), 0o644))})
			return s
		}, &Options{MaxLayerSize: 2048}, errdef.ErrSizeExceedsLimit, "big"},
		{"uncompressed stream over the limit", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE("a", "a", 0o644), fileE("b", "b", 0o644))})
			return s
		}, &Options{MaxLayerSize: 1500}, errdef.ErrSizeExceedsLimit, "layer 1"},
		{"path too deep", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE(strings.Repeat("d/", 10)+"f", "f", 0o644))})
			return s
		}, &Options{MaxPathDepth: 8}, ErrInvalidLayer, "deep"},
		{"name too long", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE(strings.Repeat("n", 300), "f", 0o644))})
			return s
		}, &Options{MaxNameLength: 255}, ErrInvalidLayer, "longer"},
		{"too many entries", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE("a", "a", 0o644), fileE("b", "b", 0o644))})
			return s
		}, &Options{MaxEntries: 1}, errdef.ErrSizeExceedsLimit, "entries"},
		{"no matching platform", func(t *testing.T) *fakeSource {
			s, _ := testImage(t, nil, testLayer{tar: good})
			return s
		}, &Options{Platform: &ocitypes.Platform{OS: "windows", Architecture: "amd64"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.build(t)
			if tt.name == "no matching platform" {
				src = wrapInIndex(t, src)
			}
			base := t.TempDir()
			dir := filepath.Join(base, "rootfs")
			_, err := Image(t.Context(), src, dir, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if tt.is == nil && !errors.Is(err, errdef.ErrNoMatchingPlatform) {
				t.Errorf("err = %v, want no matching platform", err)
			}
			if !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q should say %q on one line", err, tt.says)
			}
			if entries, _ := os.ReadDir(base); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestSkipForeign(t *testing.T) {
	src, descs := testImage(t, nil,
		testLayer{tar: layerTar(t, fileE("base", "b", 0o644)), mediaType: ocitypes.MediaTypeDockerForeignLayer},
		testLayer{tar: layerTar(t, fileE("app", "a", 0o644))},
	)
	delete(src.blobs, descs[0].Digest) // not fetchable: it must not be fetched
	dir := filepath.Join(t.TempDir(), "rootfs")
	res, err := Image(t.Context(), src, dir, &Options{SkipForeign: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SkippedLayers) != 1 || res.SkippedLayers[0].Digest != descs[0].Digest || len(res.Layers) != 1 {
		t.Errorf("skipped %v, applied %v", res.SkippedLayers, res.Layers)
	}
	if d := diffTrees(tree(t, dir), map[string]string{"app": `file 0644 "a"`}); d != "" {
		t.Error(d)
	}
}

func TestDestination(t *testing.T) {
	layer := layerTar(t, fileE("new", "new", 0o644))
	src, _ := testImage(t, nil, testLayer{tar: layer})

	t.Run("non-empty is refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rootfs")
		writeFile(t, filepath.Join(dir, "old"), "old")
		_, err := Image(t.Context(), src, dir, nil)
		if !errors.Is(err, errdef.ErrAlreadyExists) || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v, want ErrAlreadyExists saying not empty", err)
		}
		if d := diffTrees(tree(t, dir), map[string]string{"old": `file 0644 "old"`}); d != "" {
			t.Error(d)
		}
	})
	t.Run("a file is refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rootfs")
		writeFile(t, dir, "x")
		if _, err := Image(t.Context(), src, dir, &Options{Overwrite: true}); !errors.Is(err, errdef.ErrAlreadyExists) {
			t.Fatalf("err = %v, want ErrAlreadyExists", err)
		}
	})
	t.Run("empty is used", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rootfs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Image(t.Context(), src, dir, nil); err != nil {
			t.Fatal(err)
		}
		if d := diffTrees(tree(t, dir), map[string]string{"new": `file 0644 "new"`}); d != "" {
			t.Error(d)
		}
	})
	t.Run("overwrite replaces", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "rootfs")
		writeFile(t, filepath.Join(dir, "old"), "old")
		if _, err := Image(t.Context(), src, dir, &Options{Overwrite: true}); err != nil {
			t.Fatal(err)
		}
		if d := diffTrees(tree(t, dir), map[string]string{"new": `file 0644 "new"`}); d != "" {
			t.Error(d)
		}
		if entries, _ := os.ReadDir(base); len(entries) != 1 {
			t.Errorf("beside the destination: %v", entries)
		}
	})
	t.Run("a failed overwrite keeps the old content", func(t *testing.T) {
		bad, _ := testImage(t, nil, testLayer{tar: layer, diffID: digest.FromString("x")})
		dir := filepath.Join(t.TempDir(), "rootfs")
		writeFile(t, filepath.Join(dir, "old"), "old")
		if _, err := Image(t.Context(), bad, dir, &Options{Overwrite: true}); !errors.Is(err, errdef.ErrDigestMismatch) {
			t.Fatalf("err = %v", err)
		}
		if d := diffTrees(tree(t, dir), map[string]string{"old": `file 0644 "old"`}); d != "" {
			t.Error(d)
		}
	})
	t.Run("a killed run's staging directory is removed", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "rootfs")
		writeFile(t, filepath.Join(stagingPath(dir), "partial", "file"), "left by a killed run")
		if _, err := Image(t.Context(), src, dir, nil); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(base); len(entries) != 1 {
			t.Errorf("beside the destination: %v", entries)
		}
		if d := diffTrees(tree(t, dir), map[string]string{"new": `file 0644 "new"`}); d != "" {
			t.Error(d)
		}
	})
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCanceled(t *testing.T) {
	src, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE("a", "a", 0o644))}, testLayer{tar: layerTar(t, fileE("b", "b", 0o644))})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	base := t.TempDir()
	_, err := Image(ctx, src, filepath.Join(base, "rootfs"), &Options{Progress: func(ocitypes.Descriptor, int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestFullDisk unpacks onto a 1 MiB tmpfs (it needs the privilege to mount one):
// the error says ENOSPC and nothing is left on it.
func TestFullDisk(t *testing.T) {
	base := t.TempDir()
	if err := syscall.Mount("tmpfs", base, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	defer syscall.Unmount(base, 0)
	src, _ := testImage(t, nil, testLayer{tar: layerTar(t, fileE("big", strings.Repeat("x", 2<<20), 0o644))})
	_, err := Image(t.Context(), src, filepath.Join(base, "rootfs"), nil)
	if !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want ENOSPC on one line", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
