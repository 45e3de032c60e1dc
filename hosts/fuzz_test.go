package hosts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseFile feeds hosts.toml texts to the parser: it must not panic, and what it
// accepts must be well formed (the server last, http(s) URLs with a host, absolute
// file paths, header values without line breaks).
func FuzzParseFile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/hosts.toml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``,
		`server = "mirror.test"`,
		"[host.\"a.test\"]\n[host.\"b.test\"]\ncapabilities = []\n",
		`client = ["c.cert", "c.key"]`,
		`client = [["c.cert", "c.key"], "both.pem", ["x", ""]]`,
		"[header]\nX-A = [\"1\", \"2\"]\n",
		`override_path = true` + "\n" + `server = "https://h.test/p/"`,
		`server = "http://[::1]:5000"`,
		"[host]\n\"http://x.test\" = { capabilities = [\"pull\"] }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseFile(data, "/hosts/h.test")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error on several lines: %q", err)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatal("no server entry")
		}
		for i, e := range entries {
			if e.url == nil {
				if i != len(entries)-1 {
					t.Errorf("entry %d of %d has no URL", i, len(entries))
				}
			} else if (e.url.Scheme != "http" && e.url.Scheme != "https") || e.url.Host == "" || e.url.User != nil {
				t.Errorf("entry %d: URL %s", i, e.url)
			}
			for _, p := range e.caFiles {
				if !filepath.IsAbs(p) && p != "" {
					t.Errorf("ca path %q not absolute", p)
				}
			}
			for _, vals := range e.header {
				for _, v := range vals {
					if strings.ContainsAny(v, "\r\n") {
						t.Errorf("header value %q", v)
					}
				}
			}
		}
	})
}
