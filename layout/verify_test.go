package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
)

// verifyFixture is a layout holding one image, tagged example.com/app:v1.
type verifyFixture struct {
	d   *Dir
	img testImage
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	f := &verifyFixture{d: openDir(t, t.TempDir()), img: newTestImage(t, "app", "linux", "amd64", true)}
	f.put(t, f.img.blobs()...)
	f.tag(t, "example.com/app:v1", f.img.manifest.desc)
	return f
}

// put writes blobs into the layout.
func (f *verifyFixture) put(t *testing.T, blobs ...testBlob) {
	t.Helper()
	for _, b := range blobs {
		writeBlob(t, f.d, b)
	}
}

// tag names root in index.json.
func (f *verifyFixture) tag(t *testing.T, name string, root ocitypes.Descriptor) {
	t.Helper()
	if err := f.d.Tag(t.Context(), mustParse(t, name), root); err != nil {
		t.Fatalf("Tag(%s) = %v", name, err)
	}
}

// file returns the absolute path of rel (slash-separated) inside the layout.
func (f *verifyFixture) file(rel string) string {
	return filepath.Join(f.d.Path(), filepath.FromSlash(rel))
}

// write replaces the file rel of the layout with content.
func (f *verifyFixture) write(t *testing.T, rel string, content []byte) {
	t.Helper()
	p := f.file(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

// read returns the content of the file rel of the layout.
func (f *verifyFixture) read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(f.file(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *verifyFixture) remove(t *testing.T, rel string) {
	t.Helper()
	if err := os.Remove(f.file(rel)); err != nil {
		t.Fatal(err)
	}
}

// rawManifest returns an OCI manifest blob of config and layers, with annotations.
func rawManifest(t *testing.T, config testBlob, annotations map[string]string, layers ...testBlob) testBlob {
	t.Helper()
	m := ocitypes.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocitypes.MediaTypeOCIManifest,
		Config: config.desc, Annotations: annotations}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.desc)
	}
	return jsonBlob(t, ocitypes.MediaTypeOCIManifest, m)
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name string
		// setup changes the fixture's layout and returns the problems Verify must
		// report, exactly.
		setup func(t *testing.T, f *verifyFixture) []Problem
	}{
		{"sound layout", func(t *testing.T, f *verifyFixture) []Problem { return nil }},
		{"corrupt layer", func(t *testing.T, f *verifyFixture) []Problem {
			l := f.img.layers[0].desc
			b := f.read(t, blobRel(l.Digest))
			b[10] ^= 0x01
			f.write(t, blobRel(l.Digest), b)
			return []Problem{{Corrupt, l.Digest, blobRel(l.Digest), "content hashes to " + digest.FromBytes(b).String()}}
		}},
		{"truncated layer", func(t *testing.T, f *verifyFixture) []Problem {
			l := f.img.layers[1].desc
			f.write(t, blobRel(l.Digest), f.img.layers[1].data[:l.Size-5])
			return []Problem{{WrongSize, l.Digest, blobRel(l.Digest),
				fmt.Sprintf("holds %d bytes, %s says %d", l.Size-5, f.img.manifest.desc.Digest, l.Size)}}
		}},
		{"overlong config", func(t *testing.T, f *verifyFixture) []Problem {
			c := f.img.config.desc
			f.write(t, blobRel(c.Digest), append(slices.Clone(f.img.config.data), ' '))
			return []Problem{{WrongSize, c.Digest, blobRel(c.Digest),
				fmt.Sprintf("holds %d bytes, %s says %d", c.Size+1, f.img.manifest.desc.Digest, c.Size)}}
		}},
		{"deleted layer", func(t *testing.T, f *verifyFixture) []Problem {
			l := f.img.layers[0].desc
			f.remove(t, blobRel(l.Digest))
			return []Problem{{Missing, l.Digest, blobRel(l.Digest), "not in the layout, referenced by " + f.img.manifest.desc.Digest.String()}}
		}},
		{"deleted manifest", func(t *testing.T, f *verifyFixture) []Problem {
			m := f.img.manifest.desc
			f.remove(t, blobRel(m.Digest))
			want := []Problem{{Missing, m.Digest, blobRel(m.Digest), "not in the layout, referenced by index.json"}}
			for _, b := range []testBlob{f.img.layers[0], f.img.layers[1], f.img.config} {
				want = append(want, Problem{Unreferenced, b.desc.Digest, blobRel(b.desc.Digest),
					fmt.Sprintf("%d bytes, not reachable from index.json", b.desc.Size)})
			}
			return want
		}},
		{"unreferenced files", func(t *testing.T, f *verifyFixture) []Problem {
			stray := newBlob(ocitypes.MediaTypeOCILayer, []byte("stray"))
			f.put(t, stray)
			f.write(t, "blobs/sha256/junk.tmp", []byte("junk"))
			f.write(t, "blobs/README", []byte("hello"))
			return []Problem{
				{Unreferenced, "", "blobs/README", "not a blob: a file outside blobs/<algorithm>/"},
				{Unreferenced, "", "blobs/sha256/junk.tmp", "4 bytes, not reachable from index.json"},
				{Unreferenced, stray.desc.Digest, blobRel(stray.desc.Digest), "5 bytes, not reachable from index.json"},
			}
		}},
		{"partial download", func(t *testing.T, f *verifyFixture) []Problem {
			b := newBlob(ocitypes.MediaTypeOCILayer, []byte("half of this blob arrived"))
			w, err := f.d.OpenBlob(t.Context(), b.desc)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b.data[:7])
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return []Problem{{Partial, b.desc.Digest, ".ingest/sha256-" + b.desc.Digest.Encoded() + ".partial",
				"partial download of 7 bytes; the next pull of this blob resumes it"}}
		}},
		{"truncated index.json", func(t *testing.T, f *verifyFixture) []Problem {
			b := f.read(t, indexFile)
			f.write(t, indexFile, b[:40])
			return []Problem{{BadIndex, "", indexFile, "malformed json: unexpected end of JSON input (at byte offset 40)"}}
		}},
		{"index.json syntax error", func(t *testing.T, f *verifyFixture) []Problem {
			f.write(t, indexFile, []byte(`{"schemaVersion":2,"manifests":[}`))
			return []Problem{{BadIndex, "", indexFile, "malformed json: invalid character '}' looking for beginning of value (at byte offset 33)"}}
		}},
		{"index.json wrong type", func(t *testing.T, f *verifyFixture) []Problem {
			b := []byte(`{"schemaVersion":2,"manifests":{}}`)
			f.write(t, indexFile, b)
			// The offset encoding/json reports for a type error depends on its version.
			var typeErr *json.UnmarshalTypeError
			if err := json.Unmarshal(b, new(ocitypes.Index)); !errors.As(err, &typeErr) {
				t.Fatalf("json.Unmarshal(%s) = %v, want a type error", b, err)
			}
			return []Problem{{BadIndex, "", indexFile, fmt.Sprintf("%v (at byte offset %d)", typeErr, typeErr.Offset)}}
		}},
		{"index.json without manifests", func(t *testing.T, f *verifyFixture) []Problem {
			f.write(t, indexFile, []byte(`{"schemaVersion":2}`))
			return []Problem{{BadIndex, "", indexFile, "manifests is missing"}}
		}},
		{"index.json is a docker list", func(t *testing.T, f *verifyFixture) []Problem {
			f.write(t, indexFile, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
			return []Problem{{BadIndex, "", indexFile, `mediaType "application/vnd.docker.distribution.manifest.list.v2+json" in the body contradicts content-type "application/vnd.oci.image.index.v1+json"`}}
		}},
		{"index.json missing", func(t *testing.T, f *verifyFixture) []Problem {
			f.remove(t, indexFile)
			return []Problem{{BadIndex, "", indexFile, "index.json is missing"}}
		}},
		{"oci-layout missing", func(t *testing.T, f *verifyFixture) []Problem {
			f.remove(t, layoutFile)
			return []Problem{{BadLayout, "", layoutFile, "oci-layout is missing"}}
		}},
		{"oci-layout of another version", func(t *testing.T, f *verifyFixture) []Problem {
			f.write(t, layoutFile, []byte(`{"imageLayoutVersion":"2.0.0"}`))
			return []Problem{{BadLayout, "", layoutFile, `invalid image layout: imageLayoutVersion "2.0.0", want "1.0.0"`}}
		}},
		{"manifest that does not parse", func(t *testing.T, f *verifyFixture) []Problem {
			bad := newBlob(ocitypes.MediaTypeOCIManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`))
			f.put(t, bad)
			f.tag(t, "example.com/bad:v1", bad.desc)
			return []Problem{{Unparsable, bad.desc.Digest, blobRel(bad.desc.Digest), "config is missing"}}
		}},
		{"manifest with a duplicate key", func(t *testing.T, f *verifyFixture) []Problem {
			body := strings.Replace(string(f.img.manifest.data), `"schemaVersion":2`, `"schemaVersion":2,"schemaVersion":2`, 1)
			bad := newBlob(ocitypes.MediaTypeOCIManifest, []byte(body))
			f.put(t, bad)
			f.tag(t, "example.com/bad:v1", bad.desc)
			return []Problem{{Unparsable, bad.desc.Digest, blobRel(bad.desc.Digest), `duplicate key "schemaVersion" in json object`}}
		}},
		{"config that does not parse", func(t *testing.T, f *verifyFixture) []Problem {
			config := newBlob(ocitypes.MediaTypeOCIConfig, []byte(`{"architecture":"amd64"}`))
			m := rawManifest(t, config, nil)
			f.put(t, config, m)
			f.tag(t, "example.com/bad:v1", m.desc)
			return []Problem{{Unparsable, config.desc.Digest, blobRel(config.desc.Digest), "image config: os is missing"}}
		}},
		{"manifest announced as an index", func(t *testing.T, f *verifyFixture) []Problem {
			root := f.img.manifest.desc
			root.MediaType = ocitypes.MediaTypeOCIIndex
			f.tag(t, "example.com/app:v1", root)
			want := []Problem{{BadMediaType, root.Digest, blobRel(root.Digest),
				"descriptor says application/vnd.oci.image.index.v1+json, content is application/vnd.oci.image.manifest.v1+json"}}
			for _, b := range []testBlob{f.img.layers[0], f.img.layers[1], f.img.config} {
				want = append(want, Problem{Unreferenced, b.desc.Digest, blobRel(b.desc.Digest),
					fmt.Sprintf("%d bytes, not reachable from index.json", b.desc.Size)})
			}
			return want
		}},
		{"docker manifest announced as oci", func(t *testing.T, f *verifyFixture) []Problem {
			body := strings.Replace(string(f.img.manifest.data), ocitypes.MediaTypeOCIManifest, ocitypes.MediaTypeDockerManifest, 1)
			m := newBlob(ocitypes.MediaTypeOCIManifest, []byte(body))
			f.put(t, m)
			f.tag(t, "example.com/app:v1", m.desc)
			want := []Problem{{BadMediaType, m.desc.Digest, blobRel(m.desc.Digest),
				"descriptor says application/vnd.oci.image.manifest.v1+json, content is application/vnd.docker.distribution.manifest.v2+json"}}
			for _, b := range f.img.blobs() {
				want = append(want, Problem{Unreferenced, b.desc.Digest, blobRel(b.desc.Digest),
					fmt.Sprintf("%d bytes, not reachable from index.json", b.desc.Size)})
			}
			return want
		}},
		{"corrupt manifest is still walked", func(t *testing.T, f *verifyFixture) []Problem {
			m := rawManifest(t, f.img.config, map[string]string{"note": "aaaa"}, f.img.layers...)
			f.put(t, m)
			f.tag(t, "example.com/app:v1", m.desc)
			f.remove(t, blobRel(f.img.manifest.desc.Digest))
			b := []byte(strings.Replace(string(m.data), "aaaa", "aaab", 1))
			f.write(t, blobRel(m.desc.Digest), b)
			return []Problem{{Corrupt, m.desc.Digest, blobRel(m.desc.Digest), "content hashes to " + digest.FromBytes(b).String()}}
		}},
		{"declared absent", func(t *testing.T, f *verifyFixture) []Problem {
			l := f.img.layers[1].desc
			f.remove(t, blobRel(l.Digest))
			root := f.img.manifest.desc
			root.Annotations = map[string]string{ocitypes.AnnotationAbsentBlobs: " " + l.Digest.String() + ", "}
			f.tag(t, "example.com/app:v1", root)
			return []Problem{{Absent, l.Digest, blobRel(l.Digest),
				fmt.Sprintf("declared absent by %s in index.json (foreign, skipped)", root.Digest)}}
		}},
		{"declared absent but present", func(t *testing.T, f *verifyFixture) []Problem {
			root := f.img.manifest.desc
			root.Annotations = map[string]string{ocitypes.AnnotationAbsentBlobs: f.img.layers[0].desc.Digest.String()}
			f.tag(t, "example.com/app:v1", root)
			return nil
		}},
		{"missing foreign layer not declared absent", func(t *testing.T, f *verifyFixture) []Problem {
			foreign := newBlob(ocitypes.MediaTypeDockerForeignLayer, []byte("windows base layer"))
			m := rawManifest(t, f.img.config, nil, foreign)
			f.put(t, m)
			f.tag(t, "example.com/win:v1", m.desc)
			return []Problem{{Missing, foreign.desc.Digest, blobRel(foreign.desc.Digest),
				"not in the layout, referenced by " + m.desc.Digest.String() + " (a foreign layer not declared absent)"}}
		}},
		{"bad absent annotation", func(t *testing.T, f *verifyFixture) []Problem {
			root := f.img.manifest.desc
			root.Annotations = map[string]string{ocitypes.AnnotationAbsentBlobs: "sha256:nope"}
			f.tag(t, "example.com/app:v1", root)
			return []Problem{{BadIndex, "", indexFile,
				`manifests[0]: annotation io.ocistream.absent-blobs: "sha256:nope" is not a digest: invalid checksum digest length`}}
		}},
		{"index with shared blobs", func(t *testing.T, f *verifyFixture) []Problem {
			other := newTestImage(t, "other", "linux", "arm64", true)
			f.put(t, other.blobs()...)
			idx := newTestIndex(t, f.img, other, f.img)
			f.put(t, idx)
			f.tag(t, "example.com/multi:v1", idx.desc)
			return nil
		}},
		{"two descriptors disagree on a size", func(t *testing.T, f *verifyFixture) []Problem {
			d := f.img.manifest.desc
			d.Size++
			idx := jsonBlob(t, ocitypes.MediaTypeOCIIndex, ocitypes.Index{Versioned: specs.Versioned{SchemaVersion: 2},
				MediaType: ocitypes.MediaTypeOCIIndex, Manifests: []ocitypes.Descriptor{d}})
			f.put(t, idx)
			f.tag(t, "example.com/multi:v1", idx.desc)
			return []Problem{{WrongSize, d.Digest, blobRel(d.Digest),
				fmt.Sprintf("holds %d bytes, %s says %d", d.Size-1, idx.desc.Digest, d.Size)}}
		}},
		{"several problems, sorted", func(t *testing.T, f *verifyFixture) []Problem {
			l0, l1 := f.img.layers[0].desc, f.img.layers[1].desc
			f.remove(t, blobRel(l0.Digest))
			b := f.read(t, blobRel(l1.Digest))
			b[0] ^= 0xff
			f.write(t, blobRel(l1.Digest), b)
			f.write(t, ".ingest/sha256-"+strings.Repeat("0", 64)+".partial", []byte("x"))
			f.write(t, "blobs/sha256/"+strings.Repeat("1", 64), []byte("x"))
			return []Problem{
				{Missing, l0.Digest, blobRel(l0.Digest), "not in the layout, referenced by " + f.img.manifest.desc.Digest.String()},
				{Corrupt, l1.Digest, blobRel(l1.Digest), "content hashes to " + digest.FromBytes(b).String()},
				{Unreferenced, digest.Digest("sha256:" + strings.Repeat("1", 64)), "blobs/sha256/" + strings.Repeat("1", 64), "1 bytes, not reachable from index.json"},
				{Partial, digest.Digest("sha256:" + strings.Repeat("0", 64)), ".ingest/sha256-" + strings.Repeat("0", 64) + ".partial",
					"partial download of 1 bytes; the next pull of this blob resumes it"},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newVerifyFixture(t)
			want := tt.setup(t, f)
			for _, concurrency := range []int{1, 4} {
				rep, err := Verify(t.Context(), f.d.Path(), &VerifyOptions{Concurrency: concurrency})
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				if !slices.Equal(rep.Problems, want) {
					t.Errorf("Verify (concurrency %d) problems:\n%s\nwant:\n%s", concurrency, formatProblems(rep.Problems), formatProblems(want))
				}
				wantOK := !slices.ContainsFunc(want, func(p Problem) bool { return p.Kind != Absent })
				if rep.OK() != wantOK {
					t.Errorf("OK() = %v, want %v", rep.OK(), wantOK)
				}
				if rep.Problems == nil {
					t.Errorf("Problems is nil, want an empty list")
				}
			}
		})
	}
}

func formatProblems(ps []Problem) string {
	if len(ps) == 0 {
		return "\t(none)"
	}
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%#v\n", p)
	}
	return b.String()
}

func TestVerifyCounts(t *testing.T) {
	f := newVerifyFixture(t)
	other := newTestImage(t, "other", "linux", "arm64", true)
	f.put(t, other.blobs()...)
	idx := newTestIndex(t, f.img, other)
	f.put(t, idx)
	f.tag(t, "example.com/multi:v1", idx.desc) // f.img is reachable twice
	var wantBytes int64
	blobs := append(append(f.img.blobs(), other.blobs()...), idx)
	for _, b := range blobs {
		wantBytes += b.desc.Size
	}

	var events []VerifyEvent
	rep, err := Verify(t.Context(), f.d.Path(), &VerifyOptions{Progress: func(e VerifyEvent) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Blobs != len(blobs) || rep.Bytes != wantBytes {
		t.Errorf("Verify = %d blobs, %d bytes, problems %v; want %d, %d, none", rep.Blobs, rep.Bytes, rep.Problems, len(blobs), wantBytes)
	}
	seen := map[digest.Digest]int{}
	for _, e := range events {
		if e.Digest != "" {
			seen[e.Digest]++
		}
		if e.Checked > e.Total || e.Bytes > e.TotalBytes {
			t.Errorf("event %+v: more done than known", e)
		}
	}
	for _, b := range blobs {
		if seen[b.desc.Digest] != 1 {
			t.Errorf("blob %s: %d events, want 1 (each blob checked once)", b.desc.Digest, seen[b.desc.Digest])
		}
	}
	if len(events) == 0 {
		t.Fatal("no progress event")
	}
	last := events[len(events)-1]
	if last.Checked != len(blobs) || last.Total != len(blobs) || last.Bytes != wantBytes || last.TotalBytes != wantBytes {
		t.Errorf("last event %+v, want %d of %d blobs, %d of %d bytes", last, len(blobs), len(blobs), wantBytes, wantBytes)
	}
}

func TestVerifyErrors(t *testing.T) {
	f := newVerifyFixture(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		path string
		want error
	}{
		{"no such directory", t.Context(), filepath.Join(t.TempDir(), "nope"), fs.ErrNotExist},
		{"a file", t.Context(), file, errdef.ErrInvalidLayout},
		{"not a layout", t.Context(), t.TempDir(), errdef.ErrInvalidLayout},
		{"cancelled", cancelled, f.d.Path(), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Verify(tt.ctx, tt.path, nil)
			if !errors.Is(err, tt.want) || rep != nil {
				t.Errorf("Verify(%s) = %v, %v; want an error wrapping %v", tt.path, rep, err, tt.want)
			}
		})
	}
}

func TestVerifyLargeManifest(t *testing.T) {
	f := newVerifyFixture(t)
	big := newBlob(ocitypes.MediaTypeOCIManifest, []byte(`{"schemaVersion":2,"pad":"`+strings.Repeat("x", ocitypes.MaxManifestSize)+`"}`))
	f.put(t, big)
	f.tag(t, "example.com/big:v1", big.desc)
	rep, err := Verify(t.Context(), f.d.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Problem{{Unparsable, big.desc.Digest, blobRel(big.desc.Digest),
		fmt.Sprintf("manifest of %d bytes is larger than the %d byte limit", big.desc.Size, ocitypes.MaxManifestSize)}}
	if !slices.Equal(rep.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", formatProblems(rep.Problems), formatProblems(want))
	}
}

func TestVerifyReportJSON(t *testing.T) {
	rep := &VerifyReport{Blobs: 2, Bytes: 30, Problems: []Problem{
		{Kind: Corrupt, Digest: "sha256:" + digest.Digest(strings.Repeat("a", 64)), Path: "blobs/sha256/" + strings.Repeat("a", 64), Detail: "content hashes to x"},
		{Kind: BadIndex, Path: "index.json", Detail: "index.json is missing"},
	}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"blobs":2,"bytes":30,"problems":[{"kind":"corrupt","digest":"sha256:` + strings.Repeat("a", 64) + `","path":"blobs/sha256/` +
		strings.Repeat("a", 64) + `","detail":"content hashes to x"},{"kind":"bad-index","path":"index.json","detail":"index.json is missing"}]}`
	if string(b) != want {
		t.Errorf("json.Marshal(report) = %s\nwant %s", b, want)
	}
	var back VerifyReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Blobs != rep.Blobs || back.Bytes != rep.Bytes || !slices.Equal(back.Problems, rep.Problems) {
		t.Errorf("round trip = %+v, want %+v", back, rep)
	}
}

func TestProblemKindText(t *testing.T) {
	for k := BadLayout; k <= NotRegular; k++ {
		b, err := k.MarshalText()
		if err != nil || string(b) != k.String() || strings.Contains(string(b), "ProblemKind") {
			t.Errorf("%d.MarshalText() = %q, %v; want its name %q", int(k), b, err, k.String())
		}
		var back ProblemKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, k)
		}
	}
	for _, k := range []ProblemKind{0, NotRegular + 1, -1} {
		if _, err := k.MarshalText(); err == nil {
			t.Errorf("ProblemKind(%d).MarshalText() succeeded, want an error", int(k))
		}
		if got, want := k.String(), fmt.Sprintf("ProblemKind(%d)", int(k)); got != want {
			t.Errorf("ProblemKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
	var k ProblemKind
	if err := k.UnmarshalText([]byte("Corrupt")); err == nil {
		t.Errorf("UnmarshalText(%q) succeeded, want an error", "Corrupt")
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Corrupt, "sha256:ab", "blobs/sha256/ab", "content hashes to sha256:cd"}, "corrupt sha256:ab blobs/sha256/ab: content hashes to sha256:cd"},
		{Problem{BadIndex, "", "index.json", "index.json is missing"}, "bad-index index.json: index.json is missing"},
		{Problem{Unreferenced, "", "blobs/x", ""}, "unreferenced blobs/x"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// FuzzVerify runs Verify on a layout whose index.json and the manifest it names are
// fuzzed: it must never fail to run nor panic, and its report must be sorted and hold
// only known kinds.
func FuzzVerify(f *testing.F) {
	im := newTestImage(f, "fuzz", "linux", "amd64", false)
	mdesc, _ := json.Marshal(im.manifest.desc)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+string(mdesc)+`]}`), im.manifest.data)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+string(mdesc)+`]}`), []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"`+
		im.manifest.desc.Digest.String()+`","size":1,"annotations":{"io.ocistream.absent-blobs":"x,,sha256:1"}}]}`), im.manifest.data)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`), []byte(`{`))
	f.Add([]byte(`[]`), []byte{})
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		dir := t.TempDir()
		files := map[string][]byte{
			layoutFile:                            ociLayoutJSON,
			indexFile:                             index,
			blobRel(im.manifest.desc.Digest):      manifest,
			blobRel(im.config.desc.Digest):        im.config.data,
			blobRel(im.layers[0].desc.Digest):     im.layers[0].data,
			".ingest/sha256-0123456789ab.partial": []byte("x"),
		}
		for name, b := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := Verify(t.Context(), dir, &VerifyOptions{Concurrency: 2})
		if err != nil {
			t.Fatalf("Verify = %v", err)
		}
		for i, p := range rep.Problems {
			if _, err := p.Kind.MarshalText(); err != nil {
				t.Errorf("problem %d has kind %v", i, p.Kind)
			}
			if i > 0 && rep.Problems[i-1].Kind > p.Kind {
				t.Errorf("problems not sorted by kind: %v", rep.Problems)
			}
			if p.Path == "" || strings.HasPrefix(p.Path, "/") || strings.Contains(p.Path, "..") {
				t.Errorf("problem %v: path %q is not inside the layout", p, p.Path)
			}
		}
	})
}

// BenchmarkVerify verifies a layout of one image with four 16 MiB layers of random
// bytes (the page cache holds them: this measures hashing and the walk, not the disk),
// with one worker and with GOMAXPROCS workers.
func BenchmarkVerify(b *testing.B) {
	d, err := OpenDir(b.TempDir(), &DirOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	config := newBlob(ocitypes.MediaTypeOCIConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	m := ocitypes.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocitypes.MediaTypeOCIManifest, Config: config.desc}
	total := config.desc.Size
	for i := range 4 {
		l := benchBlob(16 << 20)
		l.data[0] = byte(i) // four distinct layers
		l = newBlob(ocitypes.MediaTypeOCILayerGzip, l.data)
		writeBlob(b, d, l)
		m.Layers = append(m.Layers, l.desc)
		total += l.desc.Size
	}
	writeBlob(b, d, config)
	manifest := jsonBlob(b, ocitypes.MediaTypeOCIManifest, m)
	writeBlob(b, d, manifest)
	total += manifest.desc.Size
	if err := d.Tag(b.Context(), mustParse(b, "example.com/bench:v1"), manifest.desc); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("concurrency=%d", workers), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				rep, err := Verify(b.Context(), d.Path(), &VerifyOptions{Concurrency: workers})
				if err != nil || !rep.OK() {
					b.Fatalf("Verify = %v, %v", rep, err)
				}
			}
		})
	}
}
