package main

import (
	"strings"
	"testing"
)

// TestCredentialsTypedIntoArgumentsAreNotEchoed types a password into a reference or
// a registry name: the error says what is wrong without repeating it.
func TestCredentialsTypedIntoArgumentsAreNotEchoed(t *testing.T) {
	isolate(t)
	for _, args := range [][]string{
		{"pull", "alice:s3cret@registry.example.com/team/app:v1"},
		{"manifest", "alice:s3cret@registry.example.com:5000/team/app"},
		{"ping", "alice:s3cret@registry.example.com"},
		{"tags", "https://alice:s3cret@registry.example.com/team/app"},
	} {
		r := runCLI(t, "", args...)
		if r.code == 0 || strings.Contains(r.stderr+r.stdout, "s3cret") {
			t.Errorf("ocipull %q = exit %d, stderr %q: want a failure that does not echo the password", args, r.code, r.stderr)
		}
	}
}
