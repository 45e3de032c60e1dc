package hosts

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	// BurntSushi/toml is the TOML parser of Go's ecosystem that is still maintained
	// (releases through 2025, TOML 1.1), dependency-free, and it reports the order of
	// keys (MetaData.Keys), which hosts.toml needs: mirrors are tried in file order.
	"github.com/BurntSushi/toml"
)

// hostFields are the fields a [host."URL"] table and the file's top level share.
type hostFields struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`     // string or array of strings
	Client       any            `toml:"client"` // string, [cert, key], or an array of either
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"` // string or array of strings
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// hostsFile is hosts.toml: the top level configures the server, [host."URL"] the
// mirrors tried before it.
type hostsFile struct {
	Server string `toml:"server"`
	hostFields
	Host map[string]hostFields `toml:"host"`
}

// entry is one endpoint as a file describes it, paths resolved, nothing read yet.
type entry struct {
	url          *url.URL // nil for a server the file does not name
	capabilities Capability
	caFiles      []string
	clientPairs  [][2]string // cert, key; an empty key means the cert file holds both
	skipVerify   bool
	header       http.Header
	overridePath bool
	dialTimeout  time.Duration
}

// parseFile parses the hosts.toml data of directory dir: the mirrors in file order,
// then the server. It reads no other file. Every error is one line.
func parseFile(data []byte, dir string) ([]entry, error) {
	var f hostsFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, oneLine(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("unknown key %q", und[0].String())
	}
	var entries []entry
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) != 2 || k[0] != "host" || seen[k[1]] {
			continue
		}
		seen[k[1]] = true
		if strings.TrimSpace(k[1]) == "" {
			return nil, fmt.Errorf("[host.%q]: empty URL", k[1])
		}
		e, err := parseEntry(k[1], f.Host[k[1]], dir)
		if err != nil {
			return nil, fmt.Errorf("[host.%q]: %w", k[1], err)
		}
		entries = append(entries, e)
	}
	server, err := parseEntry(f.Server, f.hostFields, dir)
	if err != nil {
		if f.Server != "" {
			return nil, fmt.Errorf("server %q: %w", f.Server, err)
		}
		return nil, err
	}
	return append(entries, server), nil
}

// parseEntry parses one endpoint's fields; raw is its URL as written ("" for an
// unnamed server).
func parseEntry(raw string, h hostFields, dir string) (entry, error) {
	e := entry{overridePath: h.OverridePath}
	if raw != "" {
		u, err := parseURL(raw, h.OverridePath)
		if err != nil {
			return entry{}, err
		}
		e.url = u
	}
	if h.Capabilities == nil {
		e.capabilities = CapabilityPull | CapabilityResolve | CapabilityPush
	}
	for _, c := range h.Capabilities {
		c2, ok := capabilityNames[strings.ToLower(c)]
		if !ok {
			return entry{}, fmt.Errorf("capabilities: unknown capability %q (want pull, resolve or push)", c)
		}
		e.capabilities |= c2
	}
	var err error
	if e.caFiles, err = stringList("ca", h.CA); err != nil {
		return entry{}, err
	}
	for i, f := range e.caFiles {
		e.caFiles[i] = absPath(f, dir)
	}
	if e.clientPairs, err = clientPairs(h.Client); err != nil {
		return entry{}, err
	}
	for i, p := range e.clientPairs {
		e.clientPairs[i][0] = absPath(p[0], dir)
		if p[1] != "" {
			e.clientPairs[i][1] = absPath(p[1], dir)
		}
	}
	if h.SkipVerify != nil {
		e.skipVerify = *h.SkipVerify
	}
	if len(h.Header) > 0 {
		e.header = http.Header{}
		for k, v := range h.Header {
			if !validHeaderName(k) {
				return entry{}, fmt.Errorf("header: invalid name %q", k)
			}
			vals, err := stringList("header "+k, v)
			if err != nil {
				return entry{}, err
			}
			for _, val := range vals {
				if strings.ContainsAny(val, "\r\n\x00") {
					return entry{}, fmt.Errorf("header %s: value holds a line break", k)
				}
				e.header.Add(k, val)
			}
		}
	}
	if h.DialTimeout != "" {
		d, err := time.ParseDuration(h.DialTimeout)
		if err != nil || d <= 0 {
			return entry{}, fmt.Errorf("dial_timeout %q: want a positive duration like \"200ms\"", h.DialTimeout)
		}
		e.dialTimeout = d
	}
	return e, nil
}

// parseURL reads an endpoint URL as containerd does: https:// when no scheme is given;
// the path is the API root, with /v2 appended unless it ends so or overridePath.
func parseURL(raw string, overridePath bool) (*url.URL, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", unwrapURLError(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("no host in %q", raw)
	case u.User != nil:
		return nil, fmt.Errorf("credentials in the URL are not supported: use the keychain")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("a query or fragment in %q is not supported", raw)
	}
	u.Host = strings.ToLower(u.Host)
	p := u.Path
	if p != "" {
		p = path.Clean(p)
		if p == "/" {
			p = ""
		}
	}
	if !overridePath && !strings.HasSuffix(p, "/v2") {
		p += "/v2"
	}
	u.Path, u.RawPath = p, ""
	return u, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// stringList reads a string or an array of strings.
func stringList(field string, v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("%s: want a string or a list of strings, found %s", field, tomlType(x))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want a string or a list of strings, found %s", field, tomlType(v))
}

// clientPairs reads client: "cert", ["cert", "key"], or a list of either.
func clientPairs(v any) ([][2]string, error) {
	const want = `want "cert", ["cert", "key"] or a list of those`
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return [][2]string{{v, ""}}, nil
	case []any:
		// A pair of strings is one certificate and its key, as containerd reads it only
		// inside a list; a bare ["cert", "key"] is read the same way for convenience.
		if len(v) == 2 {
			if a, ok := v[0].(string); ok {
				if b, ok := v[1].(string); ok && strings.HasSuffix(b, ".key") {
					return [][2]string{{a, b}}, nil
				}
			}
		}
		var out [][2]string
		for _, x := range v {
			switch x := x.(type) {
			case string:
				out = append(out, [2]string{x, ""})
			case []any:
				pair, err := stringList("client", x)
				if err != nil || len(pair) != 2 {
					return nil, fmt.Errorf("client: invalid pair %v: %s", x, want)
				}
				out = append(out, [2]string{pair[0], pair[1]})
			default:
				return nil, fmt.Errorf("client: found %s: %s", tomlType(x), want)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("client: found %s: %s", tomlType(v), want)
}

// tomlType names the TOML type of a decoded value, for errors.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// absPath resolves p against dir unless it is absolute.
func absPath(p, dir string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// oneLine flattens a parser error onto one line.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Errorf("%s", msg)
}
