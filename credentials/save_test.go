package credentials

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// otherKeys is a config.json with entries Save and Erase must keep byte for byte.
const otherKeys = `{
  "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
  "auths": {
    "quay.io": {"auth": "` + "cXVheTpwdw==" + `"},
    "HTTPS://Ghcr.io/v1/": {"auth": "b2xkOm9sZA=="}
  },
  "currentContext":   "rootless"
}`

func TestSaveAndErase(t *testing.T) {
	tests := []struct {
		name     string
		initial  string // config.json before; "" for none
		host     string
		cred     Credential
		wantKey  string
		wantGone []string // keys Save removes (other spellings of the host)
	}{
		{name: "new file", host: "localhost:5000", cred: Credential{Username: "alice", Password: "pw"}, wantKey: "localhost:5000"},
		{name: "docker hub under its index URL", host: "registry-1.docker.io", cred: Credential{Username: "alice", Password: "pw"}, wantKey: "https://index.docker.io/v1/"},
		{name: "other keys kept", initial: otherKeys, host: "ghcr.io", cred: Credential{Username: "octo", Password: "a:b"}, wantKey: "ghcr.io", wantGone: []string{"HTTPS://Ghcr.io/v1/"}},
		{name: "refresh token", initial: "{}", host: "example.azurecr.io", cred: Credential{RefreshToken: "rt"}, wantKey: "example.azurecr.io"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "docker")
			path := filepath.Join(dir, "config.json")
			if tt.initial != "" {
				writeFile(t, path, tt.initial)
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			loc, err := Save(t.Context(), path, tt.host, tt.cred)
			if err != nil {
				t.Fatal(err)
			}
			if loc.Key != tt.wantKey || loc.Helper != "" || loc.File != path {
				t.Errorf("Save = %+v, want key %q in %s", loc, tt.wantKey, path)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range []string{`{"default": {"httpProxy": "http://proxy:3128"}}`, `{"auth": "cXVheTpwdw=="}`, `"rootless"`} {
				if strings.Contains(tt.initial, keep) && !strings.Contains(string(data), keep) {
					t.Errorf("lost %s:\n%s", keep, data)
				}
			}
			var doc struct{ Auths map[string]json.RawMessage }
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, data)
			}
			for _, k := range tt.wantGone {
				if _, ok := doc.Auths[k]; ok {
					t.Errorf("%s still in auths", k)
				}
			}
			// The keychain reads back what was saved.
			k := NewKeychain(&KeychainOptions{DockerConfig: path, AuthFile: filepath.Join(dir, "none.json"), LookupEnv: envMap(nil)})
			got, err := k.Credential(t.Context(), tt.host)
			if err != nil || got != tt.cred {
				t.Errorf("Credential after Save = %+v, %v; want %+v", got, err, tt.cred)
			}

			loc, erased, err := Erase(t.Context(), path, tt.host)
			if err != nil || !erased || loc.Key != tt.wantKey {
				t.Fatalf("Erase = %+v, %v, %v", loc, erased, err)
			}
			if got, err := k.Credential(t.Context(), tt.host); err != nil || !got.IsZero() {
				t.Errorf("Credential after Erase = %+v, %v", got, err)
			}
			if _, erased, err := Erase(t.Context(), path, tt.host); err != nil || erased {
				t.Errorf("second Erase = %v, %v; want nothing erased", erased, err)
			}
			data, _ = os.ReadFile(path)
			if strings.Contains(tt.initial, "quay.io") && !strings.Contains(string(data), `"quay.io": {"auth": "cXVheTpwdw=="}`) {
				t.Errorf("Erase lost another entry:\n%s", data)
			}
		})
	}
}

func TestSaveRefusesBadFiles(t *testing.T) {
	tests := []struct{ name, content string }{
		{"not json", "{"},
		{"not an object", "[]"},
		{"trailing data", "{} {}"},
		{"bad credHelpers", `{"credHelpers": 3}`},
		{"program with a path", `{"credsStore": "../evil"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(t.TempDir(), "config.json"), tt.content)
			if _, err := Save(t.Context(), path, "ghcr.io", Credential{Username: "u", Password: "p"}); err == nil {
				t.Fatal("Save succeeded")
			}
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Errorf("file changed to %q", data)
			}
		})
	}
}

func TestSaveFollowsSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := t.TempDir()
	real := writeFile(t, filepath.Join(dir, "real", "config.json"), `{"auths": {}}`)
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Save(t.Context(), link, "ghcr.io", Credential{Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if data, _ := os.ReadFile(real); !strings.Contains(string(data), `"ghcr.io"`) {
		t.Errorf("target not written:\n%s", data)
	}
}

func TestSaveWithPrograms(t *testing.T) {
	src := buildFixtureProgram(t)
	bin := t.TempDir()
	installProgram(t, src, bin, "store", nil)
	installProgram(t, src, bin, "hub", nil)
	t.Setenv("PATH", bin)
	path := writeFile(t, filepath.Join(t.TempDir(), "config.json"),
		`{"credsStore": "store", "credHelpers": {"docker.io": "hub"}, "auths": {"ghcr.io": {}}}`)

	for _, tc := range []struct{ host, program, key string }{
		{"ghcr.io", "store", "ghcr.io"},
		{"localhost:5000", "store", "localhost:5000"},
		{"registry-1.docker.io", "hub", "https://index.docker.io/v1/"},
	} {
		loc, err := Save(t.Context(), path, tc.host, Credential{Username: "u", Password: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		if loc.Helper != "docker-credential-"+tc.program || loc.Key != tc.key {
			t.Errorf("Save(%s) = %+v", tc.host, loc)
		}
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), "secret") || strings.Contains(string(data), "dTpzZWNyZXQ=") {
			t.Fatalf("the secret reached the file:\n%s", data)
		}
		if !strings.Contains(string(data), `"`+tc.key+`": {}`) {
			t.Errorf("no empty auths entry for %s:\n%s", tc.key, data)
		}
		k := NewKeychain(&KeychainOptions{DockerConfig: path, AuthFile: filepath.Join(bin, "none.json"), LookupEnv: envMap(nil)})
		if got, err := k.Credential(t.Context(), tc.host); err != nil || got.Password != "secret" {
			t.Errorf("Credential(%s) after Save = %+v, %v", tc.host, got, err)
		}
		if _, erased, err := Erase(t.Context(), path, tc.host); err != nil || !erased {
			t.Errorf("Erase(%s) = %v, %v", tc.host, erased, err)
		}
		if _, erased, err := Erase(t.Context(), path, tc.host); err != nil || erased {
			t.Errorf("second Erase(%s) = %v, %v", tc.host, erased, err)
		}
	}
	ops := slices.DeleteFunc(askedOf(t, bin, "store"), func(s string) bool {
		return !strings.Contains(s, ":") || strings.HasPrefix(s, "ghcr.io") || strings.HasPrefix(s, "localhost")
	})
	want := []string{"store:ghcr.io", "erase:ghcr.io", "erase:ghcr.io", "store:localhost:5000", "erase:localhost:5000", "erase:localhost:5000"}
	if !slices.Equal(ops, want) {
		t.Errorf("docker-credential-store ran %q, want %q", ops, want)
	}

	// A program that is not installed: an error, and nothing in plain text.
	t.Setenv("PATH", t.TempDir())
	if _, err := Save(t.Context(), path, "ghcr.io", Credential{Username: "u", Password: "secret"}); err == nil {
		t.Error("Save with a missing program succeeded")
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "auth\"") {
		t.Errorf("fell back to plain text:\n%s", data)
	}
}

func TestDockerConfigPath(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DOCKER_CONFIG": "/etc/dc", "HOME": "/home/a"}, filepath.Join("/etc/dc", "config.json")},
		{map[string]string{"HOME": "/home/a"}, filepath.Join("/home/a", ".docker", "config.json")},
		{nil, ""},
	} {
		if runtime.GOOS != "linux" && tc.env["DOCKER_CONFIG"] == "" {
			continue
		}
		if got := DockerConfigPath(envMap(tc.env)); got != tc.want {
			t.Errorf("DockerConfigPath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
