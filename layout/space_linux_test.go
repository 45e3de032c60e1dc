package layout

import (
	"errors"
	"syscall"
	"testing"
)

// TestOpenBlobChecksFreeSpace opens a blob larger than any disk: refused at once with
// ENOSPC, leaving nothing behind.
func TestOpenBlobChecksFreeSpace(t *testing.T) {
	d := openDir(t, t.TempDir())
	desc := newBlob("application/octet-stream", []byte("x")).desc
	desc.Size = 1 << 60
	_, err := d.OpenBlob(t.Context(), desc)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("OpenBlob(1 EiB) = %v, want ENOSPC", err)
	}
	if partials, _ := d.PartialDownloads(); len(partials) > 0 {
		t.Errorf("partial downloads left: %q", partials)
	}
}
