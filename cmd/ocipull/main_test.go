package main

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/internal/fakeregistry"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// isolate points every credential location at an empty temporary directory and
// clears the OCIPULL_* variables, so that the machine's docker login is never used.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, kv := range [][2]string{
		{"HOME", dir},
		{"DOCKER_CONFIG", filepath.Join(dir, "docker")},
		{"REGISTRY_AUTH_FILE", filepath.Join(dir, "auth.json")},
		{"XDG_RUNTIME_DIR", dir},
		{"XDG_CONFIG_HOME", dir},
	} {
		t.Setenv(kv[0], kv[1])
	}
	for _, name := range []string{"OCIPULL_USERNAME", "OCIPULL_PASSWORD", "OCIPULL_PLATFORM", "OCIPULL_CONCURRENCY", "OCIPULL_PLAIN_HTTP", "OCIPULL_INSECURE", "OCIPULL_HOSTS_DIR"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

// result is what one run of the command line printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs ocipull with args (without the program name) and stdin.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"ocipull"}, args...), strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// basicRegistry is a fake registry, anonymous when user is "", else requiring HTTP
// Basic with user and password.
type basicRegistry struct {
	*fakeregistry.Registry
	host string
}

func newBasicRegistry(t *testing.T, user, password string) *basicRegistry {
	t.Helper()
	reg := fakeregistry.Start(t)
	if user != "" {
		reg.SetAuth(fakeregistry.Auth{Scheme: "basic", Username: user, Password: password})
	}
	return &basicRegistry{Registry: reg, host: reg.Host()}
}

// credentials returns the "user:password" of the Basic credentials of each request
// from the since-th on (0 is the first), without anonymous requests.
func (r *basicRegistry) credentials(since int) []string {
	var out []string
	for _, q := range r.Log()[since:] {
		if u, p, ok := (&http.Request{Header: q.Header}).BasicAuth(); ok {
			out = append(out, u+":"+p)
		}
	}
	return out
}

func TestFlagValidation(t *testing.T) {
	isolate(t)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // substring of stderr; the exit status is then 2
	}{
		{"quiet and verbose", nil, []string{"-q", "-v", "ping", "localhost:1"}, "ocipull: --quiet and --verbose exclude each other\n"},
		{"password without user", nil, []string{"-p", "x", "ping", "localhost:1"}, "ocipull: a password needs --username\n"},
		{"user without password", nil, []string{"-u", "alice", "ping", "localhost:1"}, "ocipull: --username needs --password, --password-stdin or OCIPULL_PASSWORD\n"},
		{"password twice", nil, []string{"-u", "a", "-p", "b", "--password-stdin", "ping", "localhost:1"}, "exclude each other"},
		{"zero concurrency", nil, []string{"--concurrency", "0", "pull", "alpine"}, "--concurrency 0: must be at least 1"},
		{"bad concurrency from env", map[string]string{"OCIPULL_CONCURRENCY": "-3"}, []string{"pull", "alpine"}, "--concurrency -3: must be at least 1"},
		{"bad platform", nil, []string{"--platform", "linux", "pull", "alpine"}, `ocipull: --platform: invalid platform: "linux": want os/arch or os/arch/variant`},
		{"bad platform from env", map[string]string{"OCIPULL_PLATFORM": "linux/"}, []string{"manifest", "alpine"}, "--platform: invalid platform"},
		{"bad platform after the command", nil, []string{"resolve", "alpine", "--platform", "a/b/c/d"}, "--platform: invalid platform"},
		{"unknown flag", nil, []string{"pull", "--bogus", "alpine"}, "ocipull: unknown flag --bogus (see ocipull pull --help)\n"},
		{"unknown command", nil, []string{"pul", "alpine"}, `ocipull: unknown command "pul"; did you mean "pull"?`},
		{"pull without ref", nil, []string{"pull"}, "ocipull: pull wants one REF, got 0 arguments"},
		{"pull with two refs", nil, []string{"pull", "a", "b"}, "pull wants one REF, got 2 arguments"},
		{"tags without repo", nil, []string{"tags"}, "tags wants one REPO"},
		{"catalog of a path", nil, []string{"catalog", "localhost:5000/a"}, `ocipull: invalid registry "localhost:5000/a": want host[:port]`},
		{"ping of nothing", nil, []string{"ping", ""}, `invalid registry ""`},
		{"blob without digest", nil, []string{"blob", "alpine:3.20"}, `ocipull: blob wants REPO@DIGEST, like alpine@sha256:0123...; "alpine:3.20" has no digest`},
		{"manifest twice", nil, []string{"manifest", "a", "b"}, "manifest wants one REF, got 2"},
		{"resolve nothing", nil, []string{"resolve"}, "resolve wants one REF, got 0"},
		{"missing hosts dir", nil, []string{"--hosts-dir", "/nonexistent/certs.d", "pull", "alpine"}, "ocipull: --hosts-dir: hosts directory /nonexistent/certs.d: no such file or directory\n"},
		{"hosts dir list from env", map[string]string{"OCIPULL_HOSTS_DIR": os.TempDir() + ":/nonexistent/b"}, []string{"resolve", "alpine"}, "--hosts-dir: hosts directory /nonexistent/b: no such file"},
		{"hosts dir is a file", nil, []string{"--hosts-dir", "main_test.go", "tags", "alpine"}, "--hosts-dir: hosts directory main_test.go: not a directory"},
		{"empty password on stdin", nil, []string{"-u", "alice", "--password-stdin", "ping", "127.0.0.1:1"}, "--password-stdin: stdin holds no password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := runCLI(t, "", tt.args...)
			if got.code != exitUsage || !strings.Contains(got.stderr, tt.wantErr) {
				t.Errorf("ocipull %q: exit %d, stderr %q; want exit %d, stderr containing %q", tt.args, got.code, got.stderr, exitUsage, tt.wantErr)
			}
			if strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("ocipull %q: stderr %q is not one line", tt.args, got.stderr)
			}
			if got.stdout != "" {
				t.Errorf("ocipull %q: stdout %q, want nothing", tt.args, got.stdout)
			}
		})
	}
}

func TestInvalidReference(t *testing.T) {
	isolate(t)
	for _, args := range [][]string{
		{"pull", "Alpine"},
		{"manifest", "Alpine"},
		{"resolve", "Alpine"},
		{"tags", "Alpine"},
		{"blob", "Alpine@sha256:abc"},
	} {
		got := runCLI(t, "", args...)
		if got.code != exitFailure || !strings.HasPrefix(got.stderr, `ocipull: invalid reference "Alpine`) {
			t.Errorf("ocipull %q: exit %d, stderr %q; want exit 1 and an invalid reference", args, got.code, got.stderr)
		}
	}
}

// passwordWarning is what a password typed with -p earns on stderr.
const passwordWarning = "ocipull: warning: a password given with -p is visible to other users of this machine (ps); prefer --password-stdin or OCIPULL_PASSWORD\n"

func TestCredentialFlags(t *testing.T) {
	isolate(t)
	reg := newBasicRegistry(t, "alice", "s3cret")
	tests := []struct {
		name      string
		env       map[string]string
		stdin     string
		args      []string
		wantCode  int
		wantCreds []string
		wantOut   string
		wantErr   string
	}{
		{
			name:      "flags before the command",
			args:      []string{"--plain-http", "-u", "alice", "-p", "s3cret", "ping", reg.host},
			wantCreds: []string{"alice:s3cret"},
			wantOut:   reg.host + ": ok\n",
			wantErr:   passwordWarning,
		},
		{
			name:      "flags after the command",
			args:      []string{"ping", reg.host, "--plain-http", "--username", "alice", "--password", "s3cret"},
			wantCreds: []string{"alice:s3cret"},
			wantOut:   reg.host + ": ok\n",
			wantErr:   passwordWarning,
		},
		{
			name:      "password on stdin",
			stdin:     "s3cret\n",
			args:      []string{"--plain-http", "-u", "alice", "--password-stdin", "ping", reg.host},
			wantCreds: []string{"alice:s3cret"},
			wantOut:   reg.host + ": ok\n",
		},
		{
			name:      "environment",
			env:       map[string]string{"OCIPULL_USERNAME": "alice", "OCIPULL_PASSWORD": "s3cret", "OCIPULL_PLAIN_HTTP": "true"},
			args:      []string{"ping", reg.host},
			wantCreds: []string{"alice:s3cret"},
			wantOut:   reg.host + ": ok\n",
		},
		{
			name:      "http scheme implies plain http",
			args:      []string{"-q", "-u", "alice", "-p", "s3cret", "ping", "http://" + reg.host + "/"},
			wantCreds: []string{"alice:s3cret"},
		},
		{
			name:      "wrong password",
			args:      []string{"--plain-http", "-u", "alice", "-p", "wrong", "ping", reg.host},
			wantCode:  exitFailure,
			wantCreds: []string{"alice:wrong"},
			wantErr:   passwordWarning + "ocipull: unauthorized: " + reg.host + " refused the credentials from -u for " + reg.host + "\n",
		},
		{
			name:     "anonymous",
			args:     []string{"--plain-http", "ping", reg.host},
			wantCode: exitFailure,
			wantErr:  "ocipull: unauthorized: authentication required for " + reg.host + " — run ocipull login or pass -u\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			since := reg.Requests()
			got := runCLI(t, tt.stdin, tt.args...)
			if got.code != tt.wantCode || got.stdout != tt.wantOut || got.stderr != tt.wantErr {
				t.Errorf("ocipull %q = exit %d, stdout %q, stderr %q; want %d, %q, %q",
					tt.args, got.code, got.stdout, got.stderr, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if creds := reg.credentials(since); strings.Join(creds, ",") != strings.Join(tt.wantCreds, ",") {
				t.Errorf("ocipull %q sent credentials %q, want %q", tt.args, creds, tt.wantCreds)
			}
		})
	}
}

func TestKeychainCredentials(t *testing.T) {
	isolate(t)
	reg := newBasicRegistry(t, "bob", "hunter2")
	cfg := `{"auths":{"` + reg.host + `":{"auth":"Ym9iOmh1bnRlcjI="}}}` // bob:hunter2
	dir := os.Getenv("DOCKER_CONFIG")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got := runCLI(t, "", "--plain-http", "ping", reg.host)
	if got.code != 0 || got.stdout != reg.host+": ok\n" {
		t.Errorf("ping with a docker login: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}

	// A password the registry refuses is reported as coming from the keychain.
	cfg = `{"auths":{"` + reg.host + `":{"auth":"Ym9iOndyb25n"}}}` // bob:wrong
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got = runCLI(t, "", "--plain-http", "ping", reg.host)
	want := "ocipull: unauthorized: " + reg.host + " refused the credentials from the keychain for " + reg.host + "\n"
	if got.code != exitFailure || got.stderr != want {
		t.Errorf("ping with a wrong docker login: exit %d, stderr %q; want 1, %q", got.code, got.stderr, want)
	}

	// -u wins over the keychain for the command's registry.
	got = runCLI(t, "", "--plain-http", "-u", "bob", "-p", "hunter2", "ping", reg.host)
	if got.code != 0 {
		t.Errorf("ping with -u over a wrong docker login: exit %d, stderr %q", got.code, got.stderr)
	}

	// A broken config file is reported and ignored.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	got = runCLI(t, "", "--plain-http", "ping", reg.host)
	if got.code != exitFailure || !strings.HasPrefix(got.stderr, "ocipull: warning: ignoring stored credentials: ") ||
		!strings.HasSuffix(got.stderr, "ocipull: unauthorized: authentication required for "+reg.host+" — run ocipull login or pass -u\n") {
		t.Errorf("ping with a broken config.json: exit %d, stderr %q", got.code, got.stderr)
	}
}

func TestVerbose(t *testing.T) {
	isolate(t)
	reg := newBasicRegistry(t, "", "")
	got := runCLI(t, "", "-v", "--plain-http", "tags", reg.host+"/nope")
	if got.code != exitFailure {
		t.Fatalf("tags of an unknown repository: exit %d, want 1", got.code)
	}
	lines := strings.Split(strings.TrimSuffix(got.stderr, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("verbose stderr %q: want request lines, the message and the error chain", got.stderr)
	}
	if !strings.Contains(lines[0], "msg=http method=GET url=http://"+reg.host+"/v2/nope/tags/list") || !strings.Contains(lines[0], "status=404") {
		t.Errorf("first verbose line %q: want the logged request", lines[0])
	}
	wantMsg := "ocipull: repository unknown: " + reg.host + "/nope not found on " + reg.host
	if lines[len(lines)-2] != wantMsg {
		t.Errorf("verbose message line %q, want %q", lines[len(lines)-2], wantMsg)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ocipull: error chain: tags "+reg.host+"/nope: GET http://") {
		t.Errorf("verbose last line %q: want the error chain", last)
	}

	// Without -v the same failure is one line.
	got = runCLI(t, "", "--plain-http", "tags", reg.host+"/nope")
	if got.stderr != wantMsg+"\n" {
		t.Errorf("tags of an unknown repository: stderr %q, want %q", got.stderr, wantMsg+"\n")
	}
}

func TestHelpGolden(t *testing.T) {
	isolate(t)
	for _, name := range []string{"", "pull", "tags", "catalog", "manifest", "resolve", "blob", "ping", "verify", "unpack", "serve", "login", "logout", "completion", "copy"} {
		file := "help-" + name + ".golden"
		args := []string{name, "--help"}
		if name == "" {
			file, args = "help.golden", []string{"--help"}
		}
		t.Run(file, func(t *testing.T) {
			got := runCLI(t, "", args...)
			if got.code != 0 || got.stderr != "" {
				t.Fatalf("ocipull %q: exit %d, stderr %q", args, got.code, got.stderr)
			}
			path := filepath.Join("testdata", file)
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
				t.Errorf("ocipull %q printed:\n%s\nwant (%s):\n%s", args, got.stdout, path, want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	isolate(t)
	got := runCLI(t, "", "--version")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "ocipull version ") {
		t.Errorf("ocipull --version: exit %d, stdout %q", got.code, got.stdout)
	}
}
