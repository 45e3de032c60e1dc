//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/ocitypes"
)

// TestMain lets a test run the command in a child process (see runChild).
func TestMain(m *testing.M) {
	if args := os.Getenv("OCIPULL_TEST_CHILD"); args != "" {
		var argv []string
		json.Unmarshal([]byte(args), &argv)
		os.Args = argv
		main() // with its signal handling
		return
	}
	os.Exit(m.Run())
}

// stuckRegistry serves one image whose layer stops half way: the pull writes half a
// tar and waits. started is closed when the layer's first half is sent.
func stuckRegistry(t *testing.T) (host string, started chan struct{}) {
	return fakeRegistry(t, false)
}

// fakeRegistry serves the image of stuckRegistry; with lie set its layer is served
// whole, with wrong bytes, instead of stopping half way.
func fakeRegistry(t *testing.T, lie bool) (host string, started chan struct{}) {
	t.Helper()
	layer := bytes.Repeat([]byte("layer bytes "), 100000)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	desc := func(mt string, b []byte) ocitypes.Descriptor {
		return ocitypes.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocitypes.MediaTypeOCIManifest,
		"config": desc(ocitypes.MediaTypeOCIConfig, config), "layers": []ocitypes.Descriptor{desc(ocitypes.MediaTypeOCILayer, layer)}})
	started = make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", ocitypes.MediaTypeOCIManifest)
			w.Write(manifest)
		case strings.HasSuffix(r.URL.Path, digest.FromBytes(config).String()):
			w.Write(config)
		case strings.HasSuffix(r.URL.Path, digest.FromBytes(layer).String()):
			w.Header().Set("Content-Length", fmt.Sprint(len(layer)))
			if lie {
				w.Write(bytes.ToUpper(layer))
				return
			}
			w.Write(layer[:len(layer)/2])
			w.(http.Flusher).Flush()
			select {
			case <-started:
			default:
				close(started)
			}
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), started
}

// TestTarOutputKilled kills a pull into FILE.tar with SIGKILL half way through a
// layer: nothing may be left in the directory (on Linux the tar is an unnamed file
// until the pull succeeds), and a later run removes what an older run left.
func TestTarOutputKilled(t *testing.T) {
	isolate(t)
	host, started := stuckRegistry(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "app.tar")
	argv, _ := json.Marshal([]string{"ocipull", "--plain-http", "-q", "pull", host + "/app:v1", "-o", out})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OCIPULL_TEST_CHILD="+string(argv))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("the pull never reached the layer")
	}
	time.Sleep(100 * time.Millisecond) // let the bytes reach the file
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	entries, _ := os.ReadDir(dir)
	if hasUnnamedFiles() && len(entries) != 0 {
		t.Errorf("a killed pull left %v", entries)
	}

	// What a run without O_TMPFILE leaves (a named temporary, unlocked since its
	// writer died) is removed by the next run; one that a live writer holds is not.
	stale := filepath.Join(dir, ".app.tar.1234.partial")
	live := filepath.Join(dir, ".app.tar.5678.partial")
	os.WriteFile(stale, []byte("half a tar"), 0o644)
	os.WriteFile(live, []byte("a tar being written"), 0o644)
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lockTemp(f)
	if err := writeFileAtomic(out, func(w io.Writer) error { _, err := io.WriteString(w, "tar"); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); err == nil {
		t.Error("the stale temporary file of a killed run is still there")
	}
	if _, err := os.Lstat(live); err != nil {
		t.Error("the temporary file of a live writer was removed")
	}
}

// hasUnnamedFiles reports whether this system creates unnamed files in the test's
// temporary directory.
func hasUnnamedFiles() bool {
	f, ok := createUnnamed(os.TempDir())
	if ok {
		f.Close()
	}
	return ok
}
