package ref

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
)

func TestParse(t *testing.T) {
	for _, v := range allVectors() {
		t.Run(v.label, func(t *testing.T) {
			r, err := Parse(v.in)
			if v.bad {
				checkError(t, v, r, err)
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", v.in, err)
			}
			checkParts(t, v, r)
			checkRoundTrip(t, r)
		})
	}
}

// checkError verifies a refused input: a zero Reference and an error in the
// ErrInvalidReference chain with the expected sentinel and message.
func checkError(t *testing.T, v vector, r Reference, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse(%q) = %v, want an error", v.in, r)
	}
	if !r.IsZero() {
		t.Errorf("Parse(%q) returned %v with the error, want the zero Reference", v.in, r)
	}
	if !errors.Is(err, errdef.ErrInvalidReference) {
		t.Errorf("Parse(%q) error %v does not wrap errdef.ErrInvalidReference", v.in, err)
	}
	if v.errIs != nil && !errors.Is(err, v.errIs) {
		t.Errorf("Parse(%q) error %v does not wrap %v", v.in, err, v.errIs)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `invalid reference "`) {
		t.Errorf("Parse(%q) error %q does not start with `invalid reference \"`", v.in, msg)
	}
	if !strings.Contains(msg, v.errText) {
		t.Errorf("Parse(%q) error %q does not contain %q", v.in, msg, v.errText)
	}
	if strings.HasSuffix(msg, ": "+reference.ErrReferenceInvalidFormat.Error()) {
		t.Errorf("Parse(%q) error %q does not say which part is wrong", v.in, msg)
	}
}

// checkParts compares every accessor of r with the vector.
func checkParts(t *testing.T, v vector, r Reference) {
	t.Helper()
	wantDomain := v.registry
	if v.registry == hub {
		wantDomain = "docker.io"
	}
	wantRef := v.tag
	if v.digest != "" {
		wantRef = v.digest.String()
	}
	for _, c := range []struct{ name, got, want string }{
		{"Registry", r.Registry(), v.registry},
		{"Domain", r.Domain(), wantDomain},
		{"Repository", r.Repository(), v.repo},
		{"Tag", r.Tag(), v.tag},
		{"Digest", r.Digest().String(), v.digest.String()},
		{"String", r.String(), v.str},
		{"Name", r.Name(), wantDomain + "/" + v.repo},
		{"Reference", r.Reference(), wantRef},
	} {
		if c.got != c.want {
			t.Errorf("Parse(%q).%s() = %q, want %q", v.in, c.name, c.got, c.want)
		}
	}
	if r.IsZero() {
		t.Errorf("Parse(%q).IsZero() = true", v.in)
	}
}

// checkRoundTrip verifies that String and Familiar parse back to r, that Familiar
// agrees with distribution/reference, and that the name parses as a repository.
func checkRoundTrip(t *testing.T, r Reference) {
	t.Helper()
	for _, s := range []string{r.String(), r.Familiar()} {
		back, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q) (printed from %#v) error: %v", s, r, err)
		} else if back != r {
			t.Errorf("Parse(%q) = %#v, want %#v", s, back, r)
		}
	}
	named, err := reference.ParseNormalizedNamed(r.String())
	if err != nil {
		t.Errorf("reference.ParseNormalizedNamed(%q) error: %v", r.String(), err)
	} else {
		if got, want := r.Familiar(), reference.FamiliarString(named); got != want {
			t.Errorf("%v.Familiar() = %q, reference.FamiliarString gives %q", r, got, want)
		}
		if got, want := r.FamiliarName(), reference.FamiliarName(named); got != want {
			t.Errorf("%v.FamiliarName() = %q, reference.FamiliarName gives %q", r, got, want)
		}
	}
	repo, err := ParseRepository(r.Name())
	if err != nil {
		t.Errorf("ParseRepository(%q) error: %v", r.Name(), err)
	} else if repo.Domain() != r.Domain() || repo.Repository() != r.Repository() || repo.Tag() != "" || repo.Digest() != "" {
		t.Errorf("ParseRepository(%q) = %#v, want domain %q and repository %q alone", r.Name(), repo, r.Domain(), r.Repository())
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid reference "": name is empty`},
		{"Foo:bar", `invalid reference "Foo:bar": repository name must be lowercase`},
		{"x@sha256:abc", `invalid reference "x@sha256:abc": invalid digest: invalid checksum digest length`},
		{"x@sha1:" + strings.Repeat("0", 40), `invalid reference "x@sha1:` + strings.Repeat("0", 40) + `": invalid digest: unsupported digest algorithm`},
		{"ubuntu:" + strings.Repeat("x", 129), `invalid reference "ubuntu:` + strings.Repeat("x", 129) + `": tag "` + strings.Repeat("x", 129) + `" is longer than 128 characters`},
		{"example.com/" + strings.Repeat("a", 256), `invalid reference "example.com/` + strings.Repeat("a", 256) + `": repository name must not be more than 255 characters`},
		{"[fe80::1%eth0]:5000/repo", `invalid reference "[fe80::1%eth0]:5000/repo": invalid registry host "[fe80::1%eth0]:5000": zone identifiers are not allowed`},
		{"https://ghcr.io/a/b", `invalid reference "https://ghcr.io/a/b": a reference has no URL scheme`},
		{"ghcr.io/a/B", `invalid reference "ghcr.io/a/B": repository name must be lowercase`},
		{"ghcr.io/a..b", `invalid reference "ghcr.io/a..b": invalid repository path component "a..b": lower-case letters and digits, separated by '.', '_', '__' or dashes`},
		{"ubuntu:.x", `invalid reference "ubuntu:.x": invalid tag ".x": letters, digits, '_', '.' and '-', not starting with '.' or '-'`},
		{hex64, `invalid reference "` + hex64 + `": a 64-character hexadecimal name reads as an image id, not a repository`},
		{strings.Repeat("/", 600), `invalid reference "` + strings.Repeat("/", 512) + `...": repository name must not be more than 255 characters`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %v, want %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	tests := []struct {
		in               string
		registry, repo   string
		str, familiar    string
		wantErr, errText string
	}{
		{in: "ubuntu", registry: hub, repo: "library/ubuntu", str: "docker.io/library/ubuntu", familiar: "ubuntu"},
		{in: "docker.io/library/ubuntu", registry: hub, repo: "library/ubuntu", str: "docker.io/library/ubuntu", familiar: "ubuntu"},
		{in: "registry-1.docker.io/owner/app", registry: hub, repo: "owner/app", str: "docker.io/owner/app", familiar: "owner/app"},
		{in: "ghcr.io/owner/app", registry: "ghcr.io", repo: "owner/app", str: "ghcr.io/owner/app", familiar: "ghcr.io/owner/app"},
		{in: "localhost:5000/a/b", registry: "localhost:5000", repo: "a/b", str: "localhost:5000/a/b", familiar: "localhost:5000/a/b"},
		{in: "[::1]:5000/a", registry: "[::1]:5000", repo: "a", str: "[::1]:5000/a", familiar: "[::1]:5000/a"},
		{in: "ubuntu:latest", errText: `invalid reference "ubuntu:latest": a repository name has no tag`},
		{in: "localhost:5000", errText: `invalid reference "localhost:5000": a repository name has no tag`},
		{in: "ghcr.io/a/b@sha256:" + f64, errText: "a repository name has no digest"},
		{in: "ghcr.io/a/b:v1@sha256:" + f64, errText: "a repository name has no digest"},
		{in: "", errText: `invalid reference "": name is empty`},
		{in: "Ubuntu", errText: "repository name must be lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRepository(tt.in)
			if tt.errText != "" {
				if err == nil {
					t.Fatalf("ParseRepository(%q) = %v, want an error", tt.in, r)
				}
				if !errors.Is(err, errdef.ErrInvalidReference) || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("ParseRepository(%q) error = %v, want errdef.ErrInvalidReference with %q", tt.in, err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRepository(%q) error: %v", tt.in, err)
			}
			if r.Registry() != tt.registry || r.Repository() != tt.repo || r.String() != tt.str || r.Name() != tt.str ||
				r.Familiar() != tt.familiar || r.FamiliarName() != tt.familiar {
				t.Errorf("ParseRepository(%q) = registry %q, repository %q, String %q, Name %q, Familiar %q, FamiliarName %q; want %q, %q, %q, %q, %q, %q",
					tt.in, r.Registry(), r.Repository(), r.String(), r.Name(), r.Familiar(), r.FamiliarName(),
					tt.registry, tt.repo, tt.str, tt.str, tt.familiar, tt.familiar)
			}
			if r.Tag() != "" || r.Digest() != "" || r.Reference() != "" {
				t.Errorf("ParseRepository(%q) has tag %q, digest %q, reference %q; want all empty", tt.in, r.Tag(), r.Digest(), r.Reference())
			}
			if back, err := ParseRepository(r.String()); err != nil || back != r {
				t.Errorf("ParseRepository(%q) = %#v, %v; want %#v", r.String(), back, err, r)
			}
		})
	}
}

func TestFamiliar(t *testing.T) {
	tests := []struct{ in, familiar, name string }{
		{"ubuntu", "ubuntu:latest", "ubuntu"},
		{"docker.io/library/ubuntu:22.04", "ubuntu:22.04", "ubuntu"},
		{"index.docker.io/owner/app:v1", "owner/app:v1", "owner/app"},
		{"library/foo/bar", "library/foo/bar:latest", "library/foo/bar"},
		{"ghcr.io/a/b@sha256:" + f64, "ghcr.io/a/b@sha256:" + f64, "ghcr.io/a/b"},
		{"busybox:1@sha256:" + f64, "busybox:1@sha256:" + f64, "busybox"},
		{"gcr.io/library/busybox", "gcr.io/library/busybox:latest", "gcr.io/library/busybox"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got := r.Familiar(); got != tt.familiar {
				t.Errorf("Parse(%q).Familiar() = %q, want %q", tt.in, got, tt.familiar)
			}
			if got := r.FamiliarName(); got != tt.name {
				t.Errorf("Parse(%q).FamiliarName() = %q, want %q", tt.in, got, tt.name)
			}
		})
	}
}

func TestWithTag(t *testing.T) {
	base, err := Parse("ghcr.io/a/b:v1@sha256:" + f64)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tag, want, errText string
	}{
		{tag: "v2", want: "ghcr.io/a/b:v2@sha256:" + f64},
		{tag: "V_2.0-rc1", want: "ghcr.io/a/b:V_2.0-rc1@sha256:" + f64},
		{tag: strings.Repeat("t", 128), want: "ghcr.io/a/b:" + strings.Repeat("t", 128) + "@sha256:" + f64},
		{tag: "", errText: `invalid reference "ghcr.io/a/b:": tag is empty`},
		{tag: "-x", errText: `invalid tag "-x"`},
		{tag: "a/b", errText: `invalid tag "a/b"`},
		{tag: strings.Repeat("t", 129), errText: "is longer than 128 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			r, err := base.WithTag(tt.tag)
			if tt.errText != "" {
				if err == nil || !errors.Is(err, errdef.ErrInvalidReference) || !errors.Is(err, reference.ErrTagInvalidFormat) ||
					!strings.Contains(err.Error(), tt.errText) {
					t.Errorf("WithTag(%q) = %v, %v; want an error with %q", tt.tag, r, err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("WithTag(%q) error: %v", tt.tag, err)
			}
			if r.String() != tt.want || r.Tag() != tt.tag || r.Digest() != base.Digest() {
				t.Errorf("WithTag(%q) = %v, want %v", tt.tag, r, tt.want)
			}
			if back, err := Parse(r.String()); err != nil || back != r {
				t.Errorf("Parse(%q) = %#v, %v; want %#v", r.String(), back, err, r)
			}
		})
	}
	if _, err := (Reference{}).WithTag("v1"); !errors.Is(err, errdef.ErrInvalidReference) {
		t.Errorf("Reference{}.WithTag(\"v1\") error = %v, want errdef.ErrInvalidReference", err)
	}
}

func TestWithDigest(t *testing.T) {
	r, err := Parse("ubuntu:22.04")
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("manifest")
	withD := r.WithDigest(d)
	if withD.Tag() != "22.04" || withD.Digest() != d || withD.Reference() != d.String() {
		t.Errorf("WithDigest: tag %q, digest %q, reference %q; want 22.04, %s, %s", withD.Tag(), withD.Digest(), withD.Reference(), d, d)
	}
	if want := "docker.io/library/ubuntu:22.04@" + d.String(); withD.String() != want {
		t.Errorf("WithDigest: String() = %q, want %q", withD.String(), want)
	}
	if back, err := Parse(withD.String()); err != nil || back != withD {
		t.Errorf("Parse(%q) = %#v, %v; want %#v", withD.String(), back, err, withD)
	}
	if r.Digest() != "" {
		t.Errorf("WithDigest changed its receiver: digest %q", r.Digest())
	}
	if got := withD.WithDigest(""); got != r {
		t.Errorf("WithDigest(\"\") = %#v, want %#v", got, r)
	}
}

func TestReferenceMethod(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ubuntu", "latest"},
		{"ubuntu:22.04", "22.04"},
		{"ubuntu@sha256:" + f64, "sha256:" + f64},
		{"ubuntu:22.04@sha256:" + f64, "sha256:" + f64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got := r.Reference(); got != tt.want {
				t.Errorf("Parse(%q).Reference() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestZero(t *testing.T) {
	var r Reference
	if !r.IsZero() {
		t.Error("Reference{}.IsZero() = false")
	}
	for _, c := range []struct{ name, got string }{
		{"Registry", r.Registry()}, {"Domain", r.Domain()}, {"Repository", r.Repository()}, {"Tag", r.Tag()},
		{"Digest", r.Digest().String()}, {"Reference", r.Reference()}, {"Name", r.Name()}, {"String", r.String()},
		{"Familiar", r.Familiar()}, {"FamiliarName", r.FamiliarName()},
	} {
		if c.got != "" {
			t.Errorf("Reference{}.%s() = %q, want \"\"", c.name, c.got)
		}
	}
}

// TestErrorChain checks that each sentinel distribution/reference returns for a
// refused input stays in the chain of the error Parse returns.
func TestErrorChain(t *testing.T) {
	for _, v := range allVectors() {
		if !v.bad {
			continue
		}
		t.Run(v.label, func(t *testing.T) {
			_, libErr := reference.ParseNormalizedNamed(v.in)
			_, err := Parse(v.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", v.in)
			}
			for _, sentinel := range []error{
				reference.ErrReferenceInvalidFormat, reference.ErrTagInvalidFormat, reference.ErrDigestInvalidFormat,
				reference.ErrNameContainsUppercase, reference.ErrNameEmpty, reference.ErrNameTooLong,
				digest.ErrDigestInvalidFormat, digest.ErrDigestInvalidLength, digest.ErrDigestUnsupported,
			} {
				if errors.Is(libErr, sentinel) && !errors.Is(err, sentinel) {
					t.Errorf("Parse(%q) error %v does not wrap %v, which distribution/reference returns", v.in, err, sentinel)
				}
			}
		})
	}
}

// vector is one Parse case: either the expected parts of the result, or bad set
// with an optional extra sentinel (besides errdef.ErrInvalidReference) and a
// fragment of the message.
type vector struct {
	label    string
	in       string
	registry string
	repo     string
	tag      string
	digest   digest.Digest
	str      string

	bad     bool
	errIs   error
	errText string
}

func ok(label, in, registry, repo, tag string, d digest.Digest, str string) vector {
	return vector{label: label, in: in, registry: registry, repo: repo, tag: tag, digest: d, str: str}
}

func bad(label, in string, is error, text string) vector {
	return vector{label: label, in: in, bad: true, errIs: is, errText: text}
}

const hub = "registry-1.docker.io"

var (
	f64      = strings.Repeat("f", 64)
	f128     = strings.Repeat("f", 128)
	sha256F  = digest.Digest("sha256:" + f64)
	sha512F  = digest.Digest("sha512:" + f128)
	busybox1 = digest.Digest("sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582")
	busybox2 = digest.Digest("sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa")
	dbcc     = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
	hex64    = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
	path255  = strings.Repeat("a/", 127) + "a"
	longNS   = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"
)

// tableA holds protocol.md §9.3 table A (distribution/reference TestReferenceParse),
// translated to what the normalizing Parse gives.
var tableA = []vector{
	ok("A1", "test_com", hub, "library/test_com", "latest", "", "docker.io/library/test_com:latest"),
	ok("A2", "test.com:tag", hub, "library/test.com", "tag", "", "docker.io/library/test.com:tag"),
	ok("A3", "test.com:5000", hub, "library/test.com", "5000", "", "docker.io/library/test.com:5000"),
	ok("A4", "test.com/repo:tag", "test.com", "repo", "tag", "", "test.com/repo:tag"),
	ok("A5", "test:5000/repo", "test:5000", "repo", "latest", "", "test:5000/repo:latest"),
	ok("A6", "test:5000/repo:tag", "test:5000", "repo", "tag", "", "test:5000/repo:tag"),
	ok("A7", "test:5000/repo@sha256:"+f64, "test:5000", "repo", "", sha256F, "test:5000/repo@sha256:"+f64),
	ok("A8", "test:5000/repo:tag@sha256:"+f64, "test:5000", "repo", "tag", sha256F, "test:5000/repo:tag@sha256:"+f64),
	bad("A9", "", reference.ErrNameEmpty, "name is empty"),
	bad("A10", ":justtag", reference.ErrReferenceInvalidFormat, "name is empty"),
	bad("A11", "@sha256:"+f64, reference.ErrReferenceInvalidFormat, "name is empty"),
	bad("A12", "repo@sha256:"+strings.Repeat("f", 34), digest.ErrDigestInvalidLength, "invalid digest: invalid checksum digest length"),
	bad("A13", "validname@invaliddigest:"+f64, digest.ErrDigestUnsupported, "invalid digest: unsupported digest algorithm"),
	// Valid here: this package links crypto/sha512 in, so sha512 is available.
	ok("A14", "validname@sha512:"+f128, hub, "library/validname", "", sha512F, "docker.io/library/validname@sha512:"+f128),
	bad("A15", "Uppercase:tag", reference.ErrNameContainsUppercase, "repository name must be lowercase"),
	bad("A16", "test:5000/Uppercase/lowercase:tag", reference.ErrNameContainsUppercase, "repository name must be lowercase"),
	ok("A17", "lowercase:Uppercase", hub, "library/lowercase", "Uppercase", "", "docker.io/library/lowercase:Uppercase"),
	// "domain" is no registry host for docker (no '.', ':' or upper case): the
	// Hub path "domain/aaa..." is too long.
	bad("A18", "domain/"+strings.Repeat("a", 256)+":tag", reference.ErrNameTooLong, "must not be more than 255 characters"),
	// Likewise "a" is a Hub namespace, and the path is exactly 255 bytes.
	ok("A19", path255+":tag-puts-this-over-max", hub, path255, "tag-puts-this-over-max", "", "docker.io/"+path255+":tag-puts-this-over-max"),
	bad("A20", "aa/asdf$$^/aa", reference.ErrReferenceInvalidFormat, `invalid repository path component "asdf$$^"`),
	ok("A21", "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest", "", "sub-dom1.foo.com/bar/baz/quux:latest"),
	ok("A22", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
	ok("A23", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", "", "b.gcr.io/test.example.com/my-app:test.example.com"),
	ok("A24", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", "", "xn--n3h.com/myimage:xn--n3h.com"),
	ok("A25", "xn--7o8h.com/myimage:xn--7o8h.com@sha256:"+f64, "xn--7o8h.com", "myimage", "xn--7o8h.com", sha256F, "xn--7o8h.com/myimage:xn--7o8h.com@sha256:"+f64),
	ok("A26", "foo_bar.com:8080", hub, "library/foo_bar.com", "8080", "", "docker.io/library/foo_bar.com:8080"),
	ok("A27", "foo/foo_bar.com:8080", hub, "foo/foo_bar.com", "8080", "", "docker.io/foo/foo_bar.com:8080"),
	ok("A28", "192.168.1.1", hub, "library/192.168.1.1", "latest", "", "docker.io/library/192.168.1.1:latest"),
	ok("A29", "192.168.1.1:tag", hub, "library/192.168.1.1", "tag", "", "docker.io/library/192.168.1.1:tag"),
	ok("A30", "192.168.1.1:5000", hub, "library/192.168.1.1", "5000", "", "docker.io/library/192.168.1.1:5000"),
	ok("A31", "192.168.1.1/repo", "192.168.1.1", "repo", "latest", "", "192.168.1.1/repo:latest"),
	ok("A32", "192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", "latest", "", "192.168.1.1:5000/repo:latest"),
	ok("A33", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", "", "192.168.1.1:5000/repo:5050"),
	bad("A34", "[2001:db8::1]", reference.ErrReferenceInvalidFormat, "a registry host must be followed by a repository path"),
	bad("A35", "[2001:db8::1]:5000", reference.ErrReferenceInvalidFormat, "a registry host must be followed by a repository path"),
	bad("A36", "[2001:db8::1]:tag", reference.ErrReferenceInvalidFormat, "a registry host must be followed by a repository path"),
	ok("A37", "[2001:db8::1]/repo", "[2001:db8::1]", "repo", "latest", "", "[2001:db8::1]/repo:latest"),
	ok("A38", "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", "", "[2001:db8:1:2:3:4:5:6]/repo:tag"),
	ok("A39", "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", "latest", "", "[2001:db8::1]:5000/repo:latest"),
	ok("A40", "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", "", "[2001:db8::1]:5000/repo:tag"),
	ok("A41", "[2001:db8::1]:5000/repo@sha256:"+f64, "[2001:db8::1]:5000", "repo", "", sha256F, "[2001:db8::1]:5000/repo@sha256:"+f64),
	ok("A42", "[2001:db8::1]:5000/repo:tag@sha256:"+f64, "[2001:db8::1]:5000", "repo", "tag", sha256F, "[2001:db8::1]:5000/repo:tag@sha256:"+f64),
	ok("A43", "[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest", "", "[2001:db8::]:5000/repo:latest"),
	ok("A44", "[::1]:5000/repo", "[::1]:5000", "repo", "latest", "", "[::1]:5000/repo:latest"),
	bad("A45", "[fe80::1%eth0]:5000/repo", reference.ErrReferenceInvalidFormat, "zone identifiers are not allowed"),
	bad("A46", "[fe80::1%@invalidzone]:5000/repo", reference.ErrReferenceInvalidFormat, "zone identifiers are not allowed"),
	ok("A47", "example.com/"+strings.Repeat("a", 255)+":tag", "example.com", strings.Repeat("a", 255), "tag", "", "example.com/"+strings.Repeat("a", 255)+":tag"),
	bad("A47+1", "example.com/"+strings.Repeat("a", 256), reference.ErrNameTooLong, "must not be more than 255 characters"),
}

// tableB holds protocol.md §9.3 table B (TestNormalizedSplitHostname,
// TestParseRepositoryInfo).
var tableB = []vector{
	ok("B1", "test.com/foo", "test.com", "foo", "latest", "", "test.com/foo:latest"),
	ok("B2", "test_com/foo", hub, "test_com/foo", "latest", "", "docker.io/test_com/foo:latest"),
	ok("B3", "docker/migrator", hub, "docker/migrator", "latest", "", "docker.io/docker/migrator:latest"),
	ok("B4", "test.com:8080/foo", "test.com:8080", "foo", "latest", "", "test.com:8080/foo:latest"),
	ok("B5", "test-com:8080/foo", "test-com:8080", "foo", "latest", "", "test-com:8080/foo:latest"),
	ok("B6", "foo", hub, "library/foo", "latest", "", "docker.io/library/foo:latest"),
	ok("B7", "xn--n3h.com/foo", "xn--n3h.com", "foo", "latest", "", "xn--n3h.com/foo:latest"),
	ok("B8", "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", "", "xn--n3h.com:18080/foo:latest"),
	ok("B9", "docker.io/foo", hub, "library/foo", "latest", "", "docker.io/library/foo:latest"),
	ok("B10", "docker.io/library/foo", hub, "library/foo", "latest", "", "docker.io/library/foo:latest"),
	ok("B11", "docker.io/library/foo/bar", hub, "library/foo/bar", "latest", "", "docker.io/library/foo/bar:latest"),
	ok("B12", "localhost/fooo", "localhost", "fooo", "latest", "", "localhost/fooo:latest"),
	ok("B13", "localhost/fooo/bar", "localhost", "fooo/bar", "latest", "", "localhost/fooo/bar:latest"),
	ok("B14", "LOCALDOMAIN/fooo", "LOCALDOMAIN", "fooo", "latest", "", "LOCALDOMAIN/fooo:latest"),
	ok("B15a", "fooo/bar", hub, "fooo/bar", "latest", "", "docker.io/fooo/bar:latest"),
	ok("B15b", "docker.io/fooo/bar", hub, "fooo/bar", "latest", "", "docker.io/fooo/bar:latest"),
	ok("B15c", "index.docker.io/fooo/bar", hub, "fooo/bar", "latest", "", "docker.io/fooo/bar:latest"),
	ok("B16a", "ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("B16b", "docker.io/library/ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("B16c", "library/ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("B17", "nonlibrary/ubuntu", hub, "nonlibrary/ubuntu", "latest", "", "docker.io/nonlibrary/ubuntu:latest"),
	ok("B18", "other/library", hub, "other/library", "latest", "", "docker.io/other/library:latest"),
	ok("B19", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase", "latest", "", "127.0.0.1:8000/private/moonbase:latest"),
	ok("B20", "127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase", "latest", "", "127.0.0.1:8000/privatebase:latest"),
	ok("B21", "example.com:8000/privatebasee", "example.com:8000", "privatebasee", "latest", "", "example.com:8000/privatebasee:latest"),
	ok("B22a", "ubuntu-12.04-base", hub, "library/ubuntu-12.04-base", "latest", "", "docker.io/library/ubuntu-12.04-base:latest"),
	ok("B22b", "index.docker.io/library/ubuntu-12.04-base", hub, "library/ubuntu-12.04-base", "latest", "", "docker.io/library/ubuntu-12.04-base:latest"),
	ok("B23", "store/foo/bar", hub, "store/foo/bar", "latest", "", "docker.io/store/foo/bar:latest"),
	ok("B24", "Foo/bar", "Foo", "bar", "latest", "", "Foo/bar:latest"),
	ok("B25", "FOO/bar", "FOO", "bar", "latest", "", "FOO/bar:latest"),
}

// tableC holds protocol.md §9.3 table C (TestValidateReferenceName,
// TestValidateRemoteName).
var tableC = []vector{
	ok("C+1", "docker/docker", hub, "docker/docker", "latest", "", "docker.io/docker/docker:latest"),
	ok("C+2", "library/debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+3", "debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+4", "localhost/library/debian", "localhost", "library/debian", "latest", "", "localhost/library/debian:latest"),
	ok("C+5", "localhost/debian", "localhost", "debian", "latest", "", "localhost/debian:latest"),
	ok("C+6", "LOCALDOMAIN/library/debian", "LOCALDOMAIN", "library/debian", "latest", "", "LOCALDOMAIN/library/debian:latest"),
	ok("C+7", "LOCALDOMAIN/debian", "LOCALDOMAIN", "debian", "latest", "", "LOCALDOMAIN/debian:latest"),
	ok("C+8", "docker.io/docker/docker", hub, "docker/docker", "latest", "", "docker.io/docker/docker:latest"),
	ok("C+9", "docker.io/library/debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+10", "docker.io/debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+11", "index.docker.io/docker/docker", hub, "docker/docker", "latest", "", "docker.io/docker/docker:latest"),
	ok("C+12", "index.docker.io/library/debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+13", "index.docker.io/debian", hub, "library/debian", "latest", "", "docker.io/library/debian:latest"),
	ok("C+14", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", "latest", "", "127.0.0.1:5000/docker/docker:latest"),
	ok("C+15", "127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", "latest", "", "127.0.0.1:5000/library/debian:latest"),
	ok("C+16", "127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", "latest", "", "127.0.0.1:5000/debian:latest"),
	// Without a '/', docker reads no registry host: these are Hub names.
	ok("C+17", "192.168.0.1", hub, "library/192.168.0.1", "latest", "", "docker.io/library/192.168.0.1:latest"),
	ok("C+18", "192.168.0.1:80", hub, "library/192.168.0.1", "80", "", "docker.io/library/192.168.0.1:80"),
	ok("C+19", "192.168.0.1:8/debian", "192.168.0.1:8", "debian", "latest", "", "192.168.0.1:8/debian:latest"),
	ok("C+20", "192.168.0.2:25000/debian", "192.168.0.2:25000", "debian", "latest", "", "192.168.0.2:25000/debian:latest"),
	ok("C+21", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", hub, "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", "", "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),
	ok("C+22", "[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "latest", "", "[fc00::1]:5000/docker:latest"),
	ok("C+23", "[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", "latest", "", "[fc00::1]:5000/docker/docker:latest"),
	ok("C+24", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest", "", "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"),
	ok("C+25", "docker.io/"+hex64, hub, "library/"+hex64, "latest", "", "docker.io/library/"+hex64+":latest"),
	ok("C+26", "Docker/docker", "Docker", "docker", "latest", "", "Docker/docker:latest"),
	ok("C+27", "DOCKER/docker", "DOCKER", "docker", "latest", "", "DOCKER/docker:latest"),
	ok("C+28", "docker-rules/docker", hub, "docker-rules/docker", "latest", "", "docker.io/docker-rules/docker:latest"),
	ok("C+29", "docker---rules/docker", hub, "docker---rules/docker", "latest", "", "docker.io/docker---rules/docker:latest"),
	ok("C+30", "doc/docker", hub, "doc/docker", "latest", "", "docker.io/doc/docker:latest"),
	ok("C+31", "d/docker", hub, "d/docker", "latest", "", "docker.io/d/docker:latest"),
	ok("C+32", "jess/t", hub, "jess/t", "latest", "", "docker.io/jess/t:latest"),
	ok("C+33", "dock__er/docker", hub, "dock__er/docker", "latest", "", "docker.io/dock__er/docker:latest"),

	bad("C-1", "https://github.com/docker/docker", reference.ErrReferenceInvalidFormat, "no URL scheme"),
	bad("C-2", "docker/Docker", reference.ErrNameContainsUppercase, "must be lowercase"),
	bad("C-3", "-docker", reference.ErrReferenceInvalidFormat, `invalid repository path component "-docker"`),
	bad("C-4", "-docker/docker", reference.ErrReferenceInvalidFormat, `invalid repository path component "-docker"`),
	bad("C-5", "-docker.io/docker/docker", reference.ErrReferenceInvalidFormat, `invalid registry host "-docker.io"`),
	bad("C-6", "docker///docker", reference.ErrReferenceInvalidFormat, "has an empty component"),
	bad("C-7", "docker.io/docker/Docker", reference.ErrNameContainsUppercase, "must be lowercase"),
	bad("C-8", "docker.io/docker///docker", reference.ErrReferenceInvalidFormat, "has an empty component"),
	bad("C-9", "[fc00::1]", reference.ErrReferenceInvalidFormat, "must be followed by a repository path"),
	bad("C-10", "[fc00::1]:5000", reference.ErrReferenceInvalidFormat, "must be followed by a repository path"),
	bad("C-11", "fc00::1:5000/debian", reference.ErrReferenceInvalidFormat, `invalid registry host "fc00::1:5000"`),
	bad("C-12", "[fe80::1%eth0]:5000/debian", reference.ErrReferenceInvalidFormat, "zone identifiers are not allowed"),
	bad("C-13", "[2001:db8:3:4::192.0.2.33]:5000/debian", reference.ErrReferenceInvalidFormat, `invalid registry host "[2001:db8:3:4::192.0.2.33]:5000"`),
	bad("C-14", hex64, reference.ErrReferenceInvalidFormat, "64-character hexadecimal"),
	bad("C-15", "docker-/docker", reference.ErrReferenceInvalidFormat, `invalid repository path component "docker-"`),
	bad("C-16", "-docker-/docker", reference.ErrReferenceInvalidFormat, `invalid repository path component "-docker-"`),
	bad("C-17", "____/____", reference.ErrReferenceInvalidFormat, `invalid repository path component "____"`),
	bad("C-18", "_docker/_docker", reference.ErrReferenceInvalidFormat, `invalid repository path component "_docker"`),
	bad("C-19", "dock..er/docker", reference.ErrReferenceInvalidFormat, `invalid registry host "dock..er"`),
	bad("C-20", "dock_.er/docker", reference.ErrReferenceInvalidFormat, `invalid registry host "dock_.er"`),
	bad("C-21", "dock-.er/docker", reference.ErrReferenceInvalidFormat, `invalid registry host "dock-.er"`),
	bad("C-22", "docker/", reference.ErrReferenceInvalidFormat, "has an empty component"),
	bad("C-23", longNS+"/docker", reference.ErrNameTooLong, "must not be more than 255 characters"),
}

// tableD holds protocol.md §9.3 table D (ParseDockerRef, ParseAnyReference). Unlike
// ParseDockerRef, Parse keeps a tag given with a digest; unlike ParseAnyReference,
// it reads names only, never a bare image id.
var tableD = []vector{
	ok("D1", "busybox", hub, "library/busybox", "latest", "", "docker.io/library/busybox:latest"),
	ok("D2", "busybox:latest", hub, "library/busybox", "latest", "", "docker.io/library/busybox:latest"),
	ok("D3", "busybox@"+busybox1.String(), hub, "library/busybox", "", busybox1, "docker.io/library/busybox@"+busybox1.String()),
	ok("D4a", "library/busybox", hub, "library/busybox", "latest", "", "docker.io/library/busybox:latest"),
	ok("D4b", "docker.io/busybox", hub, "library/busybox", "latest", "", "docker.io/library/busybox:latest"),
	ok("D4c", "docker.io/library/busybox", hub, "library/busybox", "latest", "", "docker.io/library/busybox:latest"),
	ok("D5", "gcr.io/library/busybox", "gcr.io", "library/busybox", "latest", "", "gcr.io/library/busybox:latest"),
	ok("D6", "gcr.io/library/busybox:latest@"+busybox1.String(), "gcr.io", "library/busybox", "latest", busybox1, "gcr.io/library/busybox:latest@"+busybox1.String()),
	ok("D7", "busybox:latest@"+busybox2.String(), hub, "library/busybox", "latest", busybox2, "docker.io/library/busybox:latest@"+busybox2.String()),
	bad("D8", dbcc, reference.ErrReferenceInvalidFormat, "64-character hexadecimal"),
	// As a docker name, "sha256:<hex>" is the repository "sha256" with a tag.
	ok("D9", "sha256:"+dbcc, hub, "library/sha256", dbcc, "", "docker.io/library/sha256:"+dbcc),
	ok("D10", dbcc[:63], hub, "library/"+dbcc[:63], "latest", "", "docker.io/library/"+dbcc[:63]+":latest"),
	ok("D11", "dbcc1", hub, "library/dbcc1", "latest", "", "docker.io/library/dbcc1:latest"),
	ok("D12", "redis@sha256:"+dbcc, hub, "library/redis", "", digest.Digest("sha256:"+dbcc), "docker.io/library/redis@sha256:"+dbcc),
	ok("D13", "dmcgowan/myapp:latest", hub, "dmcgowan/myapp", "latest", "", "docker.io/dmcgowan/myapp:latest"),
}

// tableE holds protocol.md §9.3 table E (TestDomainRegexp), each host followed by
// "/repo".
var tableE = []vector{
	ok("E+1", "test.com/repo", "test.com", "repo", "latest", "", "test.com/repo:latest"),
	ok("E+2", "test.com:10304/repo", "test.com:10304", "repo", "latest", "", "test.com:10304/repo:latest"),
	ok("E+3", "localhost/repo", "localhost", "repo", "latest", "", "localhost/repo:latest"),
	ok("E+4", "localhost:8080/repo", "localhost:8080", "repo", "latest", "", "localhost:8080/repo:latest"),
	// A lower-case name without '.' or ':' is a Hub namespace, not a host.
	ok("E+5", "a/repo", hub, "a/repo", "latest", "", "docker.io/a/repo:latest"),
	ok("E+6", "a.b/repo", "a.b", "repo", "latest", "", "a.b/repo:latest"),
	ok("E+7", "ab.cd.com/repo", "ab.cd.com", "repo", "latest", "", "ab.cd.com/repo:latest"),
	ok("E+8", "a-b.com/repo", "a-b.com", "repo", "latest", "", "a-b.com/repo:latest"),
	ok("E+9", "ab.c-om/repo", "ab.c-om", "repo", "latest", "", "ab.c-om/repo:latest"),
	ok("E+10", "0101.com/repo", "0101.com", "repo", "latest", "", "0101.com/repo:latest"),
	ok("E+11", "001a.com/repo", "001a.com", "repo", "latest", "", "001a.com/repo:latest"),
	ok("E+12", "b.gbc.io:443/repo", "b.gbc.io:443", "repo", "latest", "", "b.gbc.io:443/repo:latest"),
	ok("E+13", "b.gbc.io/repo", "b.gbc.io", "repo", "latest", "", "b.gbc.io/repo:latest"),
	ok("E+14", "xn--n3h.com/repo", "xn--n3h.com", "repo", "latest", "", "xn--n3h.com/repo:latest"),
	ok("E+15", "Asdf.com/repo", "Asdf.com", "repo", "latest", "", "Asdf.com/repo:latest"),
	ok("E+16", "192.168.1.1:75050/repo", "192.168.1.1:75050", "repo", "latest", "", "192.168.1.1:75050/repo:latest"),
	ok("E+17", "[fd00:1:2::3]:75050/repo", "[fd00:1:2::3]:75050", "repo", "latest", "", "[fd00:1:2::3]:75050/repo:latest"),
	ok("E+18", "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050/repo", "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", "repo", "latest", "", "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050/repo:latest"),
	bad("E-1", "test.com:http/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "test.com:http"`),
	bad("E-2", "-ab.com/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "-ab.com"`),
	bad("E-3", "ab-.com/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "ab-.com"`),
	bad("E-4", "ab.-com/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "ab.-com"`),
	bad("E-5", "ab.com-/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "ab.com-"`),
	bad("E-6", "[fd00:1:2::3]75050/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "[fd00:1:2::3]75050"`),
	bad("E-7", "[fd00:1:2::3]::75050/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "[fd00:1:2::3]::75050"`),
	bad("E-8", "[fd00:1:2::3%eth0]:75050/repo", reference.ErrReferenceInvalidFormat, "zone identifiers are not allowed"),
	bad("E-9", "fd00:1:2::3:75050/repo", reference.ErrReferenceInvalidFormat, `invalid registry host "fd00:1:2::3:75050"`),
}

// tableSeed holds seed.md §3 (the docker-reference crate's vectors), with
// docker's answer where that crate differs from it.
var tableSeed = []vector{
	ok("S1", "test_com", hub, "library/test_com", "latest", "", "docker.io/library/test_com:latest"),
	ok("S2", "test_com:tag", hub, "library/test_com", "tag", "", "docker.io/library/test_com:tag"),
	ok("S3", "test.com:5000", hub, "library/test.com", "5000", "", "docker.io/library/test.com:5000"),
	ok("S4", "test:5000/repo", "test:5000", "repo", "latest", "", "test:5000/repo:latest"),
	ok("S5", "test.com/repo:tag", "test.com", "repo", "tag", "", "test.com/repo:tag"),
	ok("S6", "test.com:5000/repo", "test.com:5000", "repo", "latest", "", "test.com:5000/repo:latest"),
	ok("S7", "test.com:5000/repo:tag", "test.com:5000", "repo", "tag", "", "test.com:5000/repo:tag"),
	ok("S8", "test:5000/repo@sha256:"+f64, "test:5000", "repo", "", sha256F, "test:5000/repo@sha256:"+f64),
	ok("S9", "test:5000/repo:tag@sha256:"+f64, "test:5000", "repo", "tag", sha256F, "test:5000/repo:tag@sha256:"+f64),
	bad("S10", "", reference.ErrNameEmpty, "name is empty"),
	bad("S11", ":justtag", nil, "name is empty"),
	bad("S12", "@sha256:"+f64, nil, "name is empty"),
	bad("S13", "@sha256:fffffffffffffffff", nil, "name is empty"),
	bad("S14", "validname@bruhhash:"+f64, digest.ErrDigestUnsupported, "unsupported digest algorithm"),
	bad("S15", "Uppercase:tag", reference.ErrNameContainsUppercase, "must be lowercase"),
	// Docker's normalizer takes an upper-case first component for a registry
	// host (distribution/reference keeps a FIXME about it), so this parses.
	ok("S16", "Uppercase/lowercase:tag", "Uppercase", "lowercase", "tag", "", "Uppercase/lowercase:tag"),
	bad("S17", "test:5000/Uppercase/lowercase:tag", reference.ErrNameContainsUppercase, "must be lowercase"),
	bad("S18", strings.Repeat("a/", 128)+"a:tag", reference.ErrNameTooLong, "must not be more than 255 characters"),
	ok("S19", "a/"+strings.Repeat("a/", 126)+"a:tag-puts-this-over-max", hub, path255, "tag-puts-this-over-max", "", "docker.io/"+path255+":tag-puts-this-over-max"),
	bad("S20", "aa/asdf$$^/aa", nil, `"asdf$$^"`),
	ok("S21", "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest", "", "sub-dom1.foo.com/bar/baz/quux:latest"),
	ok("S22", "sub-dom1.foo.com/bar/baz/quux:long-tag", "sub-dom1.foo.com", "bar/baz/quux", "long-tag", "", "sub-dom1.foo.com/bar/baz/quux:long-tag"),
	ok("S23", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", "", "b.gcr.io/test.example.com/my-app:test.example.com"),
	ok("S24", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", "", "xn--n3h.com/myimage:xn--n3h.com"),
	ok("S25", "xn--7o8h.com/myimage:xn--7o8h.com@sha512:"+f128, "xn--7o8h.com", "myimage", "xn--7o8h.com", sha512F, "xn--7o8h.com/myimage:xn--7o8h.com@sha512:"+f128),
	bad("S26", "-test.com/myimage", nil, `invalid registry host "-test.com"`),
	bad("S27", "test-.com/myimage", nil, `invalid registry host "test-.com"`),
	ok("S28", "foo_bar.com:8080", hub, "library/foo_bar.com", "8080", "", "docker.io/library/foo_bar.com:8080"),
	ok("S29", "foo/foo_bar.com:8080", hub, "foo/foo_bar.com", "8080", "", "docker.io/foo/foo_bar.com:8080"),
	ok("S30", "iotedgeresources.azurecr.io/samplemodule:0.0.2-amd64", "iotedgeresources.azurecr.io", "samplemodule", "0.0.2-amd64", "", "iotedgeresources.azurecr.io/samplemodule:0.0.2-amd64"),
	ok("S31", "ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("S32", "ubuntu:19.04", hub, "library/ubuntu", "19.04", "", "docker.io/library/ubuntu:19.04"),
	ok("S+1", "docker.io/ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("S+2", "localhost:5000/foo", "localhost:5000", "foo", "latest", "", "localhost:5000/foo:latest"),
	ok("S+3", "prilik/ubuntu", hub, "prilik/ubuntu", "latest", "", "docker.io/prilik/ubuntu:latest"),
	bad("S+4", "ubuntu@sha256:"+strings.Repeat("F", 64), digest.ErrDigestInvalidFormat, "invalid digest: invalid checksum digest format"),
	bad("S+5", "ubuntu@sha256:"+strings.Repeat("f", 63), digest.ErrDigestInvalidLength, "invalid digest: invalid checksum digest length"),
	bad("S+6", "ubuntu:"+strings.Repeat("t", 129), reference.ErrTagInvalidFormat, `tag "`+strings.Repeat("t", 129)+`" is longer than 128 characters`),
	ok("S+7", "ubuntu:"+strings.Repeat("t", 128), hub, "library/ubuntu", strings.Repeat("t", 128), "", "docker.io/library/ubuntu:"+strings.Repeat("t", 128)),
}

// tableExtra covers the normalization and error rules of this package beyond the
// upstream vectors.
var tableExtra = []vector{
	ok("X1", "registry-1.docker.io/ubuntu", hub, "library/ubuntu", "latest", "", "docker.io/library/ubuntu:latest"),
	ok("X2", "registry-1.docker.io/library/ubuntu:22.04", hub, "library/ubuntu", "22.04", "", "docker.io/library/ubuntu:22.04"),
	ok("X3", "index.docker.io/ubuntu@sha256:"+f64, hub, "library/ubuntu", "", sha256F, "docker.io/library/ubuntu@sha256:"+f64),
	ok("X4", "ghcr.io/owner/app:v1", "ghcr.io", "owner/app", "v1", "", "ghcr.io/owner/app:v1"),
	ok("X5", "localhost:5000/a/b@sha384:"+strings.Repeat("0", 96), "localhost:5000", "a/b", "", digest.Digest("sha384:"+strings.Repeat("0", 96)), "localhost:5000/a/b@sha384:"+strings.Repeat("0", 96)),
	ok("X6", hex64+":v1", hub, "library/"+hex64, "v1", "", "docker.io/library/"+hex64+":v1"),
	ok("X7", "localhost:5000/a__b/c---d/e.f_g", "localhost:5000", "a__b/c---d/e.f_g", "latest", "", "localhost:5000/a__b/c---d/e.f_g:latest"),
	ok("X8", "registry-1.docker.io/"+strings.Repeat("a", 247), hub, "library/"+strings.Repeat("a", 247), "latest", "", "docker.io/library/"+strings.Repeat("a", 247)+":latest"),
	// "library/" takes the path over the limit once added.
	bad("X9", "registry-1.docker.io/"+strings.Repeat("a", 248), reference.ErrNameTooLong, "must not be more than 255 characters"),
	bad("X10", strings.Repeat("a", 248), reference.ErrNameTooLong, "must not be more than 255 characters"),
	bad("X11", "ubuntu:", reference.ErrTagInvalidFormat, "tag is empty"),
	bad("X12", "ubuntu:-x", reference.ErrTagInvalidFormat, `invalid tag "-x"`),
	bad("X13", "ubuntu@", reference.ErrDigestInvalidFormat, "digest is empty"),
	bad("X14", "x@sha256:abc", digest.ErrDigestInvalidLength, "invalid digest: invalid checksum digest length"),
	bad("X15", "Foo:bar", reference.ErrNameContainsUppercase, `invalid reference "Foo:bar": repository name must be lowercase`),
	bad("X16", "example.com/", reference.ErrNameEmpty, "repository path is empty"),
	bad("X17", "ubuntu:a:b", reference.ErrTagInvalidFormat, `invalid tag "a:b"`),
	bad("X18", "ubuntu@sha256:"+f64+"@sha256:"+f64, digest.ErrDigestInvalidLength, "invalid digest"),
	bad("X19", "ubuntu latest", reference.ErrReferenceInvalidFormat, `invalid repository path component "ubuntu latest"`),
	bad("X20", " ubuntu", reference.ErrReferenceInvalidFormat, `invalid repository path component " ubuntu"`),
	bad("X21", "/ubuntu", reference.ErrReferenceInvalidFormat, "has an empty component"),
	bad("X22", "ubuntu@md5:"+strings.Repeat("0", 32), digest.ErrDigestUnsupported, "unsupported digest algorithm"),
	bad("X23", "ubuntu:v1@", reference.ErrDigestInvalidFormat, "digest is empty"),
}

// allVectors returns every table above, in order.
func allVectors() []vector {
	var all []vector
	for _, t := range [][]vector{tableA, tableB, tableC, tableD, tableE, tableSeed, tableExtra} {
		all = append(all, t...)
	}
	return all
}
