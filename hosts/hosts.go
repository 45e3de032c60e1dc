// Package hosts reads the registry host configuration users already have: containerd's
// hosts directory (DIR/HOST[:PORT]/hosts.toml, as in /etc/containerd/certs.d) and
// Docker's certs.d layout (DIR/HOST:PORT/ca.crt, client.cert, client.key, as in
// /etc/docker/certs.d), which may share the same directories.
//
// For a registry host, a [Config] gives the ordered list of [Endpoint]s requests go to:
// the mirrors of hosts.toml in file order, then the registry's server. Each endpoint
// carries its URL (override_path honoured), its capabilities (pull, resolve, push), a
// *tls.Config (CAs added to the system pool, client certificates, skip_verify) and the
// headers to send.
//
// # Pull-through caches and P2P mirrors
//
// A fleet points pulls at a pull-through cache (Harbor, Artifactory, Nexus, a
// registry:2 proxy) or at a peer-to-peer mirror (Spegel, Dragonfly) by writing one file
// per upstream registry, e.g. /etc/containerd/certs.d/docker.io/hosts.toml:
//
//	server = "https://registry-1.docker.io"
//
//	[host."http://127.0.0.1:30020"]       # Spegel on the node, or Dragonfly's dfdaemon
//	  capabilities = ["pull", "resolve"]
//	  dial_timeout = "200ms"
//
//	[host."https://harbor.example.com/v2/dockerhub-proxy"]
//	  capabilities = ["pull", "resolve"]
//	  override_path = true                # the path is the API root: no /v2 appended
//	  ca = "harbor-ca.crt"                # relative to this directory
//
// Requests for pull (blobs, manifests by digest) and resolve (manifests by tag, tags)
// go to each mirror that has the capability, in order, and fall back to the server; a
// mirror is asked with ?ns=docker.io so that a proxy for several registries knows the
// upstream. Spegel and Dragonfly write exactly such files for containerd, and a client
// reading this package's endpoints works with them unchanged. A _default directory
// applies to every registry without a directory of its own (Dragonfly's
// proxy_all_registries).
//
// # Format
//
// The fields are containerd's (docs/hosts.md): server; capabilities; ca (a path or a
// list); client (a path to a PEM holding certificate and key, a [cert, key] pair, or
// a list of either); skip_verify; header (a string or a list per name); override_path;
// dial_timeout. Relative paths resolve against the host directory. A URL without a
// scheme is https; a path not ending in /v2 gets /v2 appended unless override_path.
// Without server the registry itself is the server (docker.io: registry-1.docker.io).
// A directory without hosts.toml is read as certs.d: every *.crt is a CA, every X.cert
// a client certificate with its key in X.key.
//
// Unlike containerd, which logs a broken hosts.toml and goes on without it, a file
// this package cannot read fully is an error naming the file and the problem:
// syntax, a wrong type, an unknown key or capability, a missing or unreadable
// certificate. An unknown key is refused rather than ignored, so that a typo
// (skip-verify) cannot silently weaken or bypass the configuration.
//
// For host:port the directories host_port_ (tried first, as containerd on Unix) and
// host:port are looked up in each root in turn, then _default; the first root holding
// any of them wins. Like containerd and Docker, a directory named after the host alone
// does not apply to other ports of that host.
package hosts

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Capability is a set of the operations an endpoint may serve.
type Capability uint8

// The capabilities of containerd's hosts.toml.
const (
	// CapabilityPull fetches content by digest: blobs, manifests by digest.
	CapabilityPull Capability = 1 << iota
	// CapabilityResolve maps names to content: manifests by tag, tag lists. A mirror
	// with it is trusted to say what a tag means.
	CapabilityResolve
	// CapabilityPush uploads.
	CapabilityPush
)

var capabilityNames = map[string]Capability{"pull": CapabilityPull, "resolve": CapabilityResolve, "push": CapabilityPush}

// Has reports whether c holds every capability of o.
func (c Capability) Has(o Capability) bool { return c&o == o }

// String lists the capabilities, "pull,resolve,push" for all of them.
func (c Capability) String() string {
	var names []string
	for _, n := range []struct {
		c    Capability
		name string
	}{{CapabilityPull, "pull"}, {CapabilityResolve, "resolve"}, {CapabilityPush, "push"}} {
		if c.Has(n.c) {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Endpoint is one place requests for a registry may go: a mirror or the server.
type Endpoint struct {
	// URL is the API root: scheme, host[:port] and the path that replaces /v2 in
	// request paths ("/v2" unless override_path gave another).
	URL *url.URL
	// Capabilities are the operations the endpoint serves.
	Capabilities Capability
	// TLS is the endpoint's TLS configuration (system CAs plus the configured ones,
	// client certificates, skip_verify), nil when none is configured.
	TLS *tls.Config
	// Header holds headers to send with every request to the endpoint; nil for none.
	Header http.Header
	// DialTimeout bounds connecting to the endpoint; zero for the client's default.
	DialTimeout time.Duration
	// Mirror is true for a [host."URL"] entry, false for the server.
	Mirror bool
	// Implicit is true when the server was not named (no hosts.toml, or one without
	// server): URL is then https://HOST/v2 and a client may apply its own scheme rules
	// (plain HTTP flags, loopback fallback) to it.
	Implicit bool
	// Source is the file or directory that configured the endpoint.
	Source string
}

// DefaultDirs are the hosts directories containerd 2.2+ reads when none is configured,
// in that order.
var DefaultDirs = []string{"/etc/containerd/certs.d", "/etc/docker/certs.d"}

// Config is a list of hosts directories, read lazily: each registry host's files are
// read and parsed on its first lookup, once, and the result is kept. It is safe for
// concurrent use.
type Config struct {
	roots []string

	mu    sync.Mutex
	cache map[string]result
}

type result struct {
	eps []Endpoint
	err error
}

// New returns the configuration of the hosts directories roots, in order of
// precedence. Each must be a directory; an empty list configures nothing. It reads
// no file yet.
func New(roots ...string) (*Config, error) {
	c := &Config{cache: map[string]result{}}
	for _, r := range roots {
		if r == "" {
			continue
		}
		fi, err := os.Stat(r)
		if err != nil {
			return nil, fmt.Errorf("hosts directory %s: %w", r, unwrapPathError(err))
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("hosts directory %s: not a directory", r)
		}
		c.roots = append(c.roots, r)
	}
	return c, nil
}

// Default returns the configuration of those of [DefaultDirs] that exist.
func Default() *Config {
	c := &Config{cache: map[string]result{}}
	for _, r := range DefaultDirs {
		if fi, err := os.Stat(r); err == nil && fi.IsDir() {
			c.roots = append(c.roots, r)
		}
	}
	return c
}

// Dirs returns the directories c reads, in order of precedence.
func (c *Config) Dirs() []string { return append([]string(nil), c.roots...) }

// Endpoints returns where requests for registry host ("docker.io", "ghcr.io",
// "localhost:5000"; Docker Hub's other names count as docker.io) go, in the order to
// try them: mirrors in file order, then the server. It returns nil and no error when
// no directory configures host: the caller uses its defaults. The first call for a
// host reads its directory (hosts.toml and the certificates it names); later calls
// cost a map lookup.
func (c *Config) Endpoints(host string) ([]Endpoint, error) {
	host = canonicalHost(host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cache[host]; ok {
		return r.eps, r.err
	}
	eps, err := c.load(host)
	c.cache[host] = result{eps, err}
	return eps, err
}

// canonicalHost lower-cases host and names Docker Hub "docker.io", as containerd does.
func canonicalHost(host string) string {
	host = strings.ToLower(host)
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

func (c *Config) load(host string) ([]Endpoint, error) {
	if host == "" || strings.ContainsAny(host, `/\`) || host == "." || host == ".." {
		return nil, fmt.Errorf("invalid registry host %q", host)
	}
	dir, err := c.hostDir(host)
	if err != nil || dir == "" {
		return nil, err
	}
	file := filepath.Join(dir, "hosts.toml")
	data, err := os.ReadFile(file)
	var entries []entry
	source := file
	switch {
	case err == nil:
		entries, err = parseFile(data, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		source = dir
		e, err := certFiles(dir)
		if err != nil {
			return nil, err
		}
		if e == nil {
			return nil, nil
		}
		entries = []entry{*e}
	default:
		return nil, fmt.Errorf("%s: %w", file, unwrapPathError(err))
	}
	eps := make([]Endpoint, 0, len(entries))
	for i, e := range entries {
		ep := Endpoint{
			URL:          e.url,
			Capabilities: e.capabilities,
			Header:       e.header,
			DialTimeout:  e.dialTimeout,
			Mirror:       i < len(entries)-1,
			Source:       source,
		}
		if ep.URL == nil {
			ep.Implicit = true
			ep.URL = &url.URL{Scheme: "https", Host: host, Path: "/v2"}
			if host == "docker.io" {
				ep.URL.Host = "registry-1.docker.io"
			}
			ep.Capabilities = CapabilityPull | CapabilityResolve | CapabilityPush
		}
		if ep.TLS, err = e.tlsConfig(); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// hostDir returns the directory configuring host, "" when none does.
func (c *Config) hostDir(host string) (string, error) {
	var names []string
	if h, port, err := net.SplitHostPort(host); err == nil && port != "" {
		names = append(names, h+"_"+port+"_")
	}
	names = append(names, host, "_default")
	for _, root := range c.roots {
		for _, n := range names {
			p := filepath.Join(root, n)
			fi, err := os.Stat(p)
			switch {
			case err == nil && fi.IsDir():
				return p, nil
			case err == nil, errors.Is(err, fs.ErrNotExist):
			default:
				return "", fmt.Errorf("hosts directory %s: %w", p, unwrapPathError(err))
			}
		}
	}
	return "", nil
}

// certFiles reads a directory without hosts.toml as Docker's certs.d: *.crt are CAs,
// X.cert is a client certificate with its key in X.key. It returns nil when the
// directory holds none of those.
func certFiles(dir string) (*entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("hosts directory %s: %w", dir, unwrapPathError(err))
	}
	e := &entry{capabilities: CapabilityPull | CapabilityResolve | CapabilityPush}
	names := map[string]bool{}
	for _, de := range des {
		names[de.Name()] = true
	}
	for _, de := range des {
		name := de.Name()
		switch filepath.Ext(name) {
		case ".crt":
			e.caFiles = append(e.caFiles, filepath.Join(dir, name))
		case ".cert":
			key := strings.TrimSuffix(name, ".cert") + ".key"
			pair := [2]string{filepath.Join(dir, name), ""}
			if names[key] {
				pair[1] = filepath.Join(dir, key)
			}
			e.clientPairs = append(e.clientPairs, pair)
		case ".key":
			if cert := strings.TrimSuffix(name, ".key") + ".cert"; !names[cert] {
				return nil, fmt.Errorf("%s: no client certificate %s for this key (CA certificates must end in .crt)", filepath.Join(dir, name), cert)
			}
		}
	}
	if len(e.caFiles) == 0 && len(e.clientPairs) == 0 {
		return nil, nil
	}
	return e, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
