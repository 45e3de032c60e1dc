package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/docker/docker-credential-helpers/client"
	dch "github.com/docker/docker-credential-helpers/credentials"
)

// Keychain is a [Store] reading Docker's and podman's credential files and
// the docker-credential-<name> programs they name.
//
// Sources are consulted in this order, the first one holding a credential for the host
// winning:
//
//  0. $DOCKER_AUTH_CONFIG, a JSON document {"auths": {"<host>": {"auth": "<base64>"}}}
//     (only auths entries with auth; anything else in it is an error);
//  1. the containers auth.json: [KeychainOptions.AuthFile], else $REGISTRY_AUTH_FILE,
//     else ${XDG_RUNTIME_DIR}/containers/auth.json (on Linux without XDG_RUNTIME_DIR,
//     /run/containers/<uid>/auth.json) and then
//     ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json;
//  2. the docker config.json: [KeychainOptions.DockerConfig], else
//     $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
//
// Within one file the sources are, in order: the credHelpers program named for the
// host, the credsStore program, then the auths entry. A source that has nothing for
// the host (an empty {} auths entry, a program answering "credentials not found")
// passes the lookup on to the next one. A program that is missing from PATH, fails or
// answers garbage does not fail the lookup either: the reason goes to
// [KeychainOptions.Logf] and the lookup continues, ending anonymous when nothing else
// answers.
//
// Entries are matched by host. Docker Hub's names ("docker.io", "index.docker.io",
// "registry-1.docker.io") are one host, stored under "https://index.docker.io/v1/";
// legacy keys carrying a scheme or path ("https://host/v1/") match by their host name.
// The Docker CLI's bookkeeping keys "https://index.docker.io/v1/access-token" and
// ".../refresh-token" are ignored. Podman's namespaced keys ("host/ns/repo") hold a
// credential for part of a registry only; since a lookup knows the host and not the
// repository, a host-only key always wins over them, and when the host has no key of
// its own the least specific namespaced key (the shortest) is used.
//
// Two usernames are conventions rather than names: "<token>" (written by the Docker
// CLI through credential programs) and "00000000-0000-0000-0000-000000000000" (Azure
// Container Registry's null GUID, which tells ACR the password is a refresh token).
// With either, the password becomes [Credential.RefreshToken] and the username is
// dropped.
//
// Files are read on first use and kept; a file whose modification time or size
// changes is read again. Credential programs are run on every lookup. A Keychain is
// safe for concurrent use; its zero value reads the default locations.
type Keychain struct {
	opts KeychainOptions

	initOnce sync.Once
	env      *configFile // from DOCKER_AUTH_CONFIG; nil when unset
	envErr   error       // DOCKER_AUTH_CONFIG does not parse
	files    []string    // in lookup order, without duplicates

	mu    sync.Mutex
	cache map[string]*cachedConfig
}

// KeychainOptions configures a [Keychain]. The zero value reads the default locations.
type KeychainOptions struct {
	// DockerConfig is the path of a docker config.json. Default:
	// $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set, else ~/.docker/config.json.
	DockerConfig string
	// AuthFile is the path of a podman (containers) auth.json, consulted before the
	// docker config. Default: $REGISTRY_AUTH_FILE when set; else
	// ${XDG_RUNTIME_DIR}/containers/auth.json (on Linux without XDG_RUNTIME_DIR,
	// /run/containers/<uid>/auth.json), then
	// ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json.
	AuthFile string
	// Logf receives the reasons a lookup degraded (a credential program missing or
	// failing, an auths entry that points at no credential store). Messages name the
	// host, the file or the program, never a secret. Default: discarded.
	Logf func(format string, args ...any)
	// LookupEnv reads the environment variables above (and HOME). Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// NewKeychain returns a Keychain configured by opts; nil opts means the defaults. It
// reads the environment only: files are read lazily on the first lookup.
func NewKeychain(opts *KeychainOptions) *Keychain {
	k := &Keychain{}
	if opts != nil {
		k.opts = *opts
	}
	return k
}

// Credential returns the credential stored for host, the API host of a registry
// ("registry-1.docker.io" for Docker Hub, else "host[:port]"), or the zero Credential
// when none is stored. It fails on a file that cannot be read or parsed and on an
// auths entry that cannot be decoded, naming the file; it never fails because a
// credential program misbehaves. It stats each file, reads the changed ones, and may
// run one or two credential programs.
func (k *Keychain) Credential(ctx context.Context, host string) (Credential, error) {
	if err := ctx.Err(); err != nil {
		return Credential{}, err
	}
	t := newCredentialTarget(host)
	if t.canon == "" {
		return Credential{}, nil
	}
	k.initOnce.Do(k.init)
	if k.envErr != nil {
		return Credential{}, k.envErr
	}
	if k.env != nil {
		cred, err := k.fromConfig(ctx, k.env, t)
		if err != nil || !cred.IsZero() {
			return cred, err
		}
	}
	for _, path := range k.files {
		cf, err := k.load(path)
		if err != nil {
			return Credential{}, err
		}
		if cf == nil {
			continue
		}
		cred, err := k.fromConfig(ctx, cf, t)
		if err != nil || !cred.IsZero() {
			return cred, err
		}
	}
	return Credential{}, nil
}

// acrNullGUID is the username Azure Container Registry pairs with a refresh token.
const acrNullGUID = "00000000-0000-0000-0000-000000000000"

// dockerHubConfigKey is the key Docker writes Docker Hub's credential under, and the
// server URL it hands credential programs.
const dockerHubConfigKey = "https://index.docker.io/v1/"

// maxConfigSize bounds how much of a credential file is read.
const maxConfigSize = 16 << 20

// splitKey splits a credential file key into its host, its path ("" or
// starting with "/") and whether it carried an http(s) scheme.
func splitKey(key string) (host, path string, scheme bool) {
	for _, p := range []string{"https://", "http://"} {
		if len(key) >= len(p) && strings.EqualFold(key[:len(p)], p) {
			key, scheme = key[len(p):], true
			break
		}
	}
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i:], scheme
	}
	return key, "", scheme
}

// credentialTarget is the host a lookup is for.
type credentialTarget struct {
	host      string // as given, without scheme or path
	canon     string // CanonicalHost(host)
	serverURL string // what a credential program is asked for
	hub       bool
}

func newCredentialTarget(host string) credentialTarget {
	h, _, _ := splitKey(host)
	t := credentialTarget{host: h, canon: CanonicalHost(h), serverURL: h}
	if t.canon == hubCanonical {
		t.hub, t.serverURL = true, dockerHubConfigKey
	}
	return t
}

// keyRank orders the keys of a credential file that match t: lower ranks first, ok
// false for a key that does not match. Ranks: 0 the key Docker itself would write;
// 1 another spelling of the bare host ("docker.io", "http://host"); 2 a legacy key
// with a scheme and a path ("https://host/v1/"); 3 and up, podman's namespaced keys,
// the shorter the better.
func (t credentialTarget) keyRank(key string) (rank int, ok bool) {
	h, path, scheme := splitKey(key)
	if CanonicalHost(h) != t.canon {
		return 0, false
	}
	switch {
	case t.hub && key == dockerHubConfigKey, !t.hub && strings.EqualFold(key, t.host):
		return 0, true
	case path == "" || path == "/":
		return 1, true
	case scheme:
		if t.hub && (strings.HasPrefix(path, "/v1/access-token") || strings.HasPrefix(path, "/v1/refresh-token")) {
			return 0, false
		}
		return 2, true
	default:
		return 3 + len(path), true
	}
}

// matchingKeys returns the keys of m that match t, best first.
func matchingKeys[V any](t credentialTarget, m map[string]V) []string {
	type ranked struct {
		key  string
		rank int
	}
	var rs []ranked
	for key := range m {
		if r, ok := t.keyRank(key); ok {
			rs = append(rs, ranked{key, r})
		}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.key, b.key)
	})
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.key
	}
	return keys
}

// configFile is the part of a docker config.json or containers auth.json that holds
// credentials. Unknown keys are ignored.
type configFile struct {
	path        string
	Auths       map[string]*authEntry `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

// authEntry is one value of "auths".
type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func (e *authEntry) empty() bool {
	return e == nil || *e == authEntry{}
}

// parseConfigFile parses the JSON of a credential file; path only names it in errors.
func parseConfigFile(path string, data []byte) (*configFile, error) {
	cf := &configFile{path: path}
	if len(bytes.TrimSpace(data)) == 0 {
		return cf, nil
	}
	if err := json.Unmarshal(data, cf); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cf, nil
}

// parseAuthConfigEnv parses the value of DOCKER_AUTH_CONFIG as the docker CLI does:
// only {"auths": {...}} with an auth in each entry; unknown fields are errors. The
// error never quotes the value.
func parseAuthConfigEnv(v string) (*configFile, error) {
	var doc struct {
		Auths map[string]*struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse DOCKER_AUTH_CONFIG: %w", err)
	}
	cf := &configFile{path: "DOCKER_AUTH_CONFIG", Auths: map[string]*authEntry{}}
	for key, e := range doc.Auths {
		if e == nil || e.Auth == "" {
			return nil, fmt.Errorf("parse DOCKER_AUTH_CONFIG: the entry for %s has no auth", key)
		}
		cf.Auths[key] = &authEntry{Auth: e.Auth}
	}
	return cf, nil
}

// credential decodes the auths entry stored under key.
func (e *authEntry) credential(path, key string) (Credential, error) {
	c := Credential{
		Username:     e.Username,
		Password:     e.Password,
		RefreshToken: e.IdentityToken,
		AccessToken:  e.RegistryToken,
	}
	if e.Auth != "" {
		user, pass, err := decodeAuth(e.Auth)
		if err != nil {
			return Credential{}, fmt.Errorf("invalid auth in %s for %s: %s", path, key, err)
		}
		c.Username, c.Password = user, pass
	}
	return normalizeCredential(c), nil
}

// decodeAuth decodes an "auth" value, base64 of "username:password". The error never
// quotes the value.
func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return "", "", errors.New("not base64")
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New("no colon between username and password")
	}
	if user == "" {
		return "", "", errors.New("empty username")
	}
	return user, strings.Trim(pass, "\x00"), nil
}

// normalizeCredential turns the "<token>" and ACR null-GUID username conventions into
// a refresh token.
func normalizeCredential(c Credential) Credential {
	if c.Username == "<token>" || c.Username == acrNullGUID {
		if c.RefreshToken == "" {
			c.RefreshToken = c.Password
		}
		c.Username, c.Password = "", ""
	}
	return c
}

// fromConfig looks t up in one file: credHelpers, credsStore, then auths.
func (k *Keychain) fromConfig(ctx context.Context, cf *configFile, t credentialTarget) (Credential, error) {
	asked := false // whether a credential program was consulted
	for _, key := range matchingKeys(t, cf.CredHelpers) {
		if name := cf.CredHelpers[key]; name != "" {
			asked = true
			cred, err := k.fromProgram(ctx, cf, name, t)
			if err != nil || !cred.IsZero() {
				return cred, err
			}
			break
		}
	}
	if cf.CredsStore != "" {
		asked = true
		cred, err := k.fromProgram(ctx, cf, cf.CredsStore, t)
		if err != nil || !cred.IsZero() {
			return cred, err
		}
	}
	var marker string
	for _, key := range matchingKeys(t, cf.Auths) {
		e := cf.Auths[key]
		if e.empty() {
			if marker == "" {
				marker = key
			}
			continue
		}
		cred, err := e.credential(cf.path, key)
		if err != nil || !cred.IsZero() {
			return cred, err
		}
	}
	if marker != "" && !asked {
		k.logf("credentials for %s: %s has an empty auths entry %q and names no credential store", t.host, cf.path, marker)
	}
	return Credential{}, nil
}

// fromProgram asks docker-credential-<name> for t. A missing or failing program is
// logged and answers the zero Credential; only the end of ctx is an error.
func (k *Keychain) fromProgram(ctx context.Context, cf *configFile, name string, t credentialTarget) (Credential, error) {
	prog := "docker-credential-" + name
	if strings.ContainsAny(name, `/\`) || strings.TrimSpace(name) != name {
		k.logf("credentials for %s: %s names an invalid credential program %q", t.host, cf.path, prog)
		return Credential{}, nil
	}
	pf, last := programFunc(ctx, prog)
	creds, err := client.Get(pf, t.serverURL)
	run := *last
	if err != nil {
		if dch.IsErrCredentialsNotFound(err) {
			return Credential{}, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return Credential{}, cerr
		}
		k.logf("credentials for %s: %s (from %s) failed, continuing without it: %s", t.host, prog, cf.path, run.reason(err))
		return Credential{}, nil
	}
	return normalizeCredential(Credential{Username: creds.Username, Password: creds.Secret}), nil
}

// programFunc runs prog under ctx for the client package; *last is the latest run.
func programFunc(ctx context.Context, prog string) (client.ProgramFunc, **programRun) {
	last := new(*programRun)
	return func(args ...string) client.Program {
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.WaitDelay = 2 * time.Second
		*last = &programRun{cmd: cmd}
		return *last
	}, last
}

// programRun is one run of a credential program, keeping what the client package's
// error drops: the exit status, stdout and stderr.
type programRun struct {
	cmd *exec.Cmd
	out []byte
	err error
}

func (p *programRun) Input(in io.Reader) { p.cmd.Stdin = in }

func (p *programRun) Output() ([]byte, error) {
	p.out, p.err = p.cmd.Output()
	return p.out, p.err
}

// reason describes why a run failed, for a log line. getErr is the client package's
// error, used when the program ran fine but its answer was unreadable.
func (p *programRun) reason(getErr error) string {
	if p == nil || p.err == nil {
		return "unreadable answer: " + oneLineBounded(getErr.Error())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		msg := oneLineBounded(string(p.out))
		if msg == "" {
			msg = oneLineBounded(string(ee.Stderr))
		}
		r := "exit status " + strconv.Itoa(ee.ExitCode())
		if msg != "" {
			r += ": " + msg
		}
		return r
	}
	return oneLineBounded(p.err.Error())
}

// oneLineBounded folds s onto one line of at most 200 bytes, for log messages.
func oneLineBounded(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const limit = 200
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func (k *Keychain) logf(format string, args ...any) {
	if k.opts.Logf != nil {
		k.opts.Logf(format, args...)
	}
}

// init computes the file list from the options and the environment.
func (k *Keychain) init() {
	env := k.opts.LookupEnv
	if env == nil {
		env = os.LookupEnv
	}
	get := func(name string) string {
		v, _ := env(name)
		return v
	}
	if v := get("DOCKER_AUTH_CONFIG"); v != "" {
		k.env, k.envErr = parseAuthConfigEnv(v)
	}
	home := homeDir(get)

	var files []string
	switch {
	case k.opts.AuthFile != "":
		files = append(files, k.opts.AuthFile)
	case get("REGISTRY_AUTH_FILE") != "":
		files = append(files, get("REGISTRY_AUTH_FILE"))
	default:
		if d := get("XDG_RUNTIME_DIR"); d != "" {
			files = append(files, filepath.Join(d, "containers", "auth.json"))
		} else if runtime.GOOS == "linux" {
			files = append(files, filepath.Join("/run/containers", strconv.Itoa(os.Getuid()), "auth.json"))
		}
		if d := get("XDG_CONFIG_HOME"); d != "" {
			files = append(files, filepath.Join(d, "containers", "auth.json"))
		} else if home != "" {
			files = append(files, filepath.Join(home, ".config", "containers", "auth.json"))
		}
	}
	if k.opts.DockerConfig != "" {
		files = append(files, k.opts.DockerConfig)
	} else if p := dockerConfigPath(get); p != "" {
		files = append(files, p)
	}

	seen := map[string]bool{}
	for _, f := range files {
		c := filepath.Clean(f)
		if !seen[c] {
			seen[c] = true
			k.files = append(k.files, c)
		}
	}
}

// homeDir is the user's home directory as the environment read by get names it.
func homeDir(get func(string) string) string {
	switch runtime.GOOS {
	case "windows":
		return get("USERPROFILE")
	case "plan9":
		return get("home")
	}
	return get("HOME")
}

// dockerConfigPath is $DOCKER_CONFIG/config.json, else ~/.docker/config.json, as
// the environment read by get says; "" when neither is known.
func dockerConfigPath(get func(string) string) string {
	if d := get("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if home := homeDir(get); home != "" {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}

// cachedConfig is a parsed file and the stat it was read at.
type cachedConfig struct {
	modTime time.Time
	size    int64
	cf      *configFile
}

// load returns the parsed file at path, nil when it does not exist. It reads the file
// again when its modification time or size changed since the last read.
func (k *Keychain) load(path string) (*configFile, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if c := k.cache[path]; c != nil && c.modTime.Equal(fi.ModTime()) && c.size == fi.Size() {
		return c.cf, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read credentials: %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("read credentials: %s is larger than %d bytes", path, maxConfigSize)
	}
	cf, err := parseConfigFile(path, data)
	if err != nil {
		return nil, err
	}
	if k.cache == nil {
		k.cache = map[string]*cachedConfig{}
	}
	k.cache[path] = &cachedConfig{modTime: fi.ModTime(), size: fi.Size(), cf: cf}
	return cf, nil
}
