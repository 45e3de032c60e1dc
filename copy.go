package ocistream

import (
	"context"
	"io"

	"github.com/ocistream/ocistream/ocitypes"
)

// Source serves an image graph: a registry repository ([Client.Repository]), an OCI
// image layout directory or an OCI layout tar (package layout). A source is opened for
// one image: Resolve names its root, Fetch serves that root and everything it
// references. Sources are safe for concurrent use.
type Source interface {
	// Resolve returns the descriptor of the root manifest or index the source was
	// opened for.
	Resolve(ctx context.Context) (ocitypes.Descriptor, error)
	// Fetch returns a reader of the manifest, index or blob d. The reader checks size
	// and digest as it reads: a short body ends in an error wrapping
	// [io.ErrUnexpectedEOF], a wrong one in [ErrDigestMismatch] on the read that would
	// have returned [io.EOF]. The caller must Close it.
	Fetch(ctx context.Context, d ocitypes.Descriptor) (io.ReadCloser, error)
}

// RangeSource is a [Source] that can serve byte ranges of a blob: a download that broke
// resumes from where it stopped, and a large blob can be fetched over several
// connections at once.
type RangeSource interface {
	Source
	// FetchRange returns a reader of bytes [offset, offset+length) of blob d. It checks
	// the length only: the caller verifies the digest over the whole blob.
	FetchRange(ctx context.Context, d ocitypes.Descriptor, offset, length int64) (io.ReadCloser, error)
}
