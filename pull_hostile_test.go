//go:build unix

package ocistream_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// TestPullIntoPlantedLayout pulls into layouts where someone sharing the directory
// planted links, FIFOs and hard links where the pull's partial downloads and blobs
// go: a pull either refuses the planted file, naming it, or replaces it with the
// verified blob; it never blocks, never writes outside the layout, and what it
// leaves verifies.
func TestPullIntoPlantedLayout(t *testing.T) {
	const size = 4096
	layer := bytes.Repeat([]byte{9, 0}, size/2) // the image's first layer
	dg := digest.FromBytes(layer)
	tests := []struct {
		name    string
		plant   func(t *testing.T, dir, victim string)
		refused bool
	}{
		{"symlink partial", func(t *testing.T, dir, victim string) { must(t, os.Symlink(victim, partialPath(dir, dg))) }, true},
		{"hard link partial", func(t *testing.T, dir, victim string) { must(t, os.Link(victim, partialPath(dir, dg))) }, true},
		{"fifo partial", func(t *testing.T, dir, victim string) { must(t, syscall.Mkfifo(partialPath(dir, dg), 0o644)) }, true},
		{"symlink blob", func(t *testing.T, dir, victim string) { must(t, os.Symlink(victim, blobPath(dir, dg))) }, false},
		{"fifo blob", func(t *testing.T, dir, victim string) { must(t, syscall.Mkfifo(blobPath(dir, dg), 0o644)) }, false},
		{"hard linked blob", func(t *testing.T, dir, victim string) {
			copyOut := filepath.Join(t.TempDir(), "dedup")
			must(t, os.WriteFile(copyOut, layer, 0o644))
			must(t, os.Link(copyOut, blobPath(dir, dg)))
		}, false},
	}
	reg := fakeregistry.Start(t)
	reg.PushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"},
		fakeregistry.Bytes(layer), fakeregistry.Bytes(bytes.Repeat([]byte{9, 1}, size/2)))
	c, host := newPullClient(t, reg.Server)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			victimContent := bytes.Repeat([]byte("v"), size) // the layer's size: a link to it looks complete
			victim := filepath.Join(t.TempDir(), "victim")
			must(t, os.WriteFile(victim, victimContent, 0o644))
			path := filepath.Join(t.TempDir(), "out")
			dir, err := layout.OpenDir(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			must(t, os.MkdirAll(filepath.Join(path, ".ingest"), 0o755))
			must(t, os.MkdirAll(filepath.Join(path, "blobs", "sha256"), 0o755))
			tt.plant(t, path, victim)

			done := make(chan error, 1)
			go func() {
				p := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
				_, err := c.Pull(t.Context(), host+"/app:v1", dir, &ocistream.PullOptions{Platform: &p})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Pull blocked")
			}
			if got, _ := os.ReadFile(victim); !bytes.Equal(got, victimContent) {
				t.Error("the pull wrote to a file outside the layout")
			}
			if tt.refused {
				var nr *layout.NotRegularError
				if !errors.As(err, &nr) || !strings.Contains(err.Error(), partialPath(path, dg)) {
					t.Fatalf("Pull = %v, want a *layout.NotRegularError naming the partial", err)
				}
				if strings.Count(err.Error(), "blob "+dg.String()) != 1 {
					t.Errorf("the error names the blob more than once: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pull = %v", err)
			}
			rep, err := layout.Verify(t.Context(), path, nil)
			if err != nil || !rep.OK() {
				t.Errorf("Verify after the pull = %+v, %v", rep, err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func partialPath(dir string, dg digest.Digest) string {
	return filepath.Join(dir, ".ingest", dg.Algorithm().String()+"-"+dg.Encoded()+".partial")
}

func blobPath(dir string, dg digest.Digest) string {
	return filepath.Join(dir, "blobs", dg.Algorithm().String(), dg.Encoded())
}
