package hosts

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// describe prints endpoints one per line (and their headers and TLS below), with
// paths relative to testdata.
func describe(eps []Endpoint, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	if eps == nil {
		return "not configured\n"
	}
	var b strings.Builder
	for _, ep := range eps {
		kind := "server"
		if ep.Mirror {
			kind = "mirror"
		}
		if ep.Implicit {
			kind += " (implicit)"
		}
		fmt.Fprintf(&b, "%s %s [%s]", kind, ep.URL, ep.Capabilities)
		if ep.DialTimeout > 0 {
			fmt.Fprintf(&b, " dial_timeout=%s", ep.DialTimeout)
		}
		fmt.Fprintf(&b, " from %s\n", filepath.ToSlash(ep.Source))
		keys := make([]string, 0, len(ep.Header))
		for k := range ep.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  header %s: %q\n", k, ep.Header[k])
		}
		if tc := ep.TLS; tc != nil {
			fmt.Fprintf(&b, "  tls: extra CAs %v, client certificates %d, skip_verify %v\n", tc.RootCAs != nil, len(tc.Certificates), tc.InsecureSkipVerify)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	configs := []struct {
		roots []string
		hosts []string
	}{
		{[]string{"testdata/root1", "testdata/root2"}, []string{
			"docker.io", "registry-1.docker.io", "Index.Docker.IO",
			"registry.example.com:5000",
			"certsd.example.com:443",
			"certsd.example.com", // no port: not the :443 directory, so _default
			"combined.example.com",
			"empty.example.com",
			"only2.example.com", // root1's _default wins over root2's directory
		}},
		{[]string{"testdata/root2"}, []string{"only2.example.com", "docker.io", "unknown.example.com"}},
	}
	var b strings.Builder
	for _, c := range configs {
		cfg, err := New(c.roots...)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range c.hosts {
			eps, err := cfg.Endpoints(h)
			fmt.Fprintf(&b, "== %s %s\n%s\n", strings.Join(c.roots, ":"), h, describe(eps, err))
		}
	}
	golden := filepath.Join("testdata", "endpoints.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("endpoints differ from %s (run go test -update and review the diff):\n%s", golden, got)
	}
}

// TestPortDirectories checks containerd's lookup order for host:port: host_port_,
// then host:port, then _default; host alone never applies to another port.
func TestPortDirectories(t *testing.T) {
	tests := []struct {
		name string
		dirs []string // under the root; each gets a hosts.toml naming it as server
		host string
		want string // the server's host, "" for not configured
	}{
		{"underscore form first", []string{"r.test_5000_", "r.test:5000", "_default"}, "r.test:5000", "r.test-5000-.test"},
		{"colon form", []string{"r.test:5000", "r.test", "_default"}, "r.test:5000", "r.test-5000.test"},
		{"host alone is not host:port", []string{"r.test"}, "r.test:5000", ""},
		{"host alone falls to _default", []string{"r.test", "_default"}, "r.test:5000", "-default.test"},
		{"no port", []string{"r.test", "_default"}, "r.test", "r.test.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.dirs {
				name := strings.NewReplacer(":", "-", "_", "-").Replace(d)
				writeFile(t, filepath.Join(root, d, "hosts.toml"), fmt.Sprintf("server = %q\n", "https://"+name+".test"))
			}
			cfg, err := New(root)
			if err != nil {
				t.Fatal(err)
			}
			eps, err := cfg.Endpoints(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if eps != nil {
				got = eps[len(eps)-1].URL.Host
			}
			if got != tt.want {
				t.Errorf("server %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRootsPrecedence checks that the first root with any match wins, _default
// included, as containerd's hostDirFromRoots does.
func TestRootsPrecedence(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(r1, "_default", "hosts.toml"), `server = "https://default1.test"`)
	writeFile(t, filepath.Join(r2, "h.test", "hosts.toml"), `server = "https://h2.test"`)
	for _, tt := range []struct {
		roots []string
		want  string
	}{{[]string{r1, r2}, "default1.test"}, {[]string{r2, r1}, "h2.test"}} {
		cfg, err := New(tt.roots...)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := cfg.Endpoints("h.test")
		if err != nil || len(eps) != 1 || eps[0].URL.Host != tt.want {
			t.Errorf("roots %v: %s, want server %s", tt.roots, describe(eps, err), tt.want)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw      string
		override bool
		want     string
	}{
		{"mirror.test", false, "https://mirror.test/v2"},
		{"http://mirror.test:5000", false, "http://mirror.test:5000/v2"},
		{"https://mirror.test/", false, "https://mirror.test/v2"},
		{"https://mirror.test/v2", false, "https://mirror.test/v2"},
		{"https://mirror.test/v2/", false, "https://mirror.test/v2"},
		{"https://mirror.test/cache", false, "https://mirror.test/cache/v2"},
		{"https://harbor.test/v2/proxy", true, "https://harbor.test/v2/proxy"},
		{"https://af.test/artifactory/api/docker/hub/v2/", true, "https://af.test/artifactory/api/docker/hub/v2"},
		{"https://mirror.test", true, "https://mirror.test"},
		{"https://mirror.test/a/../b", false, "https://mirror.test/b/v2"},
		{"HTTPS://Mirror.Test", false, "https://mirror.test/v2"},
		{"[::1]:5000", false, "https://[::1]:5000/v2"},
	}
	for _, tt := range tests {
		u, err := parseURL(tt.raw, tt.override)
		if err != nil {
			t.Errorf("parseURL(%q, %v): %v", tt.raw, tt.override, err)
			continue
		}
		if u.String() != tt.want {
			t.Errorf("parseURL(%q, %v) = %s, want %s", tt.raw, tt.override, u, tt.want)
		}
	}
}

// TestBrokenFiles checks that every broken file is one error line naming the file
// and the problem.
func TestBrokenFiles(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"syntax", "server = ", "toml: line 1"},
		{"unknown key", "skip-verify = true", `unknown key "skip-verify"`},
		{"unknown host key", "[host.\"https://m.test\"]\n  capabilitys = [\"pull\"]", `unknown key "host.\"https://m.test\".capabilitys"`},
		{"unknown capability", `capabilities = ["pull", "fetch"]`, `unknown capability "fetch"`},
		{"capabilities not a list", `capabilities = "pull"`, "capabilities"},
		{"scheme", `server = "ftp://m.test"`, `server "ftp://m.test": scheme "ftp"`},
		{"no host", `server = "https://"`, "no host"},
		{"userinfo", `server = "https://u:p@m.test"`, "credentials in the URL"},
		{"query", `server = "https://m.test/?x=1"`, "query"},
		{"mirror url", "[host.\"https://\"]\n", `[host."https://"]: no host`},
		{"ca type", `ca = 5`, "ca: want a string or a list of strings, found an integer"},
		{"ca list type", `ca = ["a.crt", true]`, "found a boolean"},
		{"ca missing", `ca = "missing.crt"`, "missing.crt: no such file or directory"},
		{"ca not pem", `ca = "hosts.toml"`, "no PEM certificate"},
		{"client type", `client = 1`, "client: found an integer"},
		{"client pair of three", `client = [["a", "b", "c"]]`, "invalid pair"},
		{"client missing", `client = "nope.pem"`, "nope.pem: no such file or directory"},
		{"client without key", `client = "ca.crt"`, "no private key in the file"},
		{"header type", "[header]\n  X-A = 1", "header X-A: want a string"},
		{"header name", "[header]\n  \"X A\" = \"v\"", `header: invalid name "X A"`},
		{"header value", "[header]\n  X-A = \"a\\nb\"", "line break"},
		{"dial_timeout", `dial_timeout = "soon"`, `dial_timeout "soon"`},
		{"skip_verify type", `skip_verify = "yes"`, "skip_verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			file := filepath.Join(root, "h.test", "hosts.toml")
			writeFile(t, file, tt.file)
			writeFile(t, filepath.Join(root, "h.test", "ca.crt"), string(mustRead(t, "testdata/root1/combined.example.com/ca.crt")))
			cfg, err := New(root)
			if err != nil {
				t.Fatal(err)
			}
			eps, err := cfg.Endpoints("h.test")
			if err == nil {
				t.Fatalf("no error; endpoints:\n%s", describe(eps, nil))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, file+": ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with %q and holding %q", msg, file+": ", tt.want)
			}
			if _, again := cfg.Endpoints("h.test"); again == nil || again.Error() != msg {
				t.Errorf("second lookup: %v, want the same error", again)
			}
		})
	}
}

func TestCertsDirErrors(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "h.test")
	writeFile(t, filepath.Join(dir, "orphan.key"), string(mustRead(t, "testdata/root1/combined.example.com/client.key")))
	cfg, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.Endpoints("h.test")
	if err == nil || !strings.Contains(err.Error(), "no client certificate orphan.cert") {
		t.Errorf("orphan key: %v", err)
	}
	// A .cert without its .key must hold the key itself.
	if err := os.Remove(filepath.Join(dir, "orphan.key")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "lonely.cert"), string(mustRead(t, "testdata/root1/combined.example.com/client.cert")))
	cfg, _ = New(root)
	if _, err = cfg.Endpoints("h.test"); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("cert without key: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "")
	for _, tt := range []struct{ root, want string }{
		{filepath.Join(t.TempDir(), "missing"), "no such file or directory"},
		{file, "not a directory"},
	} {
		if _, err := New(tt.root); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.root) {
			t.Errorf("New(%s): %v, want %q", tt.root, err, tt.want)
		}
	}
	cfg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if eps, err := cfg.Endpoints("docker.io"); eps != nil || err != nil {
		t.Errorf("empty config: %v, %v", eps, err)
	}
	if _, err := cfg.Endpoints("../etc"); err == nil {
		t.Error("a host with a path separator was accepted")
	}
}

// TestTLS checks that the configured CA joins the system pool and that the client
// certificates load, from hosts.toml and from a certs.d directory alike.
func TestTLS(t *testing.T) {
	cfg, err := New("testdata/root1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(mustRead(t, "testdata/root1/combined.example.com/client.cert"))
	clientCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"combined.example.com", "certsd.example.com:443"} {
		eps, err := cfg.Endpoints(host)
		if err != nil {
			t.Fatal(err)
		}
		tc := eps[len(eps)-1].TLS
		if tc == nil || tc.RootCAs == nil {
			t.Fatalf("%s: no CA pool", host)
		}
		// The test CA signed the client certificate: it verifies only if the CA was added.
		opts := x509.VerifyOptions{Roots: tc.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := clientCert.Verify(opts); err != nil {
			t.Errorf("%s: the configured CA is not trusted: %v", host, err)
		}
		if len(tc.Certificates) == 0 || tc.Certificates[0].Leaf == nil || tc.Certificates[0].Leaf.Subject.CommonName != "hosts test client" {
			t.Errorf("%s: client certificate not loaded", host)
		}
		if tc.InsecureSkipVerify {
			t.Errorf("%s: skip_verify set", host)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
