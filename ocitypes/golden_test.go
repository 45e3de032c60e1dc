package ocitypes

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/fixtures.golden")

// describe summarises what the parsers make of one fixture.
func describe(name string, body []byte) string {
	var b strings.Builder
	switch {
	case strings.HasPrefix(name, "errors/"):
		errs, ok := ParseErrorEnvelope(body)
		if !ok {
			return "not an error envelope"
		}
		for i, e := range errs {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s (%s)", e.Code, e.Error())
			if e.Detail != nil {
				fmt.Fprintf(&b, " detail %s", e.Detail)
			}
		}
		return b.String()
	case strings.Contains(name, "tags"):
		tl, err := ParseTagList(body)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("tags of %q: %q", tl.Name, tl.Tags)
	case strings.Contains(name, "catalog"):
		c, err := ParseCatalog(body)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("repositories: %q", c.Repositories)
	case strings.Contains(name, "config"):
		img, err := ParseImageConfig(body)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("image config for %s, %d diff_ids, %d history entries",
			FormatPlatform(img.Platform), len(img.RootFS.DiffIDs), len(img.History))
	}
	mt, err := MediaTypeOf("", body)
	if err != nil {
		return err.Error()
	}
	if IsIndex(mt) {
		idx, err := ParseIndex("", body)
		if err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "%s with %d entries", mt, len(idx.Manifests))
		for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "windows/amd64", "linux/s390x/z15"} {
			want, _ := ParsePlatform(p)
			fmt.Fprintf(&b, "\n  %s: ", p)
			d, err := SelectManifest(idx, want)
			if err != nil {
				b.WriteString(err.Error())
				continue
			}
			fmt.Fprintf(&b, "%s %s", FormatPlatform(*d.Platform), d.Digest.Encoded()[:12])
		}
		return b.String()
	}
	m, err := ParseManifest("", body)
	if err != nil {
		return err.Error()
	}
	foreign := 0
	for _, l := range m.Layers {
		if IsForeignLayer(l.MediaType) {
			foreign++
		}
	}
	fmt.Fprintf(&b, "%s, config %s, %d layers (%d foreign)", mt, m.Config.MediaType, len(m.Layers), foreign)
	if m.ArtifactType != "" {
		fmt.Fprintf(&b, ", artifactType %s", m.ArtifactType)
	}
	if m.Subject != nil {
		fmt.Fprintf(&b, ", subject %s", m.Subject.Digest.Encoded()[:12])
	}
	return b.String()
}

// TestFixturesGolden runs every fixture through the parsers and compares the summary with
// testdata/fixtures.golden; go test -run TestFixturesGolden -update rewrites it.
func TestFixturesGolden(t *testing.T) {
	var names []string
	for _, pattern := range []string{"*.json", "errors/*"} {
		m, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m...)
	}
	var out bytes.Buffer
	for _, path := range names {
		name := filepath.ToSlash(strings.TrimPrefix(path, "testdata"+string(filepath.Separator)))
		fmt.Fprintf(&out, "%s: %s\n", name, describe(name, fixture(t, name)))
	}
	golden := filepath.Join("testdata", "fixtures.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("fixture summaries differ from %s (run with -update after checking):\n%s", golden, out.Bytes())
	}
}
