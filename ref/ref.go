// Package ref parses, normalizes and prints docker-style image references such as
// "ubuntu", "ghcr.io/owner/app:v1" or "localhost:5000/a/b@sha256:...".
//
// The grammar and the normalization are those of github.com/distribution/reference,
// which docker, containerd and podman share: a name without a registry host is a
// Docker Hub name ("ubuntu" is "docker.io/library/ubuntu"), and a reference with
// neither a tag nor a digest gets the tag "latest". On top of that, ref keeps a tag
// given together with a digest (the digest decides what is pulled), treats
// "registry-1.docker.io" as Docker Hub too, and reports which part of a rejected
// reference is wrong.
//
// A [Reference] is a small comparable value: two references are equal with == when
// they name the same registry, repository, tag and digest.
package ref

import (
	// Registered for their side effect: go-digest accepts sha256, sha384 and
	// sha512 digests only when these hash implementations are linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/internal/text"
)

const (
	// HubDomain is the familiar domain of Docker Hub, the one docker prints and
	// stores ("docker.io/library/ubuntu").
	HubDomain = "docker.io"

	// HubRegistry is the host that serves the registry API of Docker Hub.
	HubRegistry = "registry-1.docker.io"

	// DefaultTag is the tag of a reference given with neither a tag nor a digest.
	DefaultTag = "latest"

	// MaxRepositoryLength is the longest repository path accepted, in bytes. The
	// registry host does not count towards it.
	MaxRepositoryLength = reference.RepositoryNameTotalLengthMax

	// MaxTagLength is the longest tag accepted, in bytes.
	MaxTagLength = 128

	legacyHubDomain = "index.docker.io"
	officialPrefix  = "library/"
	maxQuoted       = 512 // longest input quoted whole in an error message
)

// IsHub reports whether host is one of Docker Hub's names: "docker.io",
// "index.docker.io", "registry-1.docker.io" or "registry.hub.docker.com", in any
// letter case. A port, scheme or path makes it another host. It costs no I/O.
func IsHub(host string) bool {
	switch strings.ToLower(host) {
	case HubDomain, legacyHubDomain, HubRegistry, "registry.hub.docker.com":
		return true
	}
	return false
}

var (
	anchoredDomain     = regexp.MustCompile(`^(?:` + reference.DomainRegexp.String() + `)$`)
	anchoredTag        = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)
	anchoredIdentifier = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// anchoredDigestAlgorithm is what a digest's algorithm looks like (no dots, unlike
	// a host name).
	anchoredDigestAlgorithm = regexp.MustCompile(`^[a-z0-9]+(?:[+_-][a-z0-9]+)*$`)
	anchoredComponent       = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
)

// Reference is a parsed, normalized image reference. The zero value names nothing
// (see [Reference.IsZero]); every other value comes from [Parse], [ParseRepository]
// or one of the With methods. Its methods only read fields, and the printing ones
// allocate the string they return.
type Reference struct {
	domain string        // familiar domain: "docker.io" for Docker Hub
	path   string        // repository path: "library/ubuntu"
	tag    string        // "" when absent
	digest digest.Digest // "" when absent
}

// Parse parses s the way docker does and normalizes it: a name without a registry
// host is on Docker Hub, a single-component Hub name is in "library/", and a
// reference with neither a tag nor a digest gets the tag "latest". A tag given
// together with a digest is kept; the digest is what [Reference.Reference] names.
//
// The repository path must be lower case and at most [MaxRepositoryLength] bytes
// long, a tag at most [MaxTagLength] bytes, and a digest must be a valid sha256,
// sha384 or sha512 digest. A bare 64-character hexadecimal string is refused, as
// docker refuses it (it reads like an image id). An error wraps
// errdef.ErrInvalidReference, names the part that is wrong and, where
// distribution/reference or go-digest has a sentinel for the failure
// (reference.ErrNameContainsUppercase, digest.ErrDigestUnsupported, ...), wraps
// that too.
//
// Parse costs a few regular-expression matches, linear in len(s), and a handful
// of small allocations.
func Parse(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// ParseRepository parses a repository name, without tag or digest, with the same
// normalization as [Parse]: "ubuntu" is "docker.io/library/ubuntu". A tag or a
// digest in s is an error wrapping errdef.ErrInvalidReference; no default tag is
// added, so Tag, Digest and Reference of the result are all "". It costs what
// Parse costs.
func ParseRepository(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	switch {
	case r.digest != "":
		return Reference{}, newError(s, "a repository name has no digest", reference.ErrReferenceInvalidFormat)
	case r.tag != "":
		return Reference{}, newError(s, "a repository name has no tag", reference.ErrReferenceInvalidFormat)
	}
	return r, nil
}

// parse runs docker's normalizing parser on s and converts its result, or
// explains its failure.
func parse(s string) (Reference, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, diagnose(s, err)
	}
	r := Reference{domain: reference.Domain(named), path: reference.Path(named)}
	if r.domain == "" {
		// The first component looked like a host to the normalizer ("0_0.0/x") but is
		// not a valid one, and the grammar then read it as a path: docker would send
		// such a name to that "host", so it is refused as one.
		return Reference{}, diagnose(s, reference.ErrReferenceInvalidFormat)
	}
	if t, ok := named.(reference.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.digest = d.Digest()
	}
	if r.domain == HubRegistry {
		// The API host of Docker Hub names the same repositories as docker.io.
		r.domain = HubDomain
		if !strings.Contains(r.path, "/") {
			r.path = officialPrefix + r.path
		}
		if len(r.path) > MaxRepositoryLength {
			return Reference{}, newError(s, reference.ErrNameTooLong.Error(), reference.ErrNameTooLong)
		}
	}
	return r, nil
}

// Registry returns the host (and port) that serves the registry API for r:
// "registry-1.docker.io" for Docker Hub, else the host as given, with its port and
// with an IPv6 literal in brackets ("[::1]:5000"). It is "" for the zero Reference.
func (r Reference) Registry() string {
	if r.domain == HubDomain {
		return HubRegistry
	}
	return r.domain
}

// Domain returns the familiar domain of r: "docker.io" for Docker Hub (however it
// was written), else the same as [Reference.Registry].
func (r Reference) Domain() string { return r.domain }

// Repository returns the repository path within the registry, as used in API
// URLs: "library/ubuntu", "owner/app".
func (r Reference) Repository() string { return r.path }

// Tag returns the tag: "" when only a digest was given (or for a result of
// [ParseRepository]), "latest" when Parse saw neither a tag nor a digest.
func (r Reference) Tag() string { return r.tag }

// Digest returns the digest, "" when none was given. When both a tag and a digest
// are set, the digest is what identifies the manifest.
func (r Reference) Digest() digest.Digest { return r.digest }

// Reference returns what identifies the manifest in
// /v2/<repository>/manifests/<reference>: the digest if there is one, else the
// tag, else "".
func (r Reference) Reference() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}

// IsZero reports whether r is the zero Reference, which names nothing.
func (r Reference) IsZero() bool { return r == Reference{} }

// Name returns the familiar domain and the repository: "docker.io/library/ubuntu".
// It is "" for the zero Reference.
func (r Reference) Name() string {
	if r.IsZero() {
		return ""
	}
	return r.domain + "/" + r.path
}

// String returns the full, normalized form of r, which [Parse] reads back to an
// equal Reference: "docker.io/library/ubuntu:latest",
// "ghcr.io/owner/app:v1@sha256:...", "localhost:5000/a/b@sha256:...". It is ""
// for the zero Reference.
func (r Reference) String() string {
	if r.IsZero() {
		return ""
	}
	return r.withSuffix(r.domain + "/" + r.path)
}

// Familiar returns the short form docker prints and uses in RepoTags: the
// "docker.io/" domain and a single-component "library/" namespace are left out
// ("ubuntu:latest", "owner/app:v1", "ghcr.io/a/b@sha256:..."). Parse reads it back
// to a Reference equal to r.
func (r Reference) Familiar() string {
	return r.withSuffix(r.FamiliarName())
}

// FamiliarName returns the short repository name docker prints, without tag or
// digest: "ubuntu", "owner/app", "ghcr.io/a/b". A Docker Hub repository whose first
// component would read as a registry host ("docker.io/0.0/app") keeps its domain, so
// the name parses back to the same repository. It is "" for the zero Reference.
func (r Reference) FamiliarName() string {
	if r.domain != HubDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.path, officialPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	if first, _, _ := strings.Cut(r.path, "/"); first == "localhost" || strings.ContainsAny(first, ".:") {
		return r.Name()
	}
	return r.path
}

// withSuffix appends the tag and the digest of r to name.
func (r Reference) withSuffix(name string) string {
	if r.tag != "" {
		name += ":" + r.tag
	}
	if r.digest != "" {
		name += "@" + r.digest.String()
	}
	return name
}

// WithTag returns r with its tag replaced by t; the digest, if any, is kept. A t
// that is not a valid tag (empty, longer than [MaxTagLength], or with characters
// other than letters, digits, '_', '.' and '-', or starting with '.' or '-') is an
// error wrapping errdef.ErrInvalidReference and reference.ErrTagInvalidFormat, as
// is calling it on the zero Reference.
func (r Reference) WithTag(t string) (Reference, error) {
	if r.IsZero() {
		return Reference{}, newError(":"+t, "name is empty", reference.ErrNameEmpty)
	}
	if reason := checkTag(t); reason != "" {
		return Reference{}, newError(r.Name()+":"+t, reason, reference.ErrTagInvalidFormat)
	}
	r.tag = t
	return r, nil
}

// WithDigest returns r with its digest replaced by d; the tag is kept, and an
// empty d removes the digest. d is not checked: pass a digest that passed
// d.Validate, such as one from a verified descriptor, or the result will not print
// to a string that [Parse] accepts.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.digest = d
	return r
}

// diagnose explains why docker's parser refused s, returning an error that wraps
// errdef.ErrInvalidReference, libErr and the sentinel of the failing part.
func diagnose(s string, libErr error) error {
	fail := func(reason string, sentinel error) error {
		return newError(s, reason, libErr, sentinel)
	}
	if s == "" {
		return fail("name is empty", reference.ErrNameEmpty)
	}
	if strings.Contains(s, "://") {
		return fail("a reference has no URL scheme", reference.ErrReferenceInvalidFormat)
	}
	if anchoredIdentifier.MatchString(s) {
		return fail("a 64-character hexadecimal name reads as an image id, not a repository", reference.ErrReferenceInvalidFormat)
	}

	// Neither a tag nor a digest holds a '/', and a tag holds no '@': the digest
	// starts at the first '@' after the last '/', the tag at the first ':' after
	// the last '/' before that.
	rest, dgst, hasDigest := s, "", false
	slash := strings.LastIndexByte(s, '/')
	if i := strings.IndexByte(s[slash+1:], '@'); i >= 0 {
		rest, dgst, hasDigest = s[:slash+1+i], s[slash+1+i+1:], true
	}
	name, tag, hasTag := rest, "", false
	if i := strings.IndexByte(rest[slash+1:], ':'); i >= 0 {
		name, tag, hasTag = rest[:slash+1+i], rest[slash+1+i+1:], true
	}
	if reason, sentinel := checkName(name); reason != "" {
		return fail(reason, sentinel)
	}
	if hasTag {
		if reason := checkTag(tag); reason != "" {
			return fail(reason, reference.ErrTagInvalidFormat)
		}
	}
	if hasDigest {
		if dgst == "" {
			return fail("digest is empty", reference.ErrDigestInvalidFormat)
		}
		if err := digest.Digest(dgst).Validate(); err != nil {
			return newError(s, "invalid digest: "+err.Error(), libErr, err)
		}
	}
	return fail(reference.ErrReferenceInvalidFormat.Error(), reference.ErrReferenceInvalidFormat)
}

// checkName returns why name (a reference without tag and digest) is not a valid
// repository name, and the matching sentinel, or "" when it finds nothing wrong.
// It splits off the registry host the way docker does.
func checkName(name string) (string, error) {
	if name == "" {
		return "name is empty", reference.ErrNameEmpty
	}
	first, rest, hasSlash := strings.Cut(name, "/")
	if !hasSlash && strings.HasPrefix(name, "[") {
		return "a registry host must be followed by a repository path", reference.ErrReferenceInvalidFormat
	}
	domain, path := "", name
	if hasSlash && (first == "localhost" || strings.ContainsAny(first, ".:") || strings.ToLower(first) != first) {
		domain, path = first, rest
	}
	if domain != "" && !anchoredDomain.MatchString(domain) {
		reason := "invalid registry host " + strconv.Quote(domain)
		if strings.Contains(domain, "%") {
			reason += ": zone identifiers are not allowed"
		}
		return reason, reference.ErrReferenceInvalidFormat
	}
	if path == "" {
		return "repository path is empty", reference.ErrNameEmpty
	}
	if strings.ToLower(path) != path {
		return reference.ErrNameContainsUppercase.Error(), reference.ErrNameContainsUppercase
	}
	if domain == "" || domain == HubDomain || domain == legacyHubDomain || domain == HubRegistry {
		if !strings.Contains(path, "/") {
			path = officialPrefix + path
		}
	}
	if len(path) > MaxRepositoryLength {
		return reference.ErrNameTooLong.Error(), reference.ErrNameTooLong
	}
	for c := range strings.SplitSeq(path, "/") {
		if c == "" {
			return "repository path " + strconv.Quote(path) + " has an empty component", reference.ErrReferenceInvalidFormat
		}
		if !anchoredComponent.MatchString(c) {
			return "invalid repository path component " + strconv.Quote(c) +
				": lower-case letters and digits, separated by '.', '_', '__' or dashes", reference.ErrReferenceInvalidFormat
		}
	}
	return "", nil
}

// checkTag returns why t is not a valid tag, or "" when it is one.
func checkTag(t string) string {
	switch {
	case t == "":
		return "tag is empty"
	case len(t) > MaxTagLength:
		return "tag " + strconv.Quote(t) + " is longer than " + strconv.Itoa(MaxTagLength) + " characters"
	case !anchoredTag.MatchString(t):
		return "invalid tag " + strconv.Quote(t) + ": letters, digits, '_', '.' and '-', not starting with '.' or '-'"
	}
	return ""
}

// parseError is a refused reference: its message names the input and the reason,
// and it wraps errdef.ErrInvalidReference with the causes.
type parseError struct {
	input  string
	reason string
	errs   []error
}

// newError returns a parseError for input, wrapping errdef.ErrInvalidReference and
// each distinct non-nil cause.
func newError(input, reason string, causes ...error) error {
	e := &parseError{input: input, reason: reason, errs: []error{errdef.ErrInvalidReference}}
	for _, c := range causes {
		if c != nil && !wraps(e.errs, c) {
			e.errs = append(e.errs, c)
		}
	}
	return e
}

// wraps reports whether one of errs matches target.
func wraps(errs []error, target error) bool {
	for _, err := range errs {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (e *parseError) Error() string {
	in, reason := e.input, e.reason
	if userinfo := userinfoOf(in); userinfo != "" {
		// Never echo a password typed into a reference.
		in = strings.ReplaceAll(in, userinfo, redacted)
		reason = strings.ReplaceAll(reason, userinfo, redacted)
	}
	in = text.Clip(in, maxQuoted)
	return errdef.ErrInvalidReference.Error() + " " + strconv.Quote(in) + ": " + reason
}

// redacted replaces userinfo in messages.
const redacted = "REDACTED"

// RedactUserinfo returns s with the userinfo of a "user:password@host/..." prefix (of
// a URL, or typed into a reference or a registry name) replaced by "REDACTED", so that
// a message can quote what was typed without echoing a password. A digest
// ("ubuntu@sha256:...") is not userinfo; anything without userinfo is returned as is.
func RedactUserinfo(s string) string {
	if userinfo := userinfoOf(s); userinfo != "" {
		return strings.ReplaceAll(s, userinfo, redacted)
	}
	return s
}

// userinfoOf returns the userinfo of s ("user:password" of "user:password@host/x",
// with or without a scheme), "" when there is none.
func userinfoOf(s string) string {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	host, _, hasSlash := strings.Cut(s, "/")
	at := strings.LastIndexByte(host, '@')
	if at <= 0 {
		return ""
	}
	if !hasSlash {
		// "name@sha256:..." is a digest, "user:pass@host" is not.
		alg, _, isDigest := strings.Cut(host[at+1:], ":")
		if isDigest && (digest.Algorithm(alg).Available() || anchoredDigestAlgorithm.MatchString(alg)) {
			return ""
		}
	}
	return host[:at]
}

func (e *parseError) Unwrap() []error { return e.errs }
