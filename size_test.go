package ocistream_test

import (
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/internal/fakeregistry"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// TestBlobSizeLimit asks for a blob whose descriptor claims more than the client's
// limit: refused with ErrSizeExceedsLimit before any blob request, for a read and for
// a pull.
func TestBlobSizeLimit(t *testing.T) {
	reg := fakeregistry.Start(t)
	reg.PushImage("app", "v1", ocitypes.Platform{OS: "linux", Architecture: "amd64"}, fakeregistry.Generated(3, 4096))
	def, host := newPullClient(t, reg.Server)
	c, err := ocistream.New(ocistream.WithPlainHTTP(host), ocistream.WithMaxBlobSize(64)) // smaller than every blob of the image
	if err != nil {
		t.Fatal(err)
	}
	huge := ocitypes.Descriptor{Digest: digest.FromString("huge"), Size: ocistream.DefaultMaxBlobSize + 1}
	_, readErr := def.Blob(t.Context(), host+"/app", huge)
	p := ocitypes.Platform{OS: "linux", Architecture: "amd64"}
	_, pullErr := c.Pull(t.Context(), host+"/app:v1", layout.NewTar(io.Discard, nil), &ocistream.PullOptions{Platform: &p})
	for name, err := range map[string]error{"blob read with the default limit": readErr, "pull with a 64-byte limit": pullErr} {
		if !errors.Is(err, ocistream.ErrSizeExceedsLimit) {
			t.Errorf("%s: err = %v, want ErrSizeExceedsLimit", name, err)
		}
	}
	if n := reg.BlobGets(); n != 0 {
		t.Errorf("%d blob requests made, want none", n)
	}
	if _, err := ocistream.New(ocistream.WithMaxBlobSize(0)); err == nil {
		t.Error("WithMaxBlobSize(0) accepted")
	}
}
