package ocistream

import (
	"context"
	"io"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// Destination receives the blobs and the name of an image: layout.Dir (an OCI image
// layout directory), layout.Tar (the same layout as one tar stream), a [Repository]
// (a push). Manifests and indexes are blobs like the others, received after every blob
// they reference. The copy pipeline ([Copy], [Client.Pull]) calls its methods from
// several goroutines at once.
type Destination interface {
	// Exists reports whether the destination already holds d complete, so that a copy
	// skips it.
	Exists(ctx context.Context, d ocitypes.Descriptor) (bool, error)
	// OpenBlob prepares to receive the blob d. It returns an error wrapping
	// [ErrAlreadyExists] when the destination already holds d complete, in which case
	// nothing is downloaded. Otherwise the returned writer may already hold a verified
	// prefix of d (a download interrupted earlier); its Offset says how long, and the
	// caller writes the rest starting there.
	OpenBlob(ctx context.Context, d ocitypes.Descriptor) (BlobWriter, error)
	// Tag records name as an image whose root is root, a manifest or index whose blobs
	// (and, for an index, the blobs of the manifests it keeps) were all committed before.
	Tag(ctx context.Context, name ref.Reference, root ocitypes.Descriptor) error
}

// BlobWriter receives the bytes of one blob. Write is called from one goroutine at a time.
// It is an alias of an interface literal so that destinations in other packages (which
// declare the same literal) satisfy [Destination] without importing this package.
type BlobWriter = interface {
	io.Writer
	// Offset is the number of bytes the writer held before the first Write: the length
	// of a partial download being resumed, zero otherwise.
	Offset() int64
	// Commit checks that the bytes written, after Offset, make exactly the descriptor's
	// size and digest, and publishes the blob. A short blob is an error wrapping
	// [io.ErrUnexpectedEOF]; a wrong one wraps [ErrDigestMismatch] and is discarded,
	// so a wrong byte never reaches the destination.
	Commit() error
	// Close releases the writer. After Commit it does nothing; without Commit the
	// destination keeps what it can for a later resume, or discards it.
	Close() error
}

// ProgressKind says what a [ProgressEvent] reports.
type ProgressKind int

const (
	// BlobStarted: a blob download begins; Offset is the length already held (resumed).
	BlobStarted ProgressKind = iota + 1
	// BlobProgress: Offset bytes of the blob are now held.
	BlobProgress
	// BlobDone: the blob was verified and committed; Offset equals its size.
	BlobDone
	// BlobSkipped: the destination already held the blob; nothing was downloaded.
	BlobSkipped
	// BlobFailed: the blob could not be downloaded or verified; Err says why.
	BlobFailed
	// BlobQueued: the pull needs this blob. Sent for every blob of the pull, before
	// any other event, so a display knows the total up front.
	BlobQueued
)

// String returns the kind's name in lower case ("started", "progress", ...).
func (k ProgressKind) String() string {
	switch k {
	case BlobStarted:
		return "started"
	case BlobProgress:
		return "progress"
	case BlobDone:
		return "done"
	case BlobSkipped:
		return "skipped"
	case BlobFailed:
		return "failed"
	case BlobQueued:
		return "queued"
	}
	return "unknown"
}

// ProgressEvent reports the state of one blob of a pull.
type ProgressEvent struct {
	Kind       ProgressKind
	Descriptor ocitypes.Descriptor
	// Offset is the number of bytes of the blob held so far.
	Offset int64
	// Err is set for BlobFailed.
	Err error
}
