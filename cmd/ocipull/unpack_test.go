package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnpackUsage(t *testing.T) {
	isolate(t)
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A registry that refuses connections: the unpack must fail before it.
	closed := "127.0.0.1:1"
	tests := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"unpack"}, exitUsage, "unpack wants SRC and DIR, got 0 arguments"},
		{[]string{"unpack", "alpine"}, exitUsage, "unpack wants SRC and DIR, got 1 arguments"},
		{[]string{"unpack", "a", "b", "c"}, exitUsage, "got 3 arguments"},
		{[]string{"--all-platforms", "unpack", "alpine", "d"}, exitUsage, "--all-platforms does not apply"},
		{[]string{"unpack", "oci:missing-layout", "d"}, exitFailure, "missing-layout: no such file or directory"},
		{[]string{"unpack", "Invalid//Ref", "d"}, exitFailure, "invalid reference"},
		{[]string{"unpack", "alpine", ""}, exitUsage, "DIR is empty"},
		{[]string{"--plain-http", "unpack", closed + "/app:v1", nonEmpty}, exitFailure, "is not empty (overwrite it with --force)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := runCLI(t, "", tt.args...)
			if got.code != tt.code || !strings.Contains(got.stderr, tt.says) || strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line saying %q", got.code, got.stderr, tt.code, tt.says)
			}
		})
	}
	if entries, _ := os.ReadDir(nonEmpty); len(entries) != 1 {
		t.Errorf("the non-empty DIR was changed: %v", entries)
	}
}
