package ref

import (
	"strings"
	"testing"
)

// TestParseErrorRedactsUserinfo types credentials into references: the error quotes
// the reference without them.
func TestParseErrorRedactsUserinfo(t *testing.T) {
	for _, s := range []string{
		"alice:s3cret@registry.example.com/team/app:v1",
		"alice:s3cret@registry.example.com:5000/team/app",
		"https://alice:s3cret@registry.example.com/team/app",
		"alice:s3cret@ghcr.io",
		"s3cret@ghcr.io/a/b",
	} {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", s)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "REDACTED") {
			t.Errorf("Parse(%q) = %v: the password is echoed", s, err)
		}
	}
}

func TestRedactUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"alice:pw@host/repo":               "REDACTED@host/repo",
		"https://alice:pw@host:5000/repo":  "https://REDACTED@host:5000/repo",
		"alice:pw@host":                    "REDACTED@host",
		"alice:pw@host.example.com:5000":   "REDACTED@host.example.com:5000",
		"ubuntu@sha256:0123":               "ubuntu@sha256:0123",
		"ghcr.io/a/b@sha256:0123":          "ghcr.io/a/b@sha256:0123",
		"docker.io/library/ubuntu:22.04":   "docker.io/library/ubuntu:22.04",
		"localhost:5000/a/b@sha512:abcdef": "localhost:5000/a/b@sha512:abcdef",
	} {
		if got := RedactUserinfo(in); got != want {
			t.Errorf("RedactUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
