package ocistream_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// TestBlobErrorNamesDigestOnce serves a layer whose bytes are wrong: the error of a
// pull into a directory or a tar, and of a blob read, names the blob once (the
// download and the destination both report it), wraps ErrDigestMismatch, and gives
// the digest to errors.As.
func TestBlobErrorNamesDigestOnce(t *testing.T) {
	const size = 4096
	layer := bytes.Repeat([]byte{5, 0}, size/2) // the image's one layer
	dg := digest.FromBytes(layer)
	reg := fakeregistry.Start(t)
	reg.PushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, fakeregistry.Bytes(layer))
	reg.AddFault(fakeregistry.Fault{Path: dg.Encoded(), Flip: true, FlipAt: size / 2}) // right size, wrong bytes
	c, host := newPullClient(t, reg.Server)
	p := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
	opts := &ocistream.PullOptions{Platform: &p}

	dir, err := layout.OpenDir(filepath.Join(t.TempDir(), "out"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	_, dirErr := c.Pull(t.Context(), host+"/app:v1", dir, opts)
	_, tarErr := c.Pull(t.Context(), host+"/app:v1", layout.NewTar(io.Discard, nil), opts)
	rc, blobErr := c.Blob(t.Context(), host+"/app", ocitypes.Descriptor{Digest: dg, Size: size})
	if blobErr == nil {
		_, blobErr = io.ReadAll(rc)
		rc.Close()
	}
	for name, err := range map[string]error{"pull into a directory": dirErr, "pull into a tar": tarErr, "blob read": blobErr} {
		if !errors.Is(err, ocistream.ErrDigestMismatch) {
			t.Errorf("%s: err = %v, want ErrDigestMismatch", name, err)
			continue
		}
		if n := strings.Count(err.Error(), "blob "+dg.String()); n != 1 {
			t.Errorf("%s: the error names the blob %d times: %v", name, n, err)
		}
		var be *ocistream.BlobError
		if !errors.As(err, &be) || be.Digest != dg {
			t.Errorf("%s: errors.As(BlobError) = %v", name, be)
		}
	}
}
