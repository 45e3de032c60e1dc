package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// otherConfig is a docker config.json with entries login and logout must keep.
const otherConfig = `{
	"auths": {
		"other.example": {"auth": "b3RoZXI6c2VjcmV0"}
	},
	"proxies": {"default": {"noProxy": "127.0.0.1"}},
	"psFormat": "table {{.ID}}"
}`

// readConfig returns the auths of the docker config.json in dir and the whole file.
func readConfig(t *testing.T, dir string) (map[string]map[string]string, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	return doc.Auths, string(data)
}

func TestLoginLogout(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	for _, mode := range []authMode{authHtpasswd, authToken} {
		t.Run(mode.String(), func(t *testing.T) {
			reg := newRegistry(t, registryOptions{Auth: mode})
			img := makeImage(301, []int64{20 << 10}, platformAMD64)
			pushImage(t, reg, "team/app", "v1", img)
			cfgDir := t.TempDir()
			cfgPath := filepath.Join(cfgDir, "config.json")
			if err := os.WriteFile(cfgPath, []byte(otherConfig), 0o644); err != nil {
				t.Fatal(err)
			}
			o := cliOptions{env: []string{"DOCKER_CONFIG=" + cfgDir}}
			ocipull := func(stdin string, args ...string) cliRun {
				t.Helper()
				o := o
				o.stdin = stdin
				return runProgram(t, bin, o, append([]string{"--plain-http"}, args...)...)
			}

			// A wrong password: one line, exit 1, nothing stored.
			r := ocipull("wrong\n", "login", "-u", testUser, "--password-stdin", reg.Host)
			want := "ocipull: login to " + reg.Host + " failed: unauthorized: incorrect username or password (nothing was stored)\n"
			if r.code != 1 || r.stderr != want {
				t.Errorf("login with a wrong password: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
			if data, _ := os.ReadFile(cfgPath); string(data) != otherConfig {
				t.Errorf("a failed login changed config.json:\n%s", data)
			}

			// Without credentials a pull is refused, and says how to log in (the token
			// issuer grants anonymous pulls: there the password was checked by a token
			// request all the same).
			if mode == authHtpasswd {
				r = ocipull("", "pull", reg.Ref("team/app", "v1"), "-o", filepath.Join(t.TempDir(), "app"))
				if r.code != 1 || !strings.Contains(r.stderr, "run ocipull login") {
					t.Errorf("anonymous pull: exit %d, stderr %q; want the login hint", r.code, r.stderr)
				}
			}

			// The right password: stored as docker stores it, the rest kept.
			r = ocipull(testPassword+"\n", "login", "-u", testUser, "--password-stdin", reg.Host).mustSucceed(t, "login")
			if !strings.HasPrefix(string(r.stdout), "Login Succeeded") {
				t.Errorf("login stdout %q", r.stdout)
			}
			auths, raw := readConfig(t, cfgDir)
			wantAuth := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
			if got := auths[reg.Host]["auth"]; got != wantAuth {
				t.Errorf("auths[%s] = %v, want auth %s", reg.Host, auths[reg.Host], wantAuth)
			}
			for _, keep := range []string{`"other.example": {"auth": "b3RoZXI6c2VjcmV0"}`, `"proxies": {"default": {"noProxy": "127.0.0.1"}}`, `"psFormat": "table {{.ID}}"`} {
				if !strings.Contains(raw, keep) {
					t.Errorf("login lost %s:\n%s", keep, raw)
				}
			}
			if fi, err := os.Stat(cfgPath); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
				t.Errorf("config.json mode: %v, %v; want 0600", fi.Mode(), err)
			}

			// A pull with no credential flags uses them.
			out := filepath.Join(t.TempDir(), "app")
			r = ocipull("", "pull", reg.Ref("team/app", "v1"), "-o", out).mustSucceed(t, "pull after login")
			if got := strings.TrimSpace(string(r.stdout)); got != img.ManifestDesc.Digest.String() {
				t.Errorf("pull after login printed %q, want %s", got, img.ManifestDesc.Digest)
			}

			// Logout removes the entry, keeps the rest; a second one has nothing to do.
			r = ocipull("", "logout", reg.Host).mustSucceed(t, "logout")
			if !strings.HasPrefix(string(r.stdout), "logged out of "+reg.Host) {
				t.Errorf("logout stdout %q", r.stdout)
			}
			auths, raw = readConfig(t, cfgDir)
			if _, ok := auths[reg.Host]; ok || !strings.Contains(raw, `"other.example"`) {
				t.Errorf("after logout:\n%s", raw)
			}
			r = ocipull("", "logout", reg.Host).mustSucceed(t, "second logout")
			if string(r.stdout) != "not logged in to "+reg.Host+"\n" {
				t.Errorf("second logout stdout %q", r.stdout)
			}
		})
	}
}

// buildCredentialProgram builds the docker-credential-<name> fixture of the root
// module (credentials/testdata/keychain/helper: get, store and erase backed by
// NAME.json beside it) into dir as docker-credential-name.
func buildCredentialProgram(t *testing.T, dir, name string) {
	t.Helper()
	src := t.TempDir()
	code, err := os.ReadFile(filepath.Join("..", "credentials", "testdata", "keychain", "helper", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string][]byte{"main.go": code, "go.mod": []byte("module fixture\n\ngo 1.24\n")} {
		if err := os.WriteFile(filepath.Join(src, file), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(dir, "docker-credential-"+name), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the credential program: %v\n%s", err, out)
	}
}

func TestLoginCredentialProgram(t *testing.T) {
	bin := buildProgram(t, t.TempDir(), "./cmd/ocipull")
	progDir := t.TempDir()
	buildCredentialProgram(t, progDir, "fixture")
	reg := newRegistry(t, registryOptions{Auth: authToken})
	img := makeImage(302, []int64{10 << 10}, platformAMD64)
	pushImage(t, reg, "team/app", "v1", img)

	cfgDir := t.TempDir()
	cfgPath := filepath.Join(cfgDir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(`{"credsStore": "fixture"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := cliOptions{env: []string{"DOCKER_CONFIG=" + cfgDir, "PATH=" + progDir + string(os.PathListSeparator) + os.Getenv("PATH")}}
	ocipull := func(stdin string, args ...string) cliRun {
		t.Helper()
		o := o
		o.stdin = stdin
		return runProgram(t, bin, o, append([]string{"--plain-http"}, args...)...)
	}
	type entry struct{ Username, Secret string }
	stored := func() map[string]entry {
		t.Helper()
		m := map[string]entry{}
		data, err := os.ReadFile(filepath.Join(progDir, "fixture.json"))
		if err == nil {
			err = json.Unmarshal(data, &m)
		}
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return m
	}

	r := ocipull(testPassword+"\n", "login", "-u", testUser, "--password-stdin", reg.Host).mustSucceed(t, "login")
	if want := "Login Succeeded: " + reg.Host + " (stored in docker-credential-fixture)\n"; string(r.stdout) != want {
		t.Errorf("login stdout %q, want %q", r.stdout, want)
	}
	if strings.Contains(r.stderr, "unencrypted") {
		t.Errorf("login through a program warned about plain text: %q", r.stderr)
	}
	if got := stored()[reg.Host]; got.Username != testUser || got.Secret != testPassword {
		t.Errorf("the program stored %v for %s", got, reg.Host)
	}
	auths, raw := readConfig(t, cfgDir)
	if e, ok := auths[reg.Host]; !ok || len(e) != 0 || strings.Contains(raw, testPassword) {
		t.Errorf("config.json after login through a program:\n%s", raw)
	}
	ocipull("", "pull", reg.Ref("team/app", "v1"), "-o", filepath.Join(t.TempDir(), "app")).mustSucceed(t, "pull through the program's credential")

	ocipull("", "logout", reg.Host).mustSucceed(t, "logout")
	if got, ok := stored()[reg.Host]; ok {
		t.Errorf("the program still holds %v after logout", got)
	}
	if auths, _ := readConfig(t, cfgDir); auths[reg.Host] != nil {
		t.Errorf("config.json keeps the entry after logout")
	}
	log, _ := os.ReadFile(filepath.Join(progDir, "fixture.log"))
	for _, op := range []string{"store:" + reg.Host, "erase:" + reg.Host} {
		if !strings.Contains(string(log), op+"\n") {
			t.Errorf("the program was not asked %s; its log:\n%s", op, log)
		}
	}
}
