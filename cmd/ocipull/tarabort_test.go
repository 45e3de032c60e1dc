//go:build unix

package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPullToStdoutWrongLayer pulls an image whose layer is served with wrong bytes
// with -o -: the command fails, and what it wrote to stdout makes GNU tar, Python's
// tarfile and Go's archive/tar fail too, as "| tar -x" or "| docker load" would.
func TestPullToStdoutWrongLayer(t *testing.T) {
	isolate(t)
	host, _ := fakeRegistry(t, true)
	r := runCLI(t, "", "--plain-http", "-q", "pull", host+"/app:v1", "-o", "-")
	if r.code != exitFailure {
		t.Fatalf("pull of a wrong layer = exit %d, stderr %q", r.code, r.stderr)
	}
	out := []byte(r.stdout)
	tr := tar.NewReader(bytes.NewReader(out))
	var goErr error
	for goErr == nil {
		if _, goErr = tr.Next(); goErr == nil {
			_, goErr = io.Copy(io.Discard, tr)
		}
	}
	if goErr == io.EOF {
		t.Error("archive/tar read the stream as a whole archive")
	}
	name := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(name, out, 0o644); err != nil {
		t.Fatal(err)
	}
	readers := map[string][]string{
		"GNU tar":        {"tar", "-xf", name, "-C", t.TempDir()},
		"Python tarfile": {"python3", "-c", "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])", name, t.TempDir()},
	}
	for what, argv := range readers {
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Logf("%s is not installed: not checked", argv[0])
			continue
		}
		if msg, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput(); err == nil {
			t.Errorf("%s read the stream of a failed pull without an error (%q)", what, msg)
		}
	}
}
