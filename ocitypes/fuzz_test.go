package ocitypes

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
)

// seedContentTypes are the Content-Type values each fixture is tried with.
var seedContentTypes = []string{
	"", "application/json", MediaTypeOCIManifest, MediaTypeOCIIndex,
	MediaTypeDockerManifest, MediaTypeDockerManifestList, MediaTypeDockerSchema1Signed,
}

// addJSONSeeds adds every JSON fixture under testdata with every seed content type.
func addJSONSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, ct := range seedContentTypes {
			f.Add(ct, b)
		}
	}
	f.Add("", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"os":"linux","architecture":"arm64","os.features":[]}}]}`))
	f.Add("", []byte(`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"data":"","urls":[],"annotations":{}},"layers":null,"annotations":{}}`))
	f.Add("text/plain", []byte(`[]`))
	f.Add("", []byte(`{"a":[[{"b":1}],{"c":{"d":[]}}],"A":1}`))
}

// checkParseError fails unless err wraps one of the parsers' sentinels.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, errdef.ErrInvalidManifest) && !errors.Is(err, errdef.ErrUnsupported) && !errors.Is(err, errdef.ErrSizeExceedsLimit) {
		t.Fatalf("error %v wraps none of the parse sentinels", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	addJSONSeeds(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := ParseManifest(contentType, body)
		if err != nil {
			checkParseError(t, err)
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", m, err)
		}
		m2, err := ParseManifest(contentType, again)
		if err != nil {
			t.Fatalf("ParseManifest(%q, json.Marshal(m)) = %v; body %s, re-marshalled %s", contentType, err, body, again)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("manifest changed in a round trip:\n%#v\n%#v", m, m2)
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	addJSONSeeds(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		idx, err := ParseIndex(contentType, body)
		if err != nil {
			checkParseError(t, err)
			return
		}
		again, err := json.Marshal(idx)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", idx, err)
		}
		idx2, err := ParseIndex(contentType, again)
		if err != nil {
			t.Fatalf("ParseIndex(%q, json.Marshal(idx)) = %v; body %s, re-marshalled %s", contentType, err, body, again)
		}
		if !reflect.DeepEqual(idx, idx2) {
			t.Fatalf("index changed in a round trip:\n%#v\n%#v", idx, idx2)
		}
		// Selection never panics and never returns an attestation.
		for _, want := range []Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
			d, err := SelectManifest(idx, want)
			if err == nil && (d.Platform == nil || !MatchPlatform(want, *d.Platform)) {
				t.Fatalf("SelectManifest(%s) = %+v, which does not match", FormatPlatform(want), d)
			}
			if err != nil && !errors.Is(err, errdef.ErrNoMatchingPlatform) {
				t.Fatalf("SelectManifest(%s) error = %v", FormatPlatform(want), err)
			}
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{
		"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "Linux/ARM64", "windows/amd64", "linux/x86_64",
		"linux/arm64/8", "linux/amd64/v3", "macos/aarch64", "linux/armhf", "linux/386", "linux", "/", "a/b/c/d",
		"linux/arm//", "linux/riscv64/rva22u64", "linux/\u212Aarch",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidPlatform) {
				t.Fatalf("ParsePlatform(%q) error = %v, want %v", s, err, errdef.ErrInvalidPlatform)
			}
			return
		}
		text := FormatPlatform(p)
		if text != strings.ToLower(s) {
			t.Fatalf("FormatPlatform(ParsePlatform(%q)) = %q", s, text)
		}
		p2, err := ParsePlatform(text)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("ParsePlatform(%q) = %+v, %v, want %+v", text, p2, err, p)
		}
		n := NormalizePlatform(p)
		if n2 := NormalizePlatform(n); !reflect.DeepEqual(n, n2) {
			t.Fatalf("NormalizePlatform is not idempotent: %+v then %+v", n, n2)
		}
		if !MatchPlatform(p, p) || !MatchPlatform(n, p) || !MatchPlatform(p, n) {
			t.Fatalf("MatchPlatform(%+v) does not match itself or its normal form %+v", p, n)
		}
	})
}
