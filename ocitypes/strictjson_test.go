package ocitypes

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ocistream/ocistream/errdef"
)

func TestCheckObject(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"annotations":{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":"v",`, i)
		}
		b.WriteString(extra + `"last":"v"}}`)
		return b.String()
	}
	tests := []struct {
		name        string
		body        string
		errContains string // "" means valid
		wantKeys    []string
	}{
		{name: "empty object", body: `{}`},
		{name: "nested", body: `{"config":{"a":[1,2,{"b":null}],"c":"d"},"layers":[],"x":true}`, wantKeys: []string{"config", "layers"}},
		{name: "white space everywhere", body: " \n{ \"mediaType\" : \"a/b\" , \"layers\" : [ { } , [ ] ] } \r\n", wantKeys: []string{"mediaType", "layers"}},
		{name: "escaped key equals plain key", body: `{"a":1,"\u0061":2}`, errContains: `duplicate key "a"`},
		{name: "escaped quote in key", body: `{"a\"b":1,"a\"c":2}`},
		{name: "strings with braces", body: `{"a":"}{][,:","b":"\"}"}`},
		{name: "many keys", body: many(100, "")},
		{name: "many keys with a duplicate", body: many(100, `"k57":"w",`), errContains: `duplicate key "k57"`},
		{name: "case variants of a field", body: `{"layers":[{"Size":1,"size":2}]}`, errContains: "regardless of case"},
		{name: "case variants of other keys", body: `{"annotations":{"Foo":"1","foo":"2"}}`},
		{name: "deep nesting", body: strings.Repeat(`{"a":[`, 1000) + strings.Repeat(`]}`, 1000)},
		{name: "too deep", body: strings.Repeat(`{"a":[`, 6000) + strings.Repeat(`]}`, 6000), errContains: "malformed json"},
		{name: "unterminated string", body: `{"a":"b}`, errContains: "malformed json"},
		{name: "array", body: `[]`, errContains: "not a json object"},
		{name: "string", body: `"x"`, errContains: "not a json object"},
		{name: "white space only", body: " \n", errContains: "empty body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := checkObject([]byte(tt.body))
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("checkObject(%.60s) = %v, want an error containing %q", tt.body, err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("checkObject(%.60s) = %v", tt.body, err)
			}
			for _, k := range tt.wantKeys {
				if !keys.has(k) {
					t.Errorf("checkObject(%.60s) keys lack %q", tt.body, k)
				}
			}
		})
	}
}

func TestFoldKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"mediaType", "MEDIATYPE", true},
		{"mediaType", "mediatype", true},
		{"size", "\u017Fize", true}, // long s
		{"kind", "\u212Aind", true}, // Kelvin sign
		{"digest", "digests", false},
		{"os.version", "OS.Version", true},
		{"ä", "Ä", true},
	}
	for _, tt := range tests {
		if got := foldKey(tt.a) == foldKey(tt.b); got != tt.same {
			t.Errorf("foldKey(%q) == foldKey(%q) is %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("sha256:abc"); got != "sha256:abc" {
		t.Errorf("clip(short) = %q", got)
	}
	long := strings.Repeat("é", 80) // 160 bytes
	got := clip(long)
	if !strings.HasSuffix(got, "...") || len(got) > clipLen+3 || !utf8.ValidString(got) {
		t.Errorf("clip(long) = %q (%d bytes)", got, len(got))
	}
	// A hostile digest does not make a huge error message.
	body := `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","size":1,"digest":"sha256:` + strings.Repeat("a", 1<<20) + `"}]}`
	_, err := ParseIndex("", []byte(body))
	if !errors.Is(err, errdef.ErrInvalidManifest) || len(err.Error()) > 300 {
		t.Errorf("ParseIndex(huge digest) error is %d bytes: %.300v", len(err.Error()), err)
	}
}
