package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// b64 is what a config.json "auth" holds for user and pass.
func b64(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// envMap returns a LookupEnv reading m only.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keychain", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// isolatedEnv is an environment whose default locations all lie under a fresh
// temporary directory, so that no lookup reaches the machine's own files.
func isolatedEnv(t *testing.T) (map[string]string, string) {
	dir := t.TempDir()
	return map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"USERPROFILE":     filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR": filepath.Join(dir, "run"),
	}, dir
}

// dockerKeychain returns a Keychain reading only a docker config.json with content.
func dockerKeychain(t *testing.T, content string) (*Keychain, string, *logRecorder) {
	t.Helper()
	env, dir := isolatedEnv(t)
	path := writeFile(t, filepath.Join(dir, "docker", "config.json"), content)
	logs := &logRecorder{}
	k := NewKeychain(&KeychainOptions{DockerConfig: path, LookupEnv: envMap(env), Logf: logs.logf})
	return k, path, logs
}

func TestCanonicalHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docker.io", "index.docker.io"},
		{"index.docker.io", "index.docker.io"},
		{"registry-1.docker.io", "index.docker.io"},
		{"registry.hub.docker.com", "index.docker.io"},
		{"https://index.docker.io/v1/", "index.docker.io"},
		{"Docker.IO", "index.docker.io"},
		{"ghcr.io", "ghcr.io"},
		{"GHCR.io", "ghcr.io"},
		{"localhost:5000", "localhost:5000"},
		{"http://localhost:5000", "localhost:5000"},
		{"https://registry.example.com/v1/", "registry.example.com"},
		{"quay.io/org/repo", "quay.io"},
		{"[::1]:5000", "[::1]:5000"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := CanonicalHost(tt.in); got != tt.want {
				t.Errorf("CanonicalHost(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	cred := Credential{Username: "u", Password: "p"}
	tests := []struct {
		storeHost, host string
		want            Credential
	}{
		{"docker.io", "registry-1.docker.io", cred},
		{"docker.io", "index.docker.io", cred},
		{"index.docker.io", "docker.io", cred},
		{"registry-1.docker.io", "docker.io", cred},
		{"https://index.docker.io/v1/", "registry-1.docker.io", cred},
		{"ghcr.io", "ghcr.io", cred},
		{"ghcr.io", "GHCR.IO", cred},
		{"ghcr.io", "registry-1.docker.io", Credential{}},
		{"docker.io", "ghcr.io", Credential{}},
		{"localhost:5000", "localhost", Credential{}},
		{"localhost", "localhost:5000", Credential{}},
	}
	for _, tt := range tests {
		t.Run(tt.storeHost+"/"+tt.host, func(t *testing.T) {
			got, err := Static(tt.storeHost, cred).Credential(t.Context(), tt.host)
			if err != nil || got != tt.want {
				t.Errorf("Static(%q).Credential(%q) = %+v, %v; want %+v, nil", tt.storeHost, tt.host, got, err, tt.want)
			}
		})
	}
}

func TestKeychainAuths(t *testing.T) {
	const nullGUID = "00000000-0000-0000-0000-000000000000"
	tests := []struct {
		name    string
		config  string
		host    string
		want    Credential
		wantErr string // substring of the error; "" for none
	}{
		{
			name:   "auth",
			config: `{"auths":{"registry.example.com":{"auth":"` + b64("alice", "s3cret") + `"}}}`,
			host:   "registry.example.com",
			want:   Credential{Username: "alice", Password: "s3cret"},
		},
		{
			name:   "auth password with colons",
			config: `{"auths":{"registry.example.com":{"auth":"` + b64("alice", "a:b:c") + `"}}}`,
			host:   "registry.example.com",
			want:   Credential{Username: "alice", Password: "a:b:c"},
		},
		{
			name:   "auth password with trailing NULs",
			config: `{"auths":{"registry.example.com":{"auth":"` + b64("alice", "pw\x00\x00") + `"}}}`,
			host:   "registry.example.com",
			want:   Credential{Username: "alice", Password: "pw"},
		},
		{
			name:   "identitytoken with auth",
			config: readFixture(t, "docker-config.json"),
			host:   "ghcr.io",
			want:   Credential{Username: "octo", Password: "ghp_fixture", RefreshToken: "ghcr-refresh"},
		},
		{
			name:   "identitytoken alone",
			config: `{"auths":{"registry.example.com":{"identitytoken":"refresh-1"}}}`,
			host:   "registry.example.com",
			want:   Credential{RefreshToken: "refresh-1"},
		},
		{
			name:   "registrytoken",
			config: `{"auths":{"registry.example.com":{"registrytoken":"bearer-1"}}}`,
			host:   "registry.example.com",
			want:   Credential{AccessToken: "bearer-1"},
		},
		{
			name:   "username and password fields",
			config: `{"auths":{"registry.example.com":{"username":"bob","password":"pw"}}}`,
			host:   "registry.example.com",
			want:   Credential{Username: "bob", Password: "pw"},
		},
		{
			name:   "token username",
			config: `{"auths":{"registry.example.com":{"username":"<token>","password":"refresh-2"}}}`,
			host:   "registry.example.com",
			want:   Credential{RefreshToken: "refresh-2"},
		},
		{
			name:   "acr null guid with identitytoken",
			config: readFixture(t, "docker-config.json"),
			host:   "myregistry.azurecr.io",
			want:   Credential{RefreshToken: "acr-refresh"},
		},
		{
			name:   "acr null guid with password",
			config: `{"auths":{"r.azurecr.io":{"auth":"` + b64(nullGUID, "acr-refresh-2") + `"}}}`,
			host:   "r.azurecr.io",
			want:   Credential{RefreshToken: "acr-refresh-2"},
		},
		{
			name:   "hub key for registry-1.docker.io",
			config: readFixture(t, "docker-config.json"),
			host:   "registry-1.docker.io",
			want:   Credential{Username: "hubuser", Password: "dckr_pat_fixture"},
		},
		{
			name:   "hub key for docker.io",
			config: readFixture(t, "docker-config.json"),
			host:   "docker.io",
			want:   Credential{Username: "hubuser", Password: "dckr_pat_fixture"},
		},
		{
			name:   "hub key for index.docker.io",
			config: readFixture(t, "docker-config.json"),
			host:   "index.docker.io",
			want:   Credential{Username: "hubuser", Password: "dckr_pat_fixture"},
		},
		{
			name: "hub bookkeeping keys alone are ignored",
			config: `{"auths":{"https://index.docker.io/v1/access-token":{"auth":"` + b64("u", "access") + `"},` +
				`"https://index.docker.io/v1/refresh-token":{"auth":"` + b64("u", "refresh") + `"}}}`,
			host: "registry-1.docker.io",
			want: Credential{},
		},
		{
			name:   "podman key docker.io",
			config: `{"auths":{"docker.io":{"auth":"` + b64("pod", "pw") + `"}}}`,
			host:   "registry-1.docker.io",
			want:   Credential{Username: "pod", Password: "pw"},
		},
		{
			name:   "podman key index.docker.io",
			config: `{"auths":{"index.docker.io":{"auth":"` + b64("pod", "pw") + `"}}}`,
			host:   "registry-1.docker.io",
			want:   Credential{Username: "pod", Password: "pw"},
		},
		{
			name:   "podman key registry-1.docker.io",
			config: `{"auths":{"registry-1.docker.io":{"auth":"` + b64("pod", "pw") + `"}}}`,
			host:   "registry-1.docker.io",
			want:   Credential{Username: "pod", Password: "pw"},
		},
		{
			name: "docker hub key wins over podman spelling",
			config: `{"auths":{"docker.io":{"auth":"` + b64("pod", "pw") + `"},` +
				`"https://index.docker.io/v1/":{"auth":"` + b64("dock", "pw") + `"}}}`,
			host: "registry-1.docker.io",
			want: Credential{Username: "dock", Password: "pw"},
		},
		{
			name:   "legacy https key with /v1/",
			config: readFixture(t, "docker-config.json"),
			host:   "legacy.example.com",
			want:   Credential{Username: "local", Password: "localpass"},
		},
		{
			name:   "legacy http key",
			config: `{"auths":{"http://registry.example.com:5000":{"auth":"` + b64("old", "pw") + `"}}}`,
			host:   "registry.example.com:5000",
			want:   Credential{Username: "old", Password: "pw"},
		},
		{
			name: "bare key wins over legacy key",
			config: `{"auths":{"https://registry.example.com/v1/":{"auth":"` + b64("old", "pw") + `"},` +
				`"registry.example.com":{"auth":"` + b64("new", "pw") + `"}}}`,
			host: "registry.example.com",
			want: Credential{Username: "new", Password: "pw"},
		},
		{
			name:   "port is part of the host",
			config: `{"auths":{"registry.example.com:5000":{"auth":"` + b64("a", "b") + `"}}}`,
			host:   "registry.example.com",
			want:   Credential{},
		},
		{
			name:   "host case is ignored",
			config: `{"auths":{"Registry.Example.com":{"auth":"` + b64("a", "b") + `"}}}`,
			host:   "registry.example.com",
			want:   Credential{Username: "a", Password: "b"},
		},
		{
			name:   "namespaced key loses to host key",
			config: readFixture(t, "podman-auth.json"),
			host:   "registry.example.com:5000",
			want:   Credential{Username: "local", Password: "localpass"},
		},
		{
			name:   "least specific namespaced key without host key",
			config: readFixture(t, "podman-auth.json"),
			host:   "quay.io",
			want:   Credential{Username: "org", Password: "orgpass"},
		},
		{
			name:   "unknown host",
			config: readFixture(t, "docker-config.json"),
			host:   "unknown.example.com",
			want:   Credential{},
		},
		{
			name:   "empty entry without store",
			config: readFixture(t, "docker-config.json"),
			host:   "registry.example.com",
			want:   Credential{},
		},
		{
			name:   "empty file",
			config: "",
			host:   "registry.example.com",
			want:   Credential{},
		},
		{
			name:   "null auths and entries",
			config: `{"auths":{"registry.example.com":null},"credHelpers":null}`,
			host:   "registry.example.com",
			want:   Credential{},
		},
		{
			name:    "empty username",
			config:  `{"auths":{"registry.example.com":{"auth":"` + b64("", "topsecret") + `"}}}`,
			host:    "registry.example.com",
			wantErr: "invalid auth in CONFIG for registry.example.com",
		},
		{
			name:    "auth without colon",
			config:  `{"auths":{"registry.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("topsecret")) + `"}}}`,
			host:    "registry.example.com",
			wantErr: "invalid auth in CONFIG for registry.example.com",
		},
		{
			name:    "auth not base64",
			config:  `{"auths":{"registry.example.com":{"auth":"topsecret!"}}}`,
			host:    "registry.example.com",
			wantErr: "invalid auth in CONFIG for registry.example.com",
		},
		{
			name:    "malformed json",
			config:  `{"auths":{"registry.example.com":{"auth":"topsecret"`,
			host:    "registry.example.com",
			wantErr: "parse CONFIG: ",
		},
		{
			name:    "wrong type",
			config:  `{"auths":{"registry.example.com":"topsecret"}}`,
			host:    "registry.example.com",
			wantErr: "parse CONFIG: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, path, _ := dockerKeychain(t, tt.config)
			got, err := k.Credential(t.Context(), tt.host)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "CONFIG", path)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Credential(%q) error = %v, want one containing %q", tt.host, err, want)
				}
				if strings.Contains(err.Error(), "topsecret") {
					t.Errorf("Credential(%q) error %q reveals the secret", tt.host, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Credential(%q) = %+v, %v; want %+v, nil", tt.host, got, err, tt.want)
			}
		})
	}
}

func TestKeychainEmptyEntryLogged(t *testing.T) {
	k, path, logs := dockerKeychain(t, `{"auths":{"registry.example.com":{}}}`)
	got, err := k.Credential(t.Context(), "registry.example.com")
	if err != nil || !got.IsZero() {
		t.Fatalf("Credential = %+v, %v; want zero, nil", got, err)
	}
	if s := logs.String(); !strings.Contains(s, path) || !strings.Contains(s, "registry.example.com") {
		t.Errorf("log %q does not name the file and the host", s)
	}
}

func TestKeychainFiles(t *testing.T) {
	docker := `{"auths":{"registry.example.com":{"auth":"` + b64("docker", "pw") + `"},` +
		`"docker-only.example.com":{"auth":"` + b64("docker", "pw") + `"}}}`
	podman := func(user string) string {
		return `{"auths":{"registry.example.com":{"auth":"` + b64(user, "pw") + `"}}}`
	}
	type file struct{ rel, content string } // rel is relative to the test's directory
	tests := []struct {
		name    string
		files   []file
		env     map[string]string // values are relative to the test's directory
		opts    KeychainOptions   // paths relative to the test's directory
		host    string
		want    string // the username found; "" for none
		wantErr string
	}{
		{
			name:  "default docker config in home",
			files: []file{{"home/.docker/config.json", docker}},
			host:  "registry.example.com",
			want:  "docker",
		},
		{
			name:  "DOCKER_CONFIG",
			files: []file{{"dc/config.json", docker}, {"home/.docker/config.json", podman("home")}},
			env:   map[string]string{"DOCKER_CONFIG": "dc"},
			host:  "registry.example.com",
			want:  "docker",
		},
		{
			name:  "DockerConfig option over DOCKER_CONFIG",
			files: []file{{"opt.json", podman("option")}, {"dc/config.json", docker}},
			env:   map[string]string{"DOCKER_CONFIG": "dc"},
			opts:  KeychainOptions{DockerConfig: "opt.json"},
			host:  "registry.example.com",
			want:  "option",
		},
		{
			name:  "REGISTRY_AUTH_FILE overrides docker config",
			files: []file{{"auth.json", podman("podman")}, {"home/.docker/config.json", docker}},
			env:   map[string]string{"REGISTRY_AUTH_FILE": "auth.json"},
			host:  "registry.example.com",
			want:  "podman",
		},
		{
			name:  "XDG_RUNTIME_DIR auth.json overrides docker config",
			files: []file{{"run/containers/auth.json", podman("runtime")}, {"home/.docker/config.json", docker}},
			host:  "registry.example.com",
			want:  "runtime",
		},
		{
			name: "XDG_RUNTIME_DIR before XDG_CONFIG_HOME",
			files: []file{
				{"run/containers/auth.json", podman("runtime")},
				{"cfg/containers/auth.json", podman("config")},
			},
			env:  map[string]string{"XDG_CONFIG_HOME": "cfg"},
			host: "registry.example.com",
			want: "runtime",
		},
		{
			name:  "XDG_CONFIG_HOME auth.json",
			files: []file{{"cfg/containers/auth.json", podman("config")}, {"home/.docker/config.json", docker}},
			env:   map[string]string{"XDG_CONFIG_HOME": "cfg"},
			host:  "registry.example.com",
			want:  "config",
		},
		{
			name:  "home .config auth.json",
			files: []file{{"home/.config/containers/auth.json", podman("homecfg")}, {"home/.docker/config.json", docker}},
			host:  "registry.example.com",
			want:  "homecfg",
		},
		{
			name:  "REGISTRY_AUTH_FILE replaces the XDG files",
			files: []file{{"auth.json", `{}`}, {"run/containers/auth.json", podman("runtime")}, {"home/.docker/config.json", docker}},
			env:   map[string]string{"REGISTRY_AUTH_FILE": "auth.json"},
			host:  "registry.example.com",
			want:  "docker",
		},
		{
			name:  "AuthFile option over REGISTRY_AUTH_FILE",
			files: []file{{"opt.json", podman("option")}, {"auth.json", podman("env")}},
			env:   map[string]string{"REGISTRY_AUTH_FILE": "auth.json"},
			opts:  KeychainOptions{AuthFile: "opt.json"},
			host:  "registry.example.com",
			want:  "option",
		},
		{
			name:  "podman file without the host falls through to docker",
			files: []file{{"run/containers/auth.json", podman("runtime")}, {"home/.docker/config.json", docker}},
			host:  "docker-only.example.com",
			want:  "docker",
		},
		{
			name:  "no files at all",
			files: nil,
			host:  "registry.example.com",
			want:  "",
		},
		{
			name: "missing explicit files",
			opts: KeychainOptions{AuthFile: "nope/auth.json", DockerConfig: "nope/config.json"},
			host: "registry.example.com",
			want: "",
		},
		{
			name:    "malformed podman file",
			files:   []file{{"run/containers/auth.json", `{"auths":`}, {"home/.docker/config.json", docker}},
			host:    "registry.example.com",
			wantErr: "parse DIR/run/containers/auth.json: ",
		},
		{
			name:    "malformed docker config",
			files:   []file{{"home/.docker/config.json", `not json`}},
			host:    "registry.example.com",
			wantErr: "parse DIR/home/.docker/config.json: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, dir := isolatedEnv(t)
			for k, v := range tt.env {
				env[k] = filepath.Join(dir, v)
			}
			for _, f := range tt.files {
				writeFile(t, filepath.Join(dir, filepath.FromSlash(f.rel)), f.content)
			}
			opts := tt.opts
			if opts.AuthFile != "" {
				opts.AuthFile = filepath.Join(dir, opts.AuthFile)
			}
			if opts.DockerConfig != "" {
				opts.DockerConfig = filepath.Join(dir, opts.DockerConfig)
			}
			opts.LookupEnv = envMap(env)
			got, err := NewKeychain(&opts).Credential(t.Context(), tt.host)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "DIR/", dir+"/")
				want = strings.ReplaceAll(want, "/", string(filepath.Separator))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Credential(%q) error = %v, want one containing %q", tt.host, err, want)
				}
				return
			}
			if err != nil || got.Username != tt.want {
				t.Errorf("Credential(%q) = %+v, %v; want username %q", tt.host, got, err, tt.want)
			}
		})
	}
}

func TestKeychainRereadsChangedFile(t *testing.T) {
	k, path, _ := dockerKeychain(t, `{"auths":{"registry.example.com":{"auth":"`+b64("first", "pw")+`"}}}`)
	got, err := k.Credential(t.Context(), "registry.example.com")
	if err != nil || got.Username != "first" {
		t.Fatalf("Credential = %+v, %v; want username first", got, err)
	}
	writeFile(t, path, `{"auths":{"registry.example.com":{"auth":"`+b64("second", "password")+`"}}}`)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	got, err = k.Credential(t.Context(), "registry.example.com")
	if err != nil || got.Username != "second" {
		t.Errorf("Credential after rewrite = %+v, %v; want username second", got, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	got, err = k.Credential(t.Context(), "registry.example.com")
	if err != nil || !got.IsZero() {
		t.Errorf("Credential after removal = %+v, %v; want zero, nil", got, err)
	}
}

func TestKeychainZeroValueAndCanceledContext(t *testing.T) {
	var k Keychain
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := k.Credential(ctx, "registry.example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Credential(canceled) error = %v, want context.Canceled", err)
	}
	k2, _, _ := dockerKeychain(t, `{}`)
	if got, err := k2.Credential(t.Context(), ""); err != nil || !got.IsZero() {
		t.Errorf(`Credential("") = %+v, %v; want zero, nil`, got, err)
	}
}

func TestKeychainConcurrent(t *testing.T) {
	k, _, _ := dockerKeychain(t, readFixture(t, "docker-config.json"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, h := range []string{"registry-1.docker.io", "ghcr.io", "quay.io"} {
				if _, err := k.Credential(t.Context(), h); err != nil {
					t.Errorf("Credential(%q) error = %v", h, err)
				}
			}
		}()
	}
	wg.Wait()
}

// Programs: a real executable speaking the docker-credential-<name> protocol, built
// from testdata/keychain/helper and installed under several names on a private PATH.

// buildFixtureProgram builds the fixture program into a temporary directory of t, or
// skips t when no go command is available.
func buildFixtureProgram(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH; cannot build the credential program fixture")
	}
	// Built as a module of its own, so that the state of this module's go.mod does
	// not matter and is never touched.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.go"), readFixture(t, filepath.Join("helper", "main.go")))
	writeFile(t, filepath.Join(dir, "go.mod"), "module fixture\n\ngo 1.24\n")
	out := filepath.Join(dir, "docker-credential-fixture")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// fixtureAnswer is one answer of the fixture program (see testdata/keychain/helper).
type fixtureAnswer struct {
	Username    string  `json:",omitempty"`
	Secret      string  `json:",omitempty"`
	Exit        int     `json:",omitempty"`
	Stdout      string  `json:",omitempty"`
	Stderr      string  `json:",omitempty"`
	Raw         *string `json:",omitempty"`
	SleepMillis int     `json:",omitempty"`
}

// installProgram puts the program built at src into bin as docker-credential-<name>,
// answering from answers.
func installProgram(t *testing.T, src, bin, name string, answers map[string]fixtureAnswer) {
	t.Helper()
	dst := filepath.Join(bin, "docker-credential-"+name)
	if runtime.GOOS == "windows" {
		dst += ".exe"
	}
	if err := os.Link(src, dst); err != nil {
		copyFile(t, src, dst)
	}
	data, err := json.Marshal(answers)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin, name+".json"), string(data))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// askedOf returns the server URLs docker-credential-<name> in bin was asked for.
func askedOf(t *testing.T, bin, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin, name+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestKeychainPrograms(t *testing.T) {
	src := buildFixtureProgram(t)
	const nullGUID = "00000000-0000-0000-0000-000000000000"
	garbage := `{"Username":"u","Secret":"leakme`
	tests := []struct {
		name     string
		config   string
		programs map[string]map[string]fixtureAnswer
		host     string
		want     Credential
		wantLog  []string            // substrings of the log; nil for an empty log
		noLog    []string            // substrings the log must not hold
		asked    map[string][]string // program name -> server URLs it must have been asked
	}{
		{
			name:     "credsStore answers",
			config:   `{"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {"registry.example.com": {Username: "alice", Secret: "pw"}}},
			host:     "registry.example.com",
			want:     Credential{Username: "alice", Password: "pw"},
			asked:    map[string][]string{"store": {"registry.example.com"}},
		},
		{
			name:     "docker hub is asked by its index URL",
			config:   `{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {"https://index.docker.io/v1/": {Username: "hub", Secret: "pw"}}},
			host:     "registry-1.docker.io",
			want:     Credential{Username: "hub", Password: "pw"},
			asked:    map[string][]string{"store": {"https://index.docker.io/v1/"}},
		},
		{
			name: "credHelpers over credsStore over auths",
			config: `{"auths":{"registry.example.com":{"auth":"` + b64("file", "pw") + `"}},` +
				`"credsStore":"store","credHelpers":{"registry.example.com":"special"}}`,
			programs: map[string]map[string]fixtureAnswer{
				"store":   {"registry.example.com": {Username: "store", Secret: "pw"}},
				"special": {"registry.example.com": {Username: "special", Secret: "pw"}},
			},
			host:  "registry.example.com",
			want:  Credential{Username: "special", Password: "pw"},
			asked: map[string][]string{"special": {"registry.example.com"}, "store": nil},
		},
		{
			name: "credHelpers for another host leave credsStore",
			config: `{"auths":{"registry.example.com":{"auth":"` + b64("file", "pw") + `"}},` +
				`"credsStore":"store","credHelpers":{"other.example.com":"special"}}`,
			programs: map[string]map[string]fixtureAnswer{
				"store":   {"registry.example.com": {Username: "store", Secret: "pw"}},
				"special": {"registry.example.com": {Username: "special", Secret: "pw"}},
			},
			host:  "registry.example.com",
			want:  Credential{Username: "store", Password: "pw"},
			asked: map[string][]string{"special": nil},
		},
		{
			name:     "credHelpers keyed by a hub alias",
			config:   `{"credHelpers":{"docker.io":"special"}}`,
			programs: map[string]map[string]fixtureAnswer{"special": {"https://index.docker.io/v1/": {Username: "hub", Secret: "pw"}}},
			host:     "registry-1.docker.io",
			want:     Credential{Username: "hub", Password: "pw"},
		},
		{
			name:     "store not found falls back to auths",
			config:   `{"auths":{"registry.example.com":{"auth":"` + b64("file", "pw") + `"}},"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {}},
			host:     "registry.example.com",
			want:     Credential{Username: "file", Password: "pw"},
			asked:    map[string][]string{"store": {"registry.example.com"}},
		},
		{
			name:     "store not found with empty entry",
			config:   `{"auths":{"registry.example.com":{}},"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {}},
			host:     "registry.example.com",
			want:     Credential{},
		},
		{
			name:    "program missing",
			config:  `{"auths":{"registry.example.com":{}},"credsStore":"nosuch"}`,
			host:    "registry.example.com",
			want:    Credential{},
			wantLog: []string{"docker-credential-nosuch", "registry.example.com"},
		},
		{
			name:     "program missing, auths answer",
			config:   `{"auths":{"registry.example.com":{"auth":"` + b64("file", "pw") + `"}},"credsStore":"nosuch"}`,
			host:     "registry.example.com",
			want:     Credential{Username: "file", Password: "pw"},
			wantLog:  []string{"docker-credential-nosuch"},
			programs: nil,
		},
		{
			name:   "program exits 1 with a message on stdout",
			config: `{"credsStore":"broken"}`,
			programs: map[string]map[string]fixtureAnswer{"broken": {"registry.example.com": {
				Exit: 1, Stdout: "error getting credentials: the keyring is locked\n",
			}}},
			host:    "registry.example.com",
			want:    Credential{},
			wantLog: []string{"docker-credential-broken", "registry.example.com", "exit status 1", "the keyring is locked"},
		},
		{
			name:   "program exits 3 with a message on stderr",
			config: `{"credHelpers":{"registry.example.com":"broken"}}`,
			programs: map[string]map[string]fixtureAnswer{"broken": {"registry.example.com": {
				Exit: 3, Stderr: "no AWS credentials",
			}}},
			host:    "registry.example.com",
			want:    Credential{},
			wantLog: []string{"docker-credential-broken", "exit status 3", "no AWS credentials"},
		},
		{
			name:     "program answers truncated json",
			config:   `{"credsStore":"garbled"}`,
			programs: map[string]map[string]fixtureAnswer{"garbled": {"registry.example.com": {Raw: &garbage}}},
			host:     "registry.example.com",
			want:     Credential{},
			wantLog:  []string{"docker-credential-garbled", "registry.example.com"},
			noLog:    []string{"leakme"},
		},
		{
			name:     "invalid program name",
			config:   `{"credsStore":"../evil"}`,
			host:     "registry.example.com",
			want:     Credential{},
			wantLog:  []string{"docker-credential-../evil", "invalid"},
			programs: nil,
		},
		{
			name:     "token username",
			config:   `{"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {"registry.example.com": {Username: "<token>", Secret: "refresh-3"}}},
			host:     "registry.example.com",
			want:     Credential{RefreshToken: "refresh-3"},
		},
		{
			name:     "acr null guid",
			config:   `{"credHelpers":{"r.azurecr.io":"acr"}}`,
			programs: map[string]map[string]fixtureAnswer{"acr": {"r.azurecr.io": {Username: nullGUID, Secret: "acr-refresh"}}},
			host:     "r.azurecr.io",
			want:     Credential{RefreshToken: "acr-refresh"},
		},
		{
			name:     "program answers empty credentials",
			config:   `{"credsStore":"store"}`,
			programs: map[string]map[string]fixtureAnswer{"store": {"registry.example.com": {}}},
			host:     "registry.example.com",
			want:     Credential{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			t.Setenv("PATH", bin)
			for name, answers := range tt.programs {
				installProgram(t, src, bin, name, answers)
			}
			k, _, logs := dockerKeychain(t, tt.config)
			got, err := k.Credential(t.Context(), tt.host)
			if err != nil || got != tt.want {
				t.Errorf("Credential(%q) = %+v, %v; want %+v, nil", tt.host, got, err, tt.want)
			}
			log := logs.String()
			if tt.wantLog == nil && log != "" {
				t.Errorf("log = %q, want none", log)
			}
			for _, s := range tt.wantLog {
				if !strings.Contains(log, s) {
					t.Errorf("log = %q, want it to contain %q", log, s)
				}
			}
			secrets := tt.noLog
			for _, answers := range tt.programs {
				for _, a := range answers {
					if a.Secret != "" {
						secrets = append(secrets, a.Secret)
					}
				}
			}
			for _, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("log = %q reveals %q", log, s)
				}
			}
			for name, want := range tt.asked {
				if got := askedOf(t, bin, name); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("docker-credential-%s asked for %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestKeychainProgramHonoursContext(t *testing.T) {
	src := buildFixtureProgram(t)
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	installProgram(t, src, bin, "slow", map[string]fixtureAnswer{"registry.example.com": {SleepMillis: 60_000}})
	k, _, logs := dockerKeychain(t, `{"credsStore":"slow"}`)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	got, err := k.Credential(ctx, "registry.example.com")
	if !errors.Is(err, context.DeadlineExceeded) || !got.IsZero() {
		t.Errorf("Credential = %+v, %v; want zero, context.DeadlineExceeded", got, err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("log = %q, want none", s)
	}
}

func TestOneLineBounded(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := oneLineBounded(long)
	if len(got) > 203 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éé") {
		t.Errorf("oneLineBounded(300×é) = %q (%d bytes), want at most 200 bytes of é then ...", got, len(got))
	}
	if got := oneLineBounded(" a\n\tb  c \n"); got != "a b c" {
		t.Errorf("oneLineBounded = %q, want %q", got, "a b c")
	}
}

func FuzzParseConfigFile(f *testing.F) {
	for _, name := range []string{"docker-config.json", "podman-auth.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "keychain", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "registry-1.docker.io")
		f.Add(b, "quay.io")
	}
	f.Add([]byte(`{"auths":{"h":{"auth":"`+b64("", "x")+`"}}}`), "h")
	f.Add([]byte(`{"auths":{"https://h/v1/":{"auth":"`+b64("u", "p\x00")+`","identitytoken":"t"}},"credHelpers":{"h":""}}`), "h")
	f.Add([]byte(`{"auths":{"h/a/b":{"username":"<token>","password":"p"}}}`), "h")
	f.Add([]byte(`{"auths":null}`), "")
	f.Add([]byte(`[`), "h")
	f.Fuzz(func(t *testing.T, data []byte, host string) {
		cf, err := parseConfigFile("config.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse config.json: ") {
				t.Errorf("parseConfigFile error %q does not name the file", err)
			}
			return
		}
		// Only the auths of the file: a fuzzed name must not run a program.
		cf.CredsStore, cf.CredHelpers = "", nil
		var k Keychain
		target := newCredentialTarget(host)
		cred, err := k.fromConfig(t.Context(), cf, target)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid auth in config.json for ") {
				t.Errorf("fromConfig error %q is not an invalid auth error", err)
			}
			return
		}
		if cred.Username == "<token>" || cred.Username == "00000000-0000-0000-0000-000000000000" {
			t.Errorf("fromConfig kept the convention username %q", cred.Username)
		}
	})
}

func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"docker.io", "https://index.docker.io/v1/", "HTTP://Host:5000/x", "quay.io/a/b", "", "https://https://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := CanonicalHost(s)
		if again := CanonicalHost(c); again != c {
			t.Errorf("CanonicalHost(%q) = %q, but CanonicalHost(%q) = %q", s, c, c, again)
		}
		if strings.Contains(c, "/") {
			t.Errorf("CanonicalHost(%q) = %q holds a slash", s, c)
		}
	})
}

func ExampleNewKeychain() {
	dir, err := os.MkdirTemp("", "keychain-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// A docker config.json as "docker login" writes it: Docker Hub under its index
	// URL, other registries under their host.
	config := `{"auths": {
		"https://index.docker.io/v1/": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("alice:hub-password")) + `"},
		"ghcr.io": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("octocat:ghp-token")) + `"}
	}}`
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		fmt.Println(err)
		return
	}

	k := NewKeychain(&KeychainOptions{
		DockerConfig: path,
		AuthFile:     filepath.Join(dir, "auth.json"), // no podman file: not an error
	})
	for _, host := range []string{"registry-1.docker.io", "ghcr.io", "quay.io"} {
		cred, err := k.Credential(context.Background(), host)
		if err != nil {
			fmt.Println(err)
			return
		}
		if cred.IsZero() {
			fmt.Printf("%s: anonymous\n", host)
			continue
		}
		fmt.Printf("%s: %s\n", host, cred.Username)
	}
	// Output:
	// registry-1.docker.io: alice
	// ghcr.io: octocat
	// quay.io: anonymous
}

func TestDockerAuthConfigEnv(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	fileConfig := `{"auths":{"file.example":{"auth":"` + b64("fileuser:filepass") + `"},"env.example":{"auth":"` + b64("fileuser:filepass") + `"}}}`
	tests := []struct {
		name    string
		env     string
		host    string
		want    Credential
		wantErr bool
	}{
		{name: "env wins", env: `{"auths":{"env.example":{"auth":"` + b64("envuser:envpass") + `"}}}`, host: "env.example", want: Credential{Username: "envuser", Password: "envpass"}},
		{name: "hub key", env: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`, host: "registry-1.docker.io", want: Credential{Username: "hub", Password: "pw"}},
		{name: "file is the fallback", env: `{"auths":{"env.example":{"auth":"` + b64("envuser:envpass") + `"}}}`, host: "file.example", want: Credential{Username: "fileuser", Password: "filepass"}},
		{name: "unknown field", env: `{"auths":{},"credsStore":"desktop"}`, host: "env.example", wantErr: true},
		{name: "entry without auth", env: `{"auths":{"env.example":{"username":"u"}}}`, host: "env.example", wantErr: true},
		{name: "not json", env: `auths`, host: "env.example", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, dir := isolatedEnv(t)
			env["DOCKER_AUTH_CONFIG"] = tt.env
			path := writeFile(t, filepath.Join(dir, "docker", "config.json"), fileConfig)
			k := NewKeychain(&KeychainOptions{DockerConfig: path, LookupEnv: envMap(env)})
			got, err := k.Credential(t.Context(), tt.host)
			if tt.wantErr {
				if err == nil || strings.Contains(err.Error(), "envpass") {
					t.Fatalf("Credential = %+v, %v; want an error that does not quote the value", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Credential(%s) = %+v, %v; want %+v", tt.host, got, err, tt.want)
			}
		})
	}
}
