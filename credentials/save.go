package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/docker-credential-helpers/client"
	dch "github.com/docker/docker-credential-helpers/credentials"
)

// DockerConfigPath returns the docker config.json that docker login writes:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json; "" when the environment
// names no home directory. lookupEnv reads the environment; nil means os.LookupEnv.
func DockerConfigPath(lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return dockerConfigPath(func(name string) string {
		v, _ := lookupEnv(name)
		return v
	})
}

// Location says where [Save] stored a credential, or where [Erase] removed one.
type Location struct {
	// Key is the server key: "https://index.docker.io/v1/" for Docker Hub, else
	// host[:port].
	Key string
	// Helper is the credential program ("docker-credential-pass"); "" when the
	// credential is in the auths of File.
	Helper string
	// File is the docker config.json.
	File string
}

// String says where, for a message: "docker-credential-pass" or the file's path.
func (l Location) String() string {
	if l.Helper != "" {
		return l.Helper
	}
	return l.File
}

// Save stores cred for host in the docker config.json at configPath the way docker
// login does: through the credential program named by credHelpers for the host,
// else by credsStore, else base64-encoded in "auths" (a password stored in plain
// text: [Location.Helper] is "" then). Docker Hub's names are stored under
// "https://index.docker.io/v1/", every other host under host[:port]. A refresh token
// is stored as docker stores an identity token.
//
// The file is replaced atomically (a temporary file in the same directory, synced,
// then renamed; a symbolic link is followed) with mode 0600, or the existing
// file's mode without group and other access; its directory is created 0700. Every
// other key of the file, and every other auths entry, keeps its bytes. With a
// credential program the file is only written to add the empty auths entry docker
// keeps for the key. A program that is missing or fails is an error: Save never
// falls back to plain text. It reads and writes one file and may run one program.
func Save(ctx context.Context, configPath, host string, cred Credential) (Location, error) {
	t := newCredentialTarget(host)
	if t.canon == "" {
		return Location{}, errors.New("save credentials: empty registry host")
	}
	if cred.Username == "" && cred.RefreshToken == "" {
		return Location{}, errors.New("save credentials: no username")
	}
	doc, err := readRawConfig(configPath)
	if err != nil {
		return Location{}, err
	}
	loc := Location{Key: t.serverURL, File: configPath}
	helper, err := doc.helperFor(t)
	if err != nil {
		return loc, err
	}
	if helper != "" {
		loc.Helper = "docker-credential-" + helper
		user, secret := cred.Username, cred.Password
		if cred.RefreshToken != "" {
			user, secret = "<token>", cred.RefreshToken
		}
		pf, last := programFunc(ctx, loc.Helper)
		err := client.Store(pf, &dch.Credentials{ServerURL: t.serverURL, Username: user, Secret: secret})
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return loc, cerr
			}
			return loc, fmt.Errorf("store credentials for %s with %s: %s", t.host, loc.Helper, (*last).reason(err))
		}
		auths := doc.auths()
		if _, ok := auths.get(t.serverURL); ok {
			return loc, nil
		}
		auths.set(t.serverURL, json.RawMessage("{}"))
		doc.setAuths(auths)
		return loc, doc.write()
	}
	entry := struct {
		Auth          string `json:"auth,omitempty"`
		IdentityToken string `json:"identitytoken,omitempty"`
	}{IdentityToken: cred.RefreshToken}
	if cred.Username != "" {
		entry.Auth = base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
	}
	raw, err := json.MarshalIndent(entry, "\t\t", "\t")
	if err != nil {
		return loc, err
	}
	auths := doc.auths()
	// Other spellings of the same host would shadow or contradict the new entry.
	for _, key := range auths.keys {
		if r, ok := t.keyRank(key); ok && r < 3 && key != t.serverURL {
			auths.remove(key)
		}
	}
	auths.set(t.serverURL, raw)
	doc.setAuths(auths)
	return loc, doc.write()
}

// Erase removes the credential stored for host from the docker config.json at
// configPath, as docker logout does: from the credential program that [Save] would
// use (credHelpers, else credsStore), and every auths entry of the host (its key in
// any spelling: "host", "https://host", a legacy "https://host/v1/"). It reports
// whether anything was removed; nothing stored is not an error. The file is
// rewritten, as [Save] writes it, only when an entry was removed.
func Erase(ctx context.Context, configPath, host string) (Location, bool, error) {
	t := newCredentialTarget(host)
	if t.canon == "" {
		return Location{}, false, errors.New("erase credentials: empty registry host")
	}
	doc, err := readRawConfig(configPath)
	if err != nil {
		return Location{}, false, err
	}
	loc := Location{Key: t.serverURL, File: configPath}
	helper, err := doc.helperFor(t)
	if err != nil {
		return loc, false, err
	}
	erased := false
	if helper != "" {
		loc.Helper = "docker-credential-" + helper
		pf, last := programFunc(ctx, loc.Helper)
		switch err := client.Erase(pf, t.serverURL); {
		case err == nil:
			erased = true
		case *last != nil && dch.IsErrCredentialsNotFoundMessage(string((*last).out)):
			// Nothing stored; the client package's error does not wrap the sentinel.
		default:
			if cerr := ctx.Err(); cerr != nil {
				return loc, false, cerr
			}
			return loc, false, fmt.Errorf("erase credentials for %s with %s: %s", t.host, loc.Helper, (*last).reason(err))
		}
	}
	auths := doc.auths()
	removed := false
	for _, key := range auths.keys {
		if r, ok := t.keyRank(key); ok && r < 3 {
			if raw, _ := auths.get(key); !isEmptyObject(raw) {
				erased = true
			}
			auths.remove(key)
			removed = true
		}
	}
	if !removed {
		return loc, erased, nil
	}
	doc.setAuths(auths)
	return loc, erased, doc.write()
}

// rawConfig is a docker config.json as read, every value kept as its bytes.
type rawConfig struct {
	path string
	obj  rawObject
}

// readRawConfig reads the config at path; a missing or empty file is an empty one.
func readRawConfig(path string) (*rawConfig, error) {
	if path == "" {
		return nil, errors.New("no docker config path: set DOCKER_CONFIG or HOME")
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("read credentials: %s is larger than %d bytes", path, maxConfigSize)
	}
	obj, err := parseRawObject(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &rawConfig{path: path, obj: obj}, nil
}

// helperFor returns the credential program name (without its docker-credential-
// prefix) that stores t's credential: credHelpers for its key, else credsStore; ""
// for the file itself.
func (c *rawConfig) helperFor(t credentialTarget) (string, error) {
	var cf configFile
	for _, key := range []string{"credHelpers", "credsStore"} {
		if raw, ok := c.obj.get(key); ok {
			doc := append(append([]byte(`{"`+key+`":`), raw...), '}')
			if err := json.Unmarshal(doc, &cf); err != nil {
				return "", fmt.Errorf("parse %s: %s: %w", c.path, key, err)
			}
		}
	}
	name := cf.CredsStore
	if keys := matchingKeys(t, cf.CredHelpers); len(keys) > 0 && cf.CredHelpers[keys[0]] != "" {
		name = cf.CredHelpers[keys[0]]
	}
	if strings.ContainsAny(name, `/\`) || strings.TrimSpace(name) != name {
		return "", fmt.Errorf("%s names an invalid credential program %q", c.path, "docker-credential-"+name)
	}
	return name, nil
}

// auths returns the "auths" object (empty when there is none or it is null).
func (c *rawConfig) auths() rawObject {
	raw, ok := c.obj.get("auths")
	if !ok {
		return rawObject{}
	}
	o, err := parseRawObject(raw)
	if err != nil {
		return rawObject{} // not an object: replaced, as docker would
	}
	return o
}

func (c *rawConfig) setAuths(auths rawObject) {
	c.obj.set("auths", auths.marshal("\t"))
}

// write replaces the file atomically with the current content.
func (c *rawConfig) write() error {
	return writeAtomic(c.path, c.obj.marshal(""))
}

// rawObject is a JSON object whose members keep their order and their bytes.
type rawObject struct {
	keys []string
	vals map[string]json.RawMessage
}

// parseRawObject parses a JSON object; empty input is an empty object.
func parseRawObject(data []byte) (rawObject, error) {
	o := rawObject{vals: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return o, err
	} else if tok != json.Delim('{') {
		return o, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return o, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return o, err
		}
		o.set(key, raw)
	}
	if _, err := dec.Token(); err != nil {
		return o, err
	}
	if _, err := dec.Token(); err == nil {
		return o, errors.New("data after the JSON object")
	}
	return o, nil
}

func (o *rawObject) get(key string) (json.RawMessage, bool) {
	v, ok := o.vals[key]
	return v, ok
}

// set replaces key's value in place, or appends it.
func (o *rawObject) set(key string, v json.RawMessage) {
	if o.vals == nil {
		o.vals = map[string]json.RawMessage{}
	}
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

func (o *rawObject) remove(key string) {
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			return
		}
	}
}

// marshal prints the object with one member a line, indented by indent plus a tab,
// each value as its bytes.
func (o rawObject) marshal(indent string) []byte {
	if len(o.keys) == 0 {
		return []byte("{}")
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, k := range o.keys {
		b.WriteString(indent + "\t")
		b.WriteString(strconv.Quote(k))
		b.WriteString(": ")
		b.Write(o.vals[k])
		if i < len(o.keys)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + "}")
	if indent == "" {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// isEmptyObject reports whether raw is {} (docker's marker for a key whose
// credential a program holds).
func isEmptyObject(raw json.RawMessage) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil && len(m) == 0
}

// writeAtomic replaces the file at path (following a symbolic link, even a dangling
// one) with data: a temporary file in the same directory, synced, then renamed.
func writeAtomic(path string, data []byte) (err error) {
	target := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			target = resolved
		} else if link, lerr := os.Readlink(path); lerr == nil {
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(path), link)
			}
			target = link
		}
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm() &^ 0o077
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(target)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("save credentials to %s: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save credentials to %s: %w", target, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save credentials to %s: %w", target, err)
	}
	if err := os.Rename(f.Name(), target); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}
