package ocistream

import (
	"context"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// PullOptions tunes [Client.Pull]. A nil *PullOptions means the defaults.
type PullOptions struct {
	// Platform selects the image of an index. The default is [ocitypes.HostPlatform]
	// (linux and the host's architecture); arm variants fall back to older ones.
	Platform *ocitypes.Platform
	// AllPlatforms keeps every manifest of an index instead of selecting one; the
	// index itself is then the image that is tagged.
	AllPlatforms bool
	// Concurrency is the number of blobs downloaded at once. The default is the
	// client's [WithConcurrency].
	Concurrency int
	// SkipForeign leaves out foreign (non-distributable) layers, such as Windows base
	// layers, instead of fetching them from the registry or their urls. The tagged
	// root then lists their digests in the annotation
	// [ocitypes.AnnotationAbsentBlobs], so the layout says what it lacks. The default
	// fetches them.
	SkipForeign bool
	// Progress, if set, receives an event when each blob starts, at most every
	// 512 KiB of it, and when it ends. Calls are serialized, never concurrent.
	Progress func(ProgressEvent)
	// Parallel, if set, says how large blobs are fetched over several connections
	// at once (zero fields keep the client's values). The default is the client's
	// [WithParallelDownload].
	Parallel *ParallelDownload
}

// progressStep is how many bytes of a blob pass between BlobProgress events.
const progressStep = 512 << 10

// Pull downloads the image reference names into dst: [Copy] from the registry
// ([Client.Repository]) with the host's platform selected (or the one opts names, or
// every platform). It resolves the reference, fetches the config and layers
// concurrently and streams each straight into dst, which verifies them, then writes
// the manifests and tags the image. Blobs dst already holds are not fetched; a
// partial blob dst kept from an interrupted pull is continued from its offset. It
// returns the descriptor of the tagged root (the platform's manifest, or the index with
// AllPlatforms). Requests: the manifest(s), one GET per missing blob (more when a
// connection breaks); memory: one copy buffer per concurrent blob.
func (c *Client) Pull(ctx context.Context, reference string, dst Destination, opts *PullOptions) (ocitypes.Descriptor, error) {
	var o PullOptions
	if opts != nil {
		o = *opts
	}
	r, err := ref.Parse(reference)
	if err != nil {
		return ocitypes.Descriptor{}, err
	}
	co := &CopyOptions{
		Name:        r,
		Concurrency: o.Concurrency,
		SkipForeign: o.SkipForeign,
		Progress:    o.Progress,
		Logger:      c.logger,
		Parallel:    o.Parallel,
	}
	if co.Concurrency <= 0 {
		co.Concurrency = c.cfg.concurrency
	}
	if !o.AllPlatforms {
		want := ocitypes.HostPlatform()
		if o.Platform != nil {
			want = *o.Platform
		}
		co.Platform = &want
	}
	return copyImage(ctx, "pull", c.RepositoryOf(r), dst, co)
}
