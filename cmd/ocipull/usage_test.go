package main

import "testing"

func TestUsageErrors(t *testing.T) {
	isolate(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pul", "alpine"}, `ocipull: unknown command "pul"; did you mean "pull"?`},
		{[]string{"tag", "alpine"}, `ocipull: unknown command "tag"; did you mean "tags"?`},
		{[]string{"lgoin"}, `ocipull: unknown command "lgoin"; did you mean "login"?`},
		{[]string{"frobnicate"}, `ocipull: unknown command "frobnicate" (see ocipull --help)`},
		{[]string{"pull", "--bogus", "x"}, `ocipull: unknown flag --bogus (see ocipull pull --help)`},
		{[]string{"--platfrom", "linux/amd64", "pull", "x"}, `ocipull: unknown flag --platfrom; did you mean --platform? (see ocipull --help)`},
		{[]string{"pull", "--outptu", "x", "y"}, `ocipull: unknown flag --outptu; did you mean --output? (see ocipull pull --help)`},
		{[]string{"pull", "-o"}, `ocipull: -o needs a value (see ocipull pull --help)`},
		{[]string{"pull", "--concurrency", "abc", "x"}, `ocipull: --concurrency "abc": not a whole number (see ocipull pull --help)`},
		{[]string{"--plain-http=maybe", "ping", "x"}, `ocipull: --plain-http "maybe": not true or false (see ocipull --help)`},
		{[]string{"completion"}, `ocipull: completion wants a shell: bash, zsh, fish or pwsh (see ocipull completion --help)`},
		{[]string{"completion", "fsh"}, `ocipull: unknown command "fsh"; did you mean "fish"?`},
		{[]string{"resolve", "--format", "{{.Digest", "alpine"}, `ocipull: --format: unclosed action (line 1)`},
	}
	for _, tt := range tests {
		got := runCLI(t, "", tt.args...)
		if got.code != exitUsage || got.stderr != tt.want+"\n" || got.stdout != "" {
			t.Errorf("ocipull %q: exit %d, stdout %q, stderr %q; want %d, %q", tt.args, got.code, got.stdout, got.stderr, exitUsage, tt.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	isolate(t)
	for _, shell := range []string{"bash", "zsh", "fish", "pwsh"} {
		got := runCLI(t, "", "completion", shell)
		if got.code != 0 || len(got.stdout) < 100 || got.stderr != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, got.code, len(got.stdout), got.stderr)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"pull", "pull", 0}, {"pul", "pull", 1}, {"lgoin", "login", 1}, {"abc", "", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
