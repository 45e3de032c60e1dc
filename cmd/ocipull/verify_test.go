package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// verifyLayout is a layout holding one image of one layer, tagged example.com/app:v1.
type verifyLayout struct {
	dir                     string
	layer, config, manifest ocitypes.Descriptor
}

// putBlob writes data into d as a blob of mediaType.
func putBlob(t *testing.T, d *layout.Dir, mediaType string, data []byte) ocitypes.Descriptor {
	t.Helper()
	desc := ocitypes.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	w, err := d.OpenBlob(t.Context(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return desc
}

// newVerifyLayout writes the layout; when absent is set, the layer is left out and
// declared absent in index.json.
func newVerifyLayout(t *testing.T, absent bool) verifyLayout {
	t.Helper()
	l := verifyLayout{dir: filepath.Join(t.TempDir(), "app")}
	d, err := layout.OpenDir(l.dir, &layout.DirOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	layerData := []byte("the bytes of a layer")
	l.layer = ocitypes.Descriptor{MediaType: ocitypes.MediaTypeDockerForeignLayer, Digest: digest.FromBytes(layerData), Size: int64(len(layerData))}
	if !absent {
		putBlob(t, d, l.layer.MediaType, layerData)
	}
	l.config = putBlob(t, d, ocitypes.MediaTypeOCIConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	l.manifest = putBlob(t, d, ocitypes.MediaTypeOCIManifest, fmt.Appendf(nil,
		`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocitypes.MediaTypeOCIManifest, l.config.MediaType, l.config.Digest, l.config.Size, l.layer.MediaType, l.layer.Digest, l.layer.Size))
	root := l.manifest
	if absent {
		root.Annotations = map[string]string{ocitypes.AnnotationAbsentBlobs: l.layer.Digest.String()}
	}
	name, err := ref.Parse("example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Tag(t.Context(), name, root); err != nil {
		t.Fatal(err)
	}
	return l
}

// blobFile returns the path of blob dg in the layout.
func (l verifyLayout) blobFile(dg digest.Digest) string {
	return filepath.Join(l.dir, "blobs", dg.Algorithm().String(), dg.Encoded())
}

func TestVerifyCommand(t *testing.T) {
	isolate(t)
	type want struct {
		code           int
		stdout, stderr string
	}
	tests := []struct {
		name string
		args []string // DIR is replaced by the layout's path
		// setup damages the layout and returns what ocipull prints.
		setup func(t *testing.T, l *verifyLayout) want
	}{
		{"sound", []string{"verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			return want{0, "", "verified 3 blobs (470 B): OK\n"}
		}},
		{"sound quiet", []string{"-q", "verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			return want{0, "", ""}
		}},
		{"corrupt layer", []string{"verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			data := []byte("the bytes of a lawye")
			if err := os.WriteFile(l.blobFile(l.layer.Digest), data, 0o644); err != nil {
				t.Fatal(err)
			}
			return want{exitFailure,
				"corrupt " + l.layer.Digest.String() + " blobs/sha256/" + l.layer.Digest.Encoded() + ": content hashes to " + digest.FromBytes(data).String() + "\n",
				"ocipull: layout " + l.dir + " has 1 problem: 1 corrupt (verified 3 blobs, 470 B); to fetch bad blobs again: ocipull pull --verify example.com/app:v1 -o " + l.dir + "\n"}
		}},
		{"repair", []string{"verify", "--repair", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			data := []byte("the bytes of a lawye")
			if err := os.WriteFile(l.blobFile(l.layer.Digest), data, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := os.Stat(l.blobFile(l.layer.Digest)); !os.IsNotExist(err) {
					t.Errorf("the corrupt blob is still in blobs/: %v", err)
				}
				q := filepath.Join(l.dir, ".quarantine", "sha256-"+l.layer.Digest.Encoded())
				if b, err := os.ReadFile(q); err != nil || string(b) != string(data) {
					t.Errorf("quarantined blob: %q, %v", b, err)
				}
			})
			return want{exitFailure,
				"corrupt " + l.layer.Digest.String() + " blobs/sha256/" + l.layer.Digest.Encoded() + ": content hashes to " + digest.FromBytes(data).String() + "\n",
				"ocipull: layout " + l.dir + " has 1 problem: 1 corrupt (verified 3 blobs, 470 B); moved 1 bad blob to " + filepath.Join(l.dir, ".quarantine") + ": run ocipull pull --verify example.com/app:v1 -o " + l.dir + "\n"}
		}},
		{"several problems, quiet", []string{"verify", "-q", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			if err := os.Remove(l.blobFile(l.layer.Digest)); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(l.blobFile(l.config.Digest), 3); err != nil {
				t.Fatal(err)
			}
			extra := filepath.Join(l.dir, "blobs", "sha256", "stray")
			if err := os.WriteFile(extra, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := l.manifest.Digest.String()
			return want{exitFailure,
				"missing " + l.layer.Digest.String() + " blobs/sha256/" + l.layer.Digest.Encoded() + ": not in the layout, referenced by " + m + " (a foreign layer not declared absent)\n" +
					"wrong-size " + l.config.Digest.String() + " blobs/sha256/" + l.config.Digest.Encoded() + ": holds 3 bytes, " + m + " says 37\n" +
					"unreferenced blobs/sha256/stray: 1 bytes, not reachable from index.json\n",
				"ocipull: layout " + l.dir + " has 3 problems: 1 missing, 1 wrong-size, 1 unreferenced (verified 2 blobs, 416 B); to fetch bad blobs again: ocipull pull --verify example.com/app:v1 -o " + l.dir + "\n"}
		}},
		{"declared absent", []string{"verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			*l = newVerifyLayout(t, true)
			return want{0,
				"absent " + l.layer.Digest.String() + " blobs/sha256/" + l.layer.Digest.Encoded() + ": declared absent by " + l.manifest.Digest.String() + " in index.json (foreign, skipped)\n",
				"verified 2 blobs (450 B): OK, 1 absent (foreign, skipped)\n"}
		}},
		{"broken index.json", []string{"verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			if err := os.WriteFile(filepath.Join(l.dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[`), 0o644); err != nil {
				t.Fatal(err)
			}
			return want{exitFailure,
				"bad-index index.json: malformed json: unexpected end of JSON input (at byte offset 32)\n",
				"ocipull: layout " + l.dir + " has 1 problem: 1 bad-index (verified 0 blobs, 0 B)\n"}
		}},
		{"no such directory", []string{"verify", "DIR/nope"}, func(t *testing.T, l *verifyLayout) want {
			return want{exitFailure, "", "ocipull: verify layout: stat " + l.dir + "/nope: no such file or directory\n"}
		}},
		{"not a layout", []string{"verify", "DIR/blobs/sha256"}, func(t *testing.T, l *verifyLayout) want {
			return want{exitFailure, "", "ocipull: verify layout " + l.dir + "/blobs/sha256: invalid image layout: no oci-layout, index.json nor blobs/\n"}
		}},
		{"no directory given", []string{"verify"}, func(t *testing.T, l *verifyLayout) want {
			return want{exitUsage, "", "ocipull: verify wants one DIR, got 0 arguments (see ocipull verify --help)\n"}
		}},
		{"verbose", []string{"-v", "--concurrency", "1", "verify", "DIR"}, func(t *testing.T, l *verifyLayout) want {
			// One worker: the blobs are checked in the order of the walk.
			return want{0, "", "checked " + l.manifest.Digest.String() + " 413 B\n" +
				"checked " + l.config.Digest.String() + " 37 B\n" +
				"checked " + l.layer.Digest.String() + " 20 B\n" +
				"verified 3 blobs (470 B): OK\n"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newVerifyLayout(t, false)
			w := tt.setup(t, &l)
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.Replace(a, "DIR", l.dir, 1)
			}
			got := runCLI(t, "", args...)
			if got.code != w.code || got.stdout != w.stdout || got.stderr != w.stderr {
				t.Errorf("ocipull %q = exit %d\nstdout %q\nstderr %q\nwant exit %d\nstdout %q\nstderr %q",
					args, got.code, got.stdout, got.stderr, w.code, w.stdout, w.stderr)
			}
		})
	}
}

func TestVerifyJSON(t *testing.T) {
	isolate(t)
	l := newVerifyLayout(t, false)
	got := runCLI(t, "", "verify", "--json", l.dir)
	want := `{
  "dir": "` + l.dir + `",
  "ok": true,
  "blobs": 3,
  "bytes": 470,
  "problems": []
}
`
	if got.code != 0 || got.stdout != want || got.stderr != "verified 3 blobs (470 B): OK\n" {
		t.Errorf("verify --json of a sound layout = exit %d\nstdout %s\nstderr %q\nwant exit 0, stdout\n%s", got.code, got.stdout, got.stderr, want)
	}

	if err := os.WriteFile(l.blobFile(l.layer.Digest), []byte("the bytes of a lawye"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(l.blobFile(l.config.Digest)); err != nil {
		t.Fatal(err)
	}
	got = runCLI(t, "", "-q", "verify", "--json", l.dir)
	if got.code != exitFailure {
		t.Errorf("verify --json of a damaged layout: exit %d, want %d", got.code, exitFailure)
	}
	var out struct {
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
	dec := json.NewDecoder(strings.NewReader(got.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("verify --json printed %q: %v", got.stdout, err)
	}
	if out.Dir != l.dir || out.OK || out.Blobs != 2 || len(out.Problems) != 2 {
		t.Fatalf("verify --json = %+v, want dir %s, not ok, 2 blobs, 2 problems", out, l.dir)
	}
	for i, w := range []struct{ kind, digest string }{
		{"missing", l.config.Digest.String()},
		{"corrupt", l.layer.Digest.String()},
	} {
		p := out.Problems[i]
		wantPath := "blobs/sha256/" + strings.TrimPrefix(w.digest, "sha256:")
		if p.Kind != w.kind || p.Digest != w.digest || p.Path != wantPath || p.Detail == "" {
			t.Errorf("problem %d = %+v, want kind %s, digest %s, path %s and a detail", i, p, w.kind, w.digest, wantPath)
		}
	}
	wantErr := "ocipull: layout " + l.dir + " has 2 problems: 1 missing, 1 corrupt (verified 2 blobs, 433 B); to fetch bad blobs again: ocipull pull --verify example.com/app:v1 -o " + l.dir + "\n"
	if got.stderr != wantErr {
		t.Errorf("verify --json stderr %q, want %q", got.stderr, wantErr)
	}
}

func TestVerifyInterrupted(t *testing.T) {
	isolate(t)
	l := newVerifyLayout(t, false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"ocipull", "verify", l.dir}, strings.NewReader(""), &out, &errOut)
	if code != exitInterrupted || errOut.String() != "ocipull: interrupted\n" || out.Len() != 0 {
		t.Errorf("verify with a cancelled context = exit %d, stdout %q, stderr %q; want %d and ocipull: interrupted", code, out.String(), errOut.String(), exitInterrupted)
	}
}

func TestVerifyProgressCounter(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	p := &verifyProgress{w: &buf, counter: true, now: func() time.Time { return clock }}
	p.event(layout.VerifyEvent{Checked: 0, Total: 3, Bytes: 0, TotalBytes: 3 << 20})
	clock = clock.Add(verifyRedraw / 2)
	p.event(layout.VerifyEvent{Checked: 1, Total: 3, Bytes: 1 << 20, TotalBytes: 3 << 20}) // too soon: skipped
	clock = clock.Add(verifyRedraw)
	p.event(layout.VerifyEvent{Checked: 2, Total: 3, Bytes: 2 << 20, TotalBytes: 3 << 20})
	p.finish()
	want := "\r\x1b[Kverifying: 0 of 3 blobs, 0 B of 3.0 MiB" +
		"\r\x1b[Kverifying: 2 of 3 blobs, 2.0 MiB of 3.0 MiB" +
		"\r\x1b[K"
	if buf.String() != want {
		t.Errorf("counter drew %q, want %q", buf.String(), want)
	}

	// Nothing drawn, nothing erased.
	buf.Reset()
	p = &verifyProgress{w: &buf, counter: true, now: time.Now}
	p.finish()
	if buf.Len() != 0 {
		t.Errorf("finish without events wrote %q", buf.String())
	}
}

func TestVerifyHelpGolden(t *testing.T) {
	isolate(t)
	got := runCLI(t, "", "verify", "--help")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("ocipull verify --help: exit %d, stderr %q", got.code, got.stderr)
	}
	path := filepath.Join("testdata", "help-verify.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got.stdout != string(want) {
		t.Errorf("ocipull verify --help printed:\n%s\nwant (%s):\n%s", got.stdout, path, want)
	}
}
