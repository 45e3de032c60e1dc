package ocistream

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// Repository is a handle on one repository of a registry, opened for one reference (a
// tag or a digest) by [Client.Repository]. The reference is parsed once, there. It is a
// [Source] (resolve, fetch manifests and blobs, byte ranges) and a [Destination]
// (push). It holds no connection of its own: every call goes through its Client, whose
// token cache it shares.
type Repository struct {
	c   *Client
	ref ref.Reference
}

// Repository returns a handle on the repository of reference ("ubuntu",
// "ghcr.io/owner/app:v1", "localhost:5000/a@sha256:..."), for that tag or digest. It
// makes no request.
func (c *Client) Repository(reference string) (*Repository, error) {
	r, err := ref.Parse(reference)
	if err != nil {
		return nil, err
	}
	return c.RepositoryOf(r), nil
}

// RepositoryOf is [Client.Repository] for a reference already parsed.
func (c *Client) RepositoryOf(r ref.Reference) *Repository {
	return &Repository{c: c, ref: r}
}

// Reference returns the reference the repository was opened for.
func (r *Repository) Reference() ref.Reference { return r.ref }

// Resolve returns the descriptor of the manifest or index the repository's reference
// names: one HEAD request (and a GET when the registry omits Docker-Content-Digest).
func (r *Repository) Resolve(ctx context.Context) (ocitypes.Descriptor, error) {
	return r.c.resolve(ctx, r.ref)
}

// Fetch returns a verifying reader of the manifest, index or blob d of the repository:
// manifests and indexes come from the manifests endpoint (one GET, bounded by
// [ocitypes.MaxManifestSize]), other blobs from the blobs endpoint, resuming a broken
// connection as [Client.Blob] does.
func (r *Repository) Fetch(ctx context.Context, d ocitypes.Descriptor) (io.ReadCloser, error) {
	if ocitypes.IsManifest(d.MediaType) || ocitypes.IsIndex(d.MediaType) {
		got, body, err := r.c.manifest(ctx, r.ref.WithDigest(d.Digest))
		if err != nil {
			return nil, err
		}
		if got.Size != d.Size {
			return nil, fmt.Errorf("manifest %s is %d bytes, descriptor says %d: %w", d.Digest, got.Size, d.Size, ErrDigestMismatch)
		}
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	return r.c.blob(ctx, r.ref, d)
}

// FetchRange returns a reader of bytes [offset, offset+length) of blob d, resuming a
// broken connection within the range. It checks the length, not the digest.
func (r *Repository) FetchRange(ctx context.Context, d ocitypes.Descriptor, offset, length int64) (io.ReadCloser, error) {
	if err := checkBlobDescriptor(d); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset+length > d.Size {
		return nil, fmt.Errorf("blob %s: range %d+%d outside its %d bytes", d.Digest, offset, length, d.Size)
	}
	rr, err := r.c.openRange(ctx, r.ref, d, offset, offset+length)
	if err != nil {
		return nil, errdef.Blob(d.Digest, err)
	}
	return rr, nil
}

// fetchRoot resolves and fetches the root manifest with one GET (the pipeline's
// rootFetcher).
func (r *Repository) fetchRoot(ctx context.Context) (ocitypes.Descriptor, []byte, error) {
	return r.c.manifest(ctx, r.ref)
}

// alternatives is the number of places besides the registry that serve d: the urls of
// a foreign layer.
func (r *Repository) alternatives(d ocitypes.Descriptor) int { return len(d.URLs) }

// fetchFrom opens bytes [offset, size) of d, unverified, from the registry or, when it
// cannot serve them, from the descriptor's urls (see Client.openBlobSource).
func (r *Repository) fetchFrom(ctx context.Context, d ocitypes.Descriptor, from int, offset int64) (io.ReadCloser, int, error) {
	if err := checkBlobDescriptor(d); err != nil {
		return nil, from, err
	}
	return r.c.openBlobSource(ctx, r.ref, d, from, offset)
}
