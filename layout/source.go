package layout

import (
	"context"
	"fmt"
	"hash"
	"io"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// Source is one image of a read-only layout, as a source of the copy pipeline: it
// satisfies ocistream.Source and ocistream.RangeSource. Resolve names the image's root
// (an index.json entry); Fetch and FetchRange serve any blob of the layout by digest,
// read from the file in place. A Source is safe for concurrent use.
type Source struct {
	r     *Reader
	image Image
	owned bool // Close closes r
}

// OpenSource opens the layout directory at path (see [OpenReader]) and selects the
// image refName (see [Reader.Image]: a tag, a full name, or "" for the only image).
// Close releases the directory.
func OpenSource(path, refName string) (*Source, error) {
	r, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	return ownedSource(r, refName)
}

// OpenArchiveSource opens the layout tar at path (see [OpenArchive]: the tar is scanned
// once, its headers only) and selects the image refName as [OpenSource] does. Close
// releases the file.
func OpenArchiveSource(path, refName string) (*Source, error) {
	r, err := OpenArchive(path)
	if err != nil {
		return nil, err
	}
	return ownedSource(r, refName)
}

func ownedSource(r *Reader, refName string) (*Source, error) {
	s, err := r.Source(refName)
	if err != nil {
		r.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Source selects the image refName of the layout (see [Reader.Image]) as a source. The
// Source shares r: closing it leaves r open.
func (r *Reader) Source(refName string) (*Source, error) {
	im, err := r.Image(refName)
	if err != nil {
		return nil, err
	}
	return &Source{r: r, image: im}, nil
}

// Image returns the index.json entry the source was opened for.
func (s *Source) Image() Image { return s.image }

// Reference returns the image's full name (its io.containerd.image.name annotation)
// parsed, or the zero Reference when the layout does not name it in full (skopeo
// records only a tag). A copy records the image under this name by default.
func (s *Source) Reference() ref.Reference {
	if s.image.Name == "" {
		return ref.Reference{}
	}
	r, err := ref.Parse(s.image.Name)
	if err != nil {
		return ref.Reference{}
	}
	return r
}

// Resolve returns the descriptor of the image's root manifest or index, as index.json
// gives it (annotations included). It does no I/O.
func (s *Source) Resolve(ctx context.Context) (ocitypes.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return ocitypes.Descriptor{}, err
	}
	return s.image.Descriptor, nil
}

// Fetch opens blob d and returns a reader of its d.Size bytes that hashes them as it
// reads: a file shorter than d.Size ends in an error wrapping io.ErrUnexpectedEOF, a
// wrong digest in one wrapping errdef.ErrDigestMismatch on the read that would have
// returned io.EOF. Bytes past d.Size are never read. A blob missing from the layout
// is an error wrapping errdef.ErrBlobMissing, one that is not a regular file (a
// symlink, a FIFO) wraps errdef.ErrInvalidLayout. It costs one open; the reader
// allocates nothing beyond the hash.
func (s *Source) Fetch(ctx context.Context, d ocitypes.Descriptor) (io.ReadCloser, error) {
	e, err := s.open(ctx, d)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{ctx: ctx, r: io.NewSectionReader(e, 0, d.Size), c: e, d: d, h: d.Digest.Algorithm().Hash()}, nil
}

// FetchRange returns a reader of bytes [offset, offset+length) of blob d, which must
// lie within d.Size. It checks the length only: a file too short ends in an error
// wrapping io.ErrUnexpectedEOF; the caller verifies the digest over the whole blob.
func (s *Source) FetchRange(ctx context.Context, d ocitypes.Descriptor, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length < 0 || offset > d.Size || length > d.Size-offset {
		return nil, fmt.Errorf("blob %s: range %d+%d outside its %d bytes", d.Digest, offset, length, d.Size)
	}
	e, err := s.open(ctx, d)
	if err != nil {
		return nil, err
	}
	return &exactReader{r: io.NewSectionReader(e, offset, length), c: e, left: length, d: d}, nil
}

// open checks d and opens its blob.
func (s *Source) open(ctx context.Context, d ocitypes.Descriptor) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	return s.r.OpenBlob(d.Digest)
}

// Close closes the layout when the source opened it ([OpenSource],
// [OpenArchiveSource]); readers already returned stay readable until their own Close.
func (s *Source) Close() error {
	if s.owned {
		return s.r.Close()
	}
	return nil
}

// verifyingReader reads a blob's bytes, hashing them, and checks size and digest at
// the end.
type verifyingReader struct {
	ctx context.Context
	r   io.Reader
	c   io.Closer
	d   ocitypes.Descriptor
	h   hash.Hash
	n   int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if err := v.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err != io.EOF {
		return n, err
	}
	if v.n < v.d.Size {
		return n, fmt.Errorf("blob %s: %w: %d of %d bytes in the layout", v.d.Digest, io.ErrUnexpectedEOF, v.n, v.d.Size)
	}
	if got := digest.NewDigest(v.d.Digest.Algorithm(), v.h); got != v.d.Digest {
		return n, fmt.Errorf("blob %s: %w: the layout's file hashes to %s (run ocipull verify)", v.d.Digest, errdef.ErrDigestMismatch, got)
	}
	return n, io.EOF
}

func (v *verifyingReader) Close() error { return v.c.Close() }

// exactReader reads a range that must be there whole.
type exactReader struct {
	r    io.Reader
	c    io.Closer
	left int64
	d    ocitypes.Descriptor
}

func (x *exactReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	x.left -= int64(n)
	if err == io.EOF && x.left > 0 {
		return n, fmt.Errorf("blob %s: %w: the layout's file is shorter than %d bytes", x.d.Digest, io.ErrUnexpectedEOF, x.d.Size)
	}
	return n, err
}

func (x *exactReader) Close() error { return x.c.Close() }
