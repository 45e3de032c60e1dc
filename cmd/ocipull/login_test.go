package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoginCommandLine(t *testing.T) {
	isolate(t)
	reg := newBasicRegistry(t, "alice", "s3cret")
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no username without a terminal", "", []string{"login", reg.host}, exitUsage,
			"ocipull: login: stdin is not a terminal: pass the username with -u and the password on stdin (--password-stdin)\n"},
		{"no password without a terminal", "", []string{"login", "-u", "alice", reg.host}, exitUsage,
			"ocipull: login: stdin is not a terminal: pass the password on stdin with --password-stdin\n"},
		{"empty stdin", "", []string{"login", "-u", "alice", "--password-stdin", reg.host}, exitUsage,
			"ocipull: --password-stdin: stdin holds no password\n"},
		{"two registries", "", []string{"login", "a.example", "b.example"}, exitUsage,
			"ocipull: login wants at most one REGISTRY, got 2 arguments (see ocipull login --help)\n"},
		{"wrong password", "nope\n", []string{"--plain-http", "login", "-u", "alice", "--password-stdin", reg.host}, exitFailure,
			"ocipull: login to " + reg.host + " failed: unauthorized: incorrect username or password (nothing was stored)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, tt.stdin, tt.args...)
			if got.code != tt.wantCode || got.stderr != tt.wantErr {
				t.Errorf("exit %d, stderr %q; want %d, %q", got.code, got.stderr, tt.wantCode, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")); !os.IsNotExist(err) {
				t.Errorf("config.json written: %v", err)
			}
		})
	}

	got := runCLI(t, "s3cret\n", "--plain-http", "login", "-u", "alice", "--password-stdin", reg.host)
	if got.code != 0 || !strings.HasPrefix(got.stdout, "Login Succeeded: "+reg.host) {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	if got = runCLI(t, "", "--plain-http", "ping", reg.host); got.code != 0 {
		t.Errorf("ping after login: exit %d, stderr %q", got.code, got.stderr)
	}
	if got = runCLI(t, "", "logout", reg.host); got.code != 0 || got.stdout != "logged out of "+reg.host+" (removed from "+filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")+")\n" {
		t.Errorf("logout: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	if got = runCLI(t, "", "logout", reg.host); got.code != 0 || got.stdout != "not logged in to "+reg.host+"\n" {
		t.Errorf("second logout: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}

func TestLoginUncheckedWarns(t *testing.T) {
	isolate(t)
	reg := newBasicRegistry(t, "", "")
	got := runCLI(t, "pw\n", "--plain-http", "login", "-u", "alice", "--password-stdin", reg.host)
	if got.code != 0 || !strings.Contains(got.stderr, "did not ask for credentials: storing them unchecked") {
		t.Errorf("login to an open registry: exit %d, stderr %q", got.code, got.stderr)
	}
}
