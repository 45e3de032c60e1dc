package ocistream

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ocistream/ocistream/internal/text"
)

// Challenge is one authentication challenge of a WWW-Authenticate header (RFC 7235 §4.1),
// such as Docker Hub's
//
//	Bearer realm="https://auth.docker.io/token",service="registry.docker.io"
type Challenge struct {
	// Scheme is the authentication scheme in lower case: "bearer", "basic", "negotiate".
	Scheme string
	// Params holds the auth-params: names in lower case, values with the quoted-string
	// quotes and backslash escapes removed. A quoted empty value ("") is kept as "".
	// ParseChallenges always sets a non-nil map, empty when the challenge has none.
	Params map[string]string
	// Token68 is the token68 form of a challenge (RFC 7235 §2.1), as in
	// "Negotiate YIIBTAYG...==", verbatim. A challenge has a Token68 or Params, never both.
	Token68 string
}

// ParseChallenges parses the values of one or more WWW-Authenticate headers and returns
// all their challenges in order: the challenges of the first value, then those of the
// next. A value may hold several challenges separated by commas
// (`Bearer realm="a",service="b",Basic realm="c"`), and a scheme may stand alone
// (`Negotiate`, `BASIC`). Schemes and parameter names are lower-cased; quoted values are
// unescaped; a bare value (`realm=unquoted`, `realm=/`) is accepted; a token68 after a
// scheme is kept in [Challenge.Token68]. Empty list elements and optional whitespace are
// ignored, and a value with no challenges contributes none.
//
// Anything else is an error wrapping [ErrInvalidChallenge] that names the byte offset:
// a quoted scheme, an unterminated quoted string, a dangling backslash, two parameters
// without a comma between them, a parameter before any scheme, a duplicate parameter
// name within one challenge, or a control character (obsolete line folding included).
// ParseChallenges does no I/O; it runs in time linear in the input.
func ParseChallenges(headers ...string) ([]Challenge, error) {
	var out []Challenge
	for i, h := range headers {
		cs, err := parseChallengeValue(h)
		if err != nil {
			if len(headers) > 1 {
				return nil, fmt.Errorf("parse www-authenticate value %d: %w", i+1, err)
			}
			return nil, fmt.Errorf("parse www-authenticate: %w", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// challengeSyntaxError is the error of parseChallengeValue: what went wrong and where.
func challengeSyntaxError(off int, format string, args ...any) error {
	return fmt.Errorf("%s at offset %d: %w", fmt.Sprintf(format, args...), off, ErrInvalidChallenge)
}

// parseChallengeValue parses one header value. The grammar is
//
//	value     = #challenge
//	challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// A list element that is a token followed by "=" is a parameter of the current
// challenge; any other token starts a new challenge.
func parseChallengeValue(s string) ([]Challenge, error) {
	var (
		out []Challenge
		// cur is the index in out of the challenge parameters attach to, -1 before the first.
		cur = -1
		// takesParams reports whether the current challenge's scheme was followed by a space
		// and not by a token68, so that parameters may follow.
		takesParams bool
		// needParam reports that the current challenge's scheme and space were just read,
		// so the next element, unless a comma comes first, must be a parameter.
		needParam bool
	)
	pos := 0
	for {
		pos = skipOWS(s, pos)
		if pos >= len(s) {
			break
		}
		c := s[pos]
		if c == ',' {
			pos++
			needParam = false
			continue
		}
		if isCTL(c) {
			return nil, challengeSyntaxError(pos, "control character %q", c)
		}
		start := pos
		tok := readToken(s, pos)
		if tok == "" {
			if cur < 0 {
				return nil, challengeSyntaxError(pos, "unexpected %q where a scheme should be", c)
			}
			return nil, challengeSyntaxError(pos, "unexpected %q where a parameter or scheme should be", c)
		}
		pos += len(tok)
		if eq := skipOWS(s, pos); eq < len(s) && s[eq] == '=' {
			// An auth-param.
			name := strings.ToLower(tok)
			switch {
			case cur < 0:
				return nil, challengeSyntaxError(start, "parameter %q has no scheme before it", name)
			case out[cur].Token68 != "":
				return nil, challengeSyntaxError(start, "parameter %q follows the token68 %q of scheme %q", name, clip(out[cur].Token68), out[cur].Scheme)
			case !takesParams:
				return nil, challengeSyntaxError(start, "parameter %q is not separated from scheme %q by a space", name, out[cur].Scheme)
			}
			if _, dup := out[cur].Params[name]; dup {
				return nil, challengeSyntaxError(start, "duplicate parameter %q", name)
			}
			pos = skipOWS(s, eq+1)
			value, n, err := readParamValue(s, pos, name)
			if err != nil {
				return nil, err
			}
			out[cur].Params[name] = value
			pos = skipOWS(s, pos+n)
			if pos < len(s) && s[pos] != ',' {
				return nil, challengeSyntaxError(pos, "missing comma after parameter %q", name)
			}
			needParam = false
			continue
		}
		// A new challenge.
		if needParam {
			return nil, challengeSyntaxError(start, "%q follows scheme %q without a comma and is not a parameter", tok, out[cur].Scheme)
		}
		out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
		cur = len(out) - 1
		takesParams, needParam = false, false
		if pos >= len(s) || s[pos] == ',' {
			continue
		}
		if s[pos] != ' ' && s[pos] != '\t' {
			return nil, challengeSyntaxError(pos, "unexpected %q after scheme %q", s[pos], out[cur].Scheme)
		}
		pos = skipOWS(s, pos)
		if n := token68Len(s, pos); n > 0 {
			out[cur].Token68 = s[pos : pos+n]
			pos += n
			continue
		}
		takesParams, needParam = true, true
	}
	return out, nil
}

// readParamValue reads the value of parameter name at s[pos:]: a quoted-string, unescaped,
// or a bare token (with "/" and trailing "=" also accepted, as token68 allows). It returns
// the value and the number of bytes read.
func readParamValue(s string, pos int, name string) (string, int, error) {
	if pos >= len(s) {
		return "", 0, challengeSyntaxError(pos, "parameter %q has no value", name)
	}
	if s[pos] != '"' {
		n := 0
		for pos+n < len(s) && (isTchar(s[pos+n]) || s[pos+n] == '/') {
			n++
		}
		if n == 0 {
			return "", 0, challengeSyntaxError(pos, "parameter %q has no value", name)
		}
		for pos+n < len(s) && s[pos+n] == '=' {
			n++
		}
		return s[pos : pos+n], n, nil
	}
	var b []byte // allocated on the first escape only
	i := pos + 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			if b == nil {
				return s[pos+1 : i], i + 1 - pos, nil
			}
			return string(b), i + 1 - pos, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, challengeSyntaxError(i, "dangling escape in parameter %q", name)
			}
			if isCTL(s[i+1]) && s[i+1] != '\t' {
				return "", 0, challengeSyntaxError(i+1, "control character %q in parameter %q", s[i+1], name)
			}
			if b == nil {
				b = append(make([]byte, 0, len(s)-pos), s[pos+1:i]...)
			}
			b = append(b, s[i+1])
			i += 2
		case isCTL(c) && c != '\t':
			return "", 0, challengeSyntaxError(i, "control character %q in parameter %q", c, name)
		default:
			if b != nil {
				b = append(b, c)
			}
			i++
		}
	}
	return "", 0, challengeSyntaxError(pos, "unterminated quoted string in parameter %q", name)
}

// token68Len returns the length of the token68 at s[pos:] (RFC 7235 §2.1), or 0 when
// there is none. A token68 must end the list element: only whitespace may come between
// it and the next comma or the end of s, which tells it apart from `name=value`.
func token68Len(s string, pos int) int {
	n := 0
	for pos+n < len(s) && isToken68Char(s[pos+n]) {
		n++
	}
	if n == 0 {
		return 0
	}
	for pos+n < len(s) && s[pos+n] == '=' {
		n++
	}
	if end := skipOWS(s, pos+n); end < len(s) && s[end] != ',' {
		return 0
	}
	return n
}

// readToken returns the RFC 7230 token at s[pos:], possibly empty.
func readToken(s string, pos int) string {
	end := pos
	for end < len(s) && isTchar(s[end]) {
		end++
	}
	return s[pos:end]
}

// skipOWS returns the offset of the first byte at or after pos that is not SP or HTAB.
func skipOWS(s string, pos int) int {
	for pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
		pos++
	}
	return pos
}

// isTchar reports whether c is an RFC 7230 tchar.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char reports whether c may appear in a token68 before its trailing "=".
func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isCTL reports whether c is an ASCII control character.
func isCTL(c byte) bool { return c < 0x20 || c == 0x7f }

// String formats c as a WWW-Authenticate challenge that [ParseChallenges] parses back to
// c: the scheme, then its token68 or its parameters sorted by name, each value quoted with
// `"` and `\` escaped. It is meant for challenges ParseChallenges returned; names that
// are not tokens and values with control characters do not survive the round trip.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString(c.Scheme)
	if c.Token68 != "" {
		b.WriteByte(' ')
		b.WriteString(c.Token68)
	}
	for i, name := range slices.Sorted(maps.Keys(c.Params)) {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		v := c.Params[name]
		for j := 0; j < len(v); j++ {
			if v[j] == '"' || v[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// Scopes parses the challenge's scope parameter with [ParseScopes]. A challenge without
// one has no scopes and no error.
func (c Challenge) Scopes() ([]Scope, error) {
	return ParseScopes(c.Params["scope"])
}

// PreferredChallenge returns the challenge a client should answer: the first "bearer"
// challenge, else the first "basic" one. Other schemes (Negotiate, Digest, ...) are
// skipped; ok is false when none of cs is bearer or basic.
func PreferredChallenge(cs []Challenge) (Challenge, bool) {
	for _, scheme := range []string{"bearer", "basic"} {
		for _, c := range cs {
			if c.Scheme == scheme {
				return c, true
			}
		}
	}
	return Challenge{}, false
}

// Scope is one resource scope of a registry token (distribution's token spec,
// "type:name:actions"), such as "repository:library/ubuntu:pull" or
// "registry:catalog:*".
//
// A scope that does not follow that grammar but that a registry names in its challenge
// (Amazon ECR Public's "aws", Gitea's "*") is opaque: [ParseScopes] keeps it verbatim in
// Opaque and leaves the other fields empty, so it can be sent back as it came.
type Scope struct {
	// Type is the resource type: "repository", "registry", "artifact-repository".
	Type string
	// Class is the deprecated resource class, "plugin" in "repository(plugin):foo:pull";
	// empty when the type has none. Scopes that differ only in Class are different
	// resources here, although registries treat the class as absent.
	Class string
	// Name is the resource name: a repository path, which may start with a host and
	// port ("localhost:5000/a/b"), or "catalog".
	Name string
	// Actions are the actions asked for ("pull", "push", "delete", "metadata_read", "*"),
	// sorted and without duplicates when the Scope comes from this package.
	Actions []string
	// Opaque holds a scope outside the grammar, verbatim; when it is set, the other
	// fields are empty.
	Opaque string
}

// ParseScope parses one resource scope "type[(class)]:name:action[,action...]". The type
// is the text before the first ":", the actions the text after the last ":", and the name
// everything in between, so a name may carry a port: "repository:localhost:5000/a/b:pull,push".
// The actions are sorted and de-duplicated. It is an error wrapping [ErrInvalidScope] when
// a part is empty, when an action is empty or not made of letters, digits, "_", "-", "."
// or "*", or when s holds whitespace, a control character, a comma in the name, a quote or
// a backslash. Opaque scopes such as "aws" are an error here; [ParseScopes] accepts them.
func ParseScope(s string) (Scope, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return Scope{}, fmt.Errorf("scope %q: unexpected %q at offset %d: %w", clip(s), c, i, ErrInvalidScope)
		}
	}
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("scope %q: not of the form type:name:actions: %w", clip(s), ErrInvalidScope)
	}
	var sc Scope
	typ := s[:first]
	if open := strings.IndexByte(typ, '('); open >= 0 {
		if !strings.HasSuffix(typ, ")") {
			return Scope{}, fmt.Errorf("scope %q: resource class of type %q is not closed: %w", clip(s), typ, ErrInvalidScope)
		}
		sc.Class = typ[open+1 : len(typ)-1]
		typ = typ[:open]
		if !isScopeWord(sc.Class) {
			return Scope{}, fmt.Errorf("scope %q: invalid resource class %q: %w", clip(s), sc.Class, ErrInvalidScope)
		}
	}
	if !isScopeWord(typ) {
		return Scope{}, fmt.Errorf("scope %q: invalid resource type %q: %w", clip(s), typ, ErrInvalidScope)
	}
	sc.Type = typ
	sc.Name = s[first+1 : last]
	if sc.Name == "" {
		return Scope{}, fmt.Errorf("scope %q: empty resource name: %w", clip(s), ErrInvalidScope)
	}
	if strings.IndexByte(sc.Name, ',') >= 0 {
		return Scope{}, fmt.Errorf("scope %q: comma in resource name %q: %w", clip(s), sc.Name, ErrInvalidScope)
	}
	actions := s[last+1:]
	if actions == "" {
		return Scope{}, fmt.Errorf("scope %q: no actions: %w", clip(s), ErrInvalidScope)
	}
	sc.Actions = strings.Split(actions, ",")
	for _, a := range sc.Actions {
		if !isAction(a) {
			return Scope{}, fmt.Errorf("scope %q: invalid action %q: %w", clip(s), a, ErrInvalidScope)
		}
	}
	sc.Actions = normalizeActions(sc.Actions)
	return sc, nil
}

// ParseScopes parses a space-separated list of scopes, the form of a challenge's scope
// parameter and of a token request. Elements with a ":" are parsed with [ParseScope] and
// must be valid; elements without one ("aws", "*") are kept verbatim as opaque scopes.
// The scopes keep their order and duplicates; [MergeScopes] makes a set of them. Runs of
// whitespace separate elements; an empty or blank s has no scopes.
func ParseScopes(s string) ([]Scope, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, nil
	}
	out := make([]Scope, 0, len(fields))
	for _, f := range fields {
		if strings.IndexByte(f, ':') >= 0 {
			sc, err := ParseScope(f)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
			continue
		}
		for i := 0; i < len(f); i++ {
			if c := f[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
				return nil, fmt.Errorf("scope %q: unexpected %q at offset %d: %w", clip(f), c, i, ErrInvalidScope)
			}
		}
		out = append(out, Scope{Opaque: f})
	}
	return out, nil
}

// RepositoryScope returns the scope "repository:<repo>:<actions>", asking for "pull"
// when no action is given. The actions are sorted and de-duplicated; nothing is validated.
func RepositoryScope(repo string, actions ...string) Scope {
	if len(actions) == 0 {
		actions = []string{"pull"}
	}
	return Scope{Type: "repository", Name: repo, Actions: normalizeActions(slices.Clone(actions))}
}

// CatalogScope returns "registry:catalog:*", the scope of the /v2/_catalog endpoint.
func CatalogScope() Scope {
	return Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}
}

// String formats s as "type[(class)]:name:actions" with the actions sorted, without
// duplicates, and joined by ","; an opaque scope is its Opaque text, and the zero Scope
// is "". [ParseScope] (or [ParseScopes] for an opaque scope) parses it back to s when s
// came from this package; a Scope built by hand with an empty part or no actions
// formats to text that does not parse.
func (s Scope) String() string {
	if s.Opaque != "" {
		return s.Opaque
	}
	if s.Type == "" && s.Class == "" && s.Name == "" && len(s.Actions) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(s.Type)
	if s.Class != "" {
		b.WriteByte('(')
		b.WriteString(s.Class)
		b.WriteByte(')')
	}
	b.WriteByte(':')
	b.WriteString(s.Name)
	b.WriteByte(':')
	actions := s.Actions
	if !isNormalized(actions) {
		actions = normalizeActions(slices.Clone(actions))
	}
	b.WriteString(strings.Join(actions, ","))
	return b.String()
}

// Contains reports whether a token granted for s also serves other: the same resource
// (type, class and name) and every action of other among s's actions, where "*" in s
// covers any action. Opaque scopes contain only an equal opaque scope.
func (s Scope) Contains(other Scope) bool {
	if s.Opaque != "" || other.Opaque != "" {
		return s.Opaque == other.Opaque
	}
	if !s.sameResource(other) {
		return false
	}
	if slices.Contains(s.Actions, "*") {
		return true
	}
	for _, a := range other.Actions {
		if !slices.Contains(s.Actions, a) {
			return false
		}
	}
	return true
}

// MergeScopes returns the set of scopes that scopes ask for together: one Scope per
// resource (type, class and name) with the union of its actions, and each opaque scope
// once. The result is sorted by type, class, name and opaque text, so that
// ScopeString(MergeScopes(...)) is a stable cache key whatever the input order. A scope
// without actions asks for nothing and is dropped; the input is not modified. It costs
// a map insertion per scope and a sort of the result.
func MergeScopes(scopes ...Scope) []Scope {
	type key struct{ typ, class, name, opaque string }
	var out []Scope
	index := make(map[key]int, len(scopes))
	for _, s := range scopes {
		var k key
		if s.Opaque != "" {
			k.opaque = s.Opaque
		} else if len(s.Actions) > 0 {
			k = key{typ: s.Type, class: s.Class, name: s.Name}
		} else {
			continue
		}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, Scope{Type: k.typ, Class: k.class, Name: k.name, Opaque: k.opaque})
			i = len(out) - 1
		}
		out[i].Actions = append(out[i].Actions, s.Actions...)
	}
	for i := range out {
		if out[i].Opaque != "" {
			out[i].Actions = nil
			continue
		}
		out[i].Actions = normalizeActions(out[i].Actions)
	}
	slices.SortFunc(out, compareScopes)
	return out
}

// ScopesContain reports whether a token granted for the scopes have serves a request for
// the scopes want: each opaque scope of want is in have, and every action of every other
// scope of want is covered by a scope of have for the same resource (see
// [Scope.Contains]); have need not be merged.
func ScopesContain(have, want []Scope) bool {
	for _, w := range want {
		if w.Opaque != "" {
			if !slices.ContainsFunc(have, func(h Scope) bool { return h.Opaque == w.Opaque }) {
				return false
			}
			continue
		}
		for _, a := range w.Actions {
			one := Scope{Type: w.Type, Class: w.Class, Name: w.Name, Actions: []string{a}}
			if !slices.ContainsFunc(have, func(h Scope) bool { return h.Contains(one) }) {
				return false
			}
		}
	}
	return true
}

// ScopeString joins the scopes' [Scope.String] forms with single spaces, in order,
// skipping zero Scopes: the scope parameter of a token request. Pass it the result of
// [MergeScopes] to get a canonical key for a token cache.
func ScopeString(scopes []Scope) string {
	var b strings.Builder
	for _, s := range scopes {
		str := s.String()
		if str == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(str)
	}
	return b.String()
}

func (s Scope) sameResource(o Scope) bool {
	return s.Type == o.Type && s.Class == o.Class && s.Name == o.Name
}

func compareScopes(a, b Scope) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Class, b.Class),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Opaque, b.Opaque),
	)
}

// normalizeActions sorts and de-duplicates actions in place.
func normalizeActions(actions []string) []string {
	slices.Sort(actions)
	return slices.Compact(actions)
}

// isNormalized reports whether actions are sorted and without duplicates.
func isNormalized(actions []string) bool {
	for i := 1; i < len(actions); i++ {
		if actions[i-1] >= actions[i] {
			return false
		}
	}
	return true
}

// isScopeWord reports whether s is a non-empty resource type or class: letters, digits,
// "_", "-" and ".".
func isScopeWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isAction reports whether a is a non-empty action: letters, digits, "_", "-", "." or "*".
func isAction(a string) bool {
	return a != "" && (isScopeWord(strings.ReplaceAll(a, "*", "_")))
}

// clip shortens s for an error message.
func clip(s string) string { return text.Clip(s, 128) }
