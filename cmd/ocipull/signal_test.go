//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVerifyStopsOnFirstSignal verifies a layout whose layer is 16 GiB (sparse: fast to
// make, long to hash) and sends SIGTERM once the walk has started: verify must stop at
// once and exit 130, not finish hashing.
func TestVerifyStopsOnFirstSignal(t *testing.T) {
	isolate(t)
	l := newVerifyLayout(t, false)
	if err := os.Truncate(l.blobFile(l.layer.Digest), 16<<30); err != nil {
		t.Skip("no sparse file here:", err)
	}
	argv, _ := json.Marshal([]string{"ocipull", "-v", "--concurrency", "1", "verify", l.dir})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OCIPULL_TEST_CHILD="+string(argv))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "checked ") {
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("verify did not stop on SIGTERM")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Errorf("verify after SIGTERM = %v, want exit %d; stderr %q", err, exitInterrupted, rest)
	}
}

// TestVerifyCommandPlantedFiles runs verify on layouts whose layer is a FIFO or a
// link to a copy outside: it reports them as not-regular, fails, and never blocks.
func TestVerifyCommandPlantedFiles(t *testing.T) {
	for _, kind := range []string{"fifo", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			isolate(t)
			l := newVerifyLayout(t, false)
			blob := l.blobFile(l.layer.Digest)
			data, err := os.ReadFile(blob)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(blob)
			if kind == "fifo" {
				err = syscall.Mkfifo(blob, 0o644)
			} else {
				outside := t.TempDir() + "/copy"
				os.WriteFile(outside, data, 0o644)
				err = os.Symlink(outside, blob)
			}
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan result, 1)
			go func() { done <- runCLI(t, "", "verify", l.dir) }()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("verify blocked")
			}
			if r.code != exitFailure || !strings.HasPrefix(r.stdout, "not-regular "+l.layer.Digest.String()) {
				t.Errorf("verify = exit %d, stdout %q, stderr %q; want 1 and a not-regular line", r.code, r.stdout, r.stderr)
			}
		})
	}
}
