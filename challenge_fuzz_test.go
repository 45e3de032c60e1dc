package ocistream_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ocistream/ocistream"
)

// FuzzParseChallenges checks that ParseChallenges never panics, that its errors wrap
// ErrInvalidChallenge, and that an accepted input printed back with Challenge.String,
// as one header value or as one value per challenge, parses to the same challenges.
// A "\n" in the input separates header values.
func FuzzParseChallenges(f *testing.F) {
	for _, tc := range allChallengeCases() {
		f.Add(strings.Join(tc.headers, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		headers := strings.Split(in, "\n")
		cs, err := ocistream.ParseChallenges(headers...)
		if err != nil {
			if !errors.Is(err, ocistream.ErrInvalidChallenge) {
				t.Fatalf("ParseChallenges(%q) error %v does not wrap ErrInvalidChallenge", headers, err)
			}
			return
		}
		strs := make([]string, len(cs))
		for i, c := range cs {
			if c.Params == nil {
				t.Fatalf("ParseChallenges(%q): challenge %d has nil Params", headers, i)
			}
			if c.Token68 != "" && len(c.Params) > 0 {
				t.Fatalf("ParseChallenges(%q): challenge %d has both a token68 and params", headers, i)
			}
			if c.Scheme != strings.ToLower(c.Scheme) {
				t.Fatalf("ParseChallenges(%q): scheme %q not lower-case", headers, c.Scheme)
			}
			strs[i] = c.String()
		}
		for _, again := range [][]string{{strings.Join(strs, ", ")}, strs} {
			got, err := ocistream.ParseChallenges(again...)
			if err != nil {
				t.Fatalf("ParseChallenges(%q) of the printed form of %q: %v", again, headers, err)
			}
			if len(got) == 0 && len(cs) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, cs) {
				t.Fatalf("round trip of %q through %q:\n\t%#v\nwant\n\t%#v", headers, again, got, cs)
			}
		}
	})
}

// FuzzParseScope checks that ParseScope and ParseScopes never panic, that their errors
// wrap ErrInvalidScope, that String round-trips, and that MergeScopes keeps every
// action it was given and is idempotent.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"repository:library/ubuntu:pull",
		"repository:localhost:5000/a/b:pull,push",
		"repository:samalba/my-app:pull,push",
		"registry:catalog:*",
		"repository(plugin):foo/bar:pull",
		"repository:library/hello-world:metadata_read",
		"artifact-repository:repo:pull",
		"repository:LOCALDOMAIN/fooo:pull",
		"repository:*:*",
		"repository:[::1]:5000/a:delete,pull",
		"repository:foo/bar:pull,push repository:foo/baz:pull repository:foo/foo:push",
		"repository:proj/app:pull repository:proj/base:pull",
		"aws",
		"*",
		"",
		"repository:foo:",
		"repository::pull",
		"repository:foo:pull,,push",
		"repository():foo:pull",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if s, err := ocistream.ParseScope(in); err != nil {
			if !errors.Is(err, ocistream.ErrInvalidScope) {
				t.Fatalf("ParseScope(%q) error %v does not wrap ErrInvalidScope", in, err)
			}
		} else {
			again, err := ocistream.ParseScope(s.String())
			if err != nil {
				t.Fatalf("ParseScope(%q) of ParseScope(%q).String(): %v", s.String(), in, err)
			}
			if !reflect.DeepEqual(again, s) {
				t.Fatalf("round trip of %q through %q: %#v, want %#v", in, s.String(), again, s)
			}
			if !s.Contains(s) {
				t.Fatalf("%#v does not contain itself", s)
			}
		}

		scopes, err := ocistream.ParseScopes(in)
		if err != nil {
			if !errors.Is(err, ocistream.ErrInvalidScope) {
				t.Fatalf("ParseScopes(%q) error %v does not wrap ErrInvalidScope", in, err)
			}
			return
		}
		str := ocistream.ScopeString(scopes)
		again, err := ocistream.ParseScopes(str)
		if err != nil {
			t.Fatalf("ParseScopes(%q) of ScopeString(ParseScopes(%q)): %v", str, in, err)
		}
		if !reflect.DeepEqual(again, scopes) {
			t.Fatalf("round trip of %q through %q: %#v, want %#v", in, str, again, scopes)
		}
		merged := ocistream.MergeScopes(scopes...)
		if !ocistream.ScopesContain(merged, scopes) || !ocistream.ScopesContain(scopes, merged) {
			t.Fatalf("MergeScopes(%q) = %q, not the same set", in, ocistream.ScopeString(merged))
		}
		if twice := ocistream.MergeScopes(merged...); !reflect.DeepEqual(twice, merged) {
			t.Fatalf("MergeScopes is not idempotent on %q: %q then %q", in, ocistream.ScopeString(merged), ocistream.ScopeString(twice))
		}
	})
}
