package ref

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/ocistream/ocistream/errdef"
)

// FuzzParse checks, for any input, that Parse and ParseRepository do not panic,
// that a refusal wraps errdef.ErrInvalidReference and says which part is wrong,
// and that what parses prints (String, Familiar) to strings that parse back to an
// equal Reference and that distribution/reference reads the same way.
func FuzzParse(f *testing.F) {
	for _, v := range allVectors() {
		f.Add(v.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if repo, err := ParseRepository(s); err == nil {
			if repo.Tag() != "" || repo.Digest() != "" {
				t.Fatalf("ParseRepository(%q) = %#v, with a tag or digest", s, repo)
			}
			if back, err := ParseRepository(repo.String()); err != nil || back != repo {
				t.Fatalf("ParseRepository(%q) = %#v, %v; want %#v", repo.String(), back, err, repo)
			}
		} else if !errors.Is(err, errdef.ErrInvalidReference) {
			t.Fatalf("ParseRepository(%q) error %v does not wrap errdef.ErrInvalidReference", s, err)
		}

		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidReference) {
				t.Fatalf("Parse(%q) error %v does not wrap errdef.ErrInvalidReference", s, err)
			}
			if !r.IsZero() {
				t.Fatalf("Parse(%q) returned %#v with an error", s, r)
			}
			if strings.HasSuffix(err.Error(), ": "+reference.ErrReferenceInvalidFormat.Error()) {
				t.Fatalf("Parse(%q) error %q does not say which part is wrong", s, err)
			}
			return
		}
		if r.Registry() == "" || r.Repository() == "" || (r.Tag() == "" && r.Digest() == "") {
			t.Fatalf("Parse(%q) = %#v, with an empty part", s, r)
		}
		if len(r.Repository()) > MaxRepositoryLength || len(r.Tag()) > MaxTagLength {
			t.Fatalf("Parse(%q) = %#v, over a length limit", s, r)
		}
		if r.Digest() != "" {
			if err := r.Digest().Validate(); err != nil {
				t.Fatalf("Parse(%q) digest %q: %v", s, r.Digest(), err)
			}
		}
		for _, p := range []string{r.String(), r.Familiar()} {
			back, err := Parse(p)
			if err != nil {
				t.Fatalf("Parse(%q) (printed from %q) error: %v", p, s, err)
			}
			if back != r {
				t.Fatalf("Parse(%q) = %#v, want %#v (from %q)", p, back, r, s)
			}
		}
		named, err := reference.ParseNormalizedNamed(r.String())
		if err != nil {
			t.Fatalf("reference.ParseNormalizedNamed(%q) error: %v", r.String(), err)
		}
		if named.String() != r.String() {
			t.Fatalf("reference.ParseNormalizedNamed(%q).String() = %q", r.String(), named.String())
		}
		// Familiar agrees with distribution/reference, except where that library's short
		// form would name another repository (it drops docker.io from "docker.io/0.0/x",
		// which then reads as host "0.0"): there the round trip above decides.
		if got, want := r.Familiar(), reference.FamiliarString(named); got != want {
			if back, err := Parse(want); err == nil && back == r {
				t.Fatalf("Parse(%q).Familiar() = %q, distribution/reference gives %q", s, got, want)
			}
		}
	})
}
