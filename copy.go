package ocistream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
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

// CopyOptions tunes [Copy]. A nil *CopyOptions copies the whole image as it is, with
// the defaults below.
type CopyOptions struct {
	// Name is the name the destination records for the image: the tag and full name
	// in a layout's index.json, the tag a [Repository] destination pushes when it was
	// opened for a digest. The default is the source's own reference, when it has one
	// (a [Repository] has; a layout source has when its index.json names the image).
	Name ref.Reference
	// Platform, when set, copies the one manifest of an index that matches it (arm
	// variants fall back to older ones) and makes that manifest the copied image. The
	// default, nil, copies every manifest and the index itself, so the destination
	// holds the image under the source's digest.
	Platform *ocitypes.Platform
	// Concurrency is the number of blobs transferred at once. The default is
	// [DefaultConcurrency].
	Concurrency int
	// SkipForeign leaves out foreign (non-distributable) layers, such as Windows base
	// layers, instead of copying them. The copied root then lists their digests in the
	// annotation [ocitypes.AnnotationAbsentBlobs]. The default copies them.
	SkipForeign bool
	// Progress, if set, receives an event when each blob starts, at most every
	// 512 KiB of it, and when it ends. Calls are serialized, never concurrent.
	Progress func(ProgressEvent)
	// Parallel, when the source is a registry ([Repository]), says how a large blob is
	// fetched over several connections at once into a destination that takes byte
	// ranges (layout.Dir); zero fields keep the source client's values. The default is
	// the source client's [WithParallelDownload].
	Parallel *ParallelDownload
	// Logger receives debug records of decisions the copy makes (a restart, a mount).
	// The default discards them.
	Logger *slog.Logger
}

// Copy copies the image src was opened for into dst: it resolves the root, walks the
// graph (an index, its manifests, their configs and layers), streams every blob dst
// lacks from src into dst, several at once and largest first, then writes the
// manifests (children before parents) and names the image with dst.Tag. Every byte is
// verified against its digest before dst commits it, and nothing is tagged unless the
// whole graph arrived. Blobs dst already holds are skipped; a partial blob dst kept
// from an interrupted copy is continued from its offset when src serves byte ranges.
// Between two repositories of one registry, blobs are mounted instead of uploaded.
//
// It returns the descriptor of the tagged root. Requests: the manifests, one fetch
// per blob dst lacks; memory: the manifests, and one copy buffer per blob in flight.
func Copy(ctx context.Context, src Source, dst Destination, opts *CopyOptions) (ocitypes.Descriptor, error) {
	return copyImage(ctx, "copy", src, dst, opts)
}

// copyImage is Copy, its errors starting with verb and the image's name.
func copyImage(ctx context.Context, verb string, src Source, dst Destination, opts *CopyOptions) (ocitypes.Descriptor, error) {
	cp := newCopier(src, dst, opts)
	name := cp.opts.Name
	if name.IsZero() {
		if named, ok := src.(interface{ Reference() ref.Reference }); ok {
			name = named.Reference()
		}
	}
	what := verb
	if !name.IsZero() {
		what = verb + " " + name.String()
	}
	if name.IsZero() {
		return ocitypes.Descriptor{}, fmt.Errorf("%s: the source names no image and CopyOptions.Name is empty: nothing to tag it with", what)
	}
	g, err := cp.walk(ctx)
	if err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := cp.transfer(ctx, g); err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := dst.Tag(ctx, name, g.root); err != nil {
		return ocitypes.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	return g.root, nil
}

// copier is the state of one Copy.
type copier struct {
	src      Source
	dst      Destination
	opts     CopyOptions
	progress func(ProgressEvent)
	logger   *slog.Logger
	// parallel is the state of parallel downloads from a registry source; nil for
	// other sources.
	parallel *pullParallel
	// mountFrom is the source repository when src and dst are repositories of one
	// registry: blobs are then mounted rather than uploaded.
	mountFrom *Repository
}

func newCopier(src Source, dst Destination, opts *CopyOptions) *copier {
	cp := &copier{src: src, dst: dst}
	if opts != nil {
		cp.opts = *opts
	}
	if cp.opts.Concurrency <= 0 {
		cp.opts.Concurrency = DefaultConcurrency
	}
	cp.logger = cp.opts.Logger
	if cp.logger == nil {
		cp.logger = slog.New(slog.DiscardHandler)
	}
	cp.progress = serializeProgress(cp.opts.Progress)
	from, fromRepo := src.(*Repository)
	if fromRepo {
		cp.parallel = from.c.newParallel(cp.opts.Parallel)
	}
	to, toRepo := any(dst).(*Repository)
	if fromRepo && toRepo && from.ref.Registry() == to.ref.Registry() && from.ref.Repository() != to.ref.Repository() {
		cp.mountFrom = from
	}
	return cp
}

// graph is what a copy must write: the blobs, then the manifests, then the tag.
type graph struct {
	root      ocitypes.Descriptor
	manifests []manifestBlob        // children before parents
	blobs     []ocitypes.Descriptor // configs, layers and other blobs, de-duplicated
	absent    []digest.Digest       // foreign layers left out
	seen      map[digest.Digest]bool
}

type manifestBlob struct {
	desc ocitypes.Descriptor
	body []byte
}

// rootFetcher is a source that resolves and fetches its root in one request (a
// registry answers a GET by tag with the bytes and their digest).
type rootFetcher interface {
	fetchRoot(ctx context.Context) (ocitypes.Descriptor, []byte, error)
}

// walk resolves the root and fetches every manifest of the graph.
func (cp *copier) walk(ctx context.Context) (*graph, error) {
	var root ocitypes.Descriptor
	var body []byte
	var err error
	if rf, ok := cp.src.(rootFetcher); ok {
		root, body, err = rf.fetchRoot(ctx)
	} else if root, err = cp.src.Resolve(ctx); err == nil {
		body, err = cp.fetchManifest(ctx, root)
	}
	if err != nil {
		return nil, err
	}
	g := &graph{root: root, seen: map[digest.Digest]bool{}}
	if err := cp.walkManifest(ctx, g, root, body, 0); err != nil {
		return nil, err
	}
	if cp.opts.Platform != nil && ocitypes.IsIndex(root.MediaType) {
		// One platform was kept: the image is the selected manifest, listed first (its
		// parents follow it); the indexes above it are not written.
		g.manifests = g.manifests[:1]
		g.root = g.manifests[0].desc
	}
	if len(g.absent) > 0 {
		names := make([]string, len(g.absent))
		for i, d := range g.absent {
			names[i] = d.String()
		}
		g.root.Annotations = maps.Clone(g.root.Annotations)
		if g.root.Annotations == nil {
			g.root.Annotations = map[string]string{}
		}
		g.root.Annotations[ocitypes.AnnotationAbsentBlobs] = strings.Join(names, ",")
	}
	slices.SortStableFunc(g.blobs, func(a, b ocitypes.Descriptor) int {
		return int(min(max(b.Size-a.Size, -1), 1)) // largest first: the longest transfers start first
	})
	return g, nil
}

// fetchManifest reads the manifest or index d from the source, verified and bounded.
func (cp *copier) fetchManifest(ctx context.Context, d ocitypes.Descriptor) ([]byte, error) {
	if d.Size > ocitypes.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes: %w", d.Digest, d.Size, ErrSizeExceedsLimit)
	}
	rc, err := cp.src.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := readLimited(rc, ocitypes.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	return body, nil
}

// walkManifest adds desc (a manifest or index with body) and what it references.
func (cp *copier) walkManifest(ctx context.Context, g *graph, desc ocitypes.Descriptor, body []byte, depth int) error {
	switch {
	case ocitypes.IsIndex(desc.MediaType):
		if depth > 1 {
			return fmt.Errorf("index %s nests indexes more than two deep: %w", desc.Digest, ErrUnsupported)
		}
		idx, err := ocitypes.ParseIndex(desc.MediaType, body)
		if err != nil {
			return err
		}
		children := idx.Manifests
		if cp.opts.Platform != nil {
			child, err := ocitypes.SelectManifest(idx, *cp.opts.Platform)
			if err != nil {
				return err
			}
			children = []ocitypes.Descriptor{child}
		}
		for _, child := range children {
			if g.seen[child.Digest] {
				continue
			}
			g.seen[child.Digest] = true
			if !ocitypes.IsIndex(child.MediaType) && !ocitypes.IsManifest(child.MediaType) {
				// Not an image (a signature, an SBOM of unknown type): copy it as a blob.
				g.blobs = append(g.blobs, child)
				continue
			}
			cbody, err := cp.fetchManifest(ctx, child)
			if err != nil {
				return err
			}
			if err := cp.walkManifest(ctx, g, child, cbody, depth+1); err != nil {
				return err
			}
		}
	case ocitypes.IsManifest(desc.MediaType):
		m, err := ocitypes.ParseManifest(desc.MediaType, body)
		if err != nil {
			return err
		}
		for _, b := range append([]ocitypes.Descriptor{m.Config}, m.Layers...) {
			if g.seen[b.Digest] {
				continue
			}
			g.seen[b.Digest] = true
			if cp.opts.SkipForeign && ocitypes.IsForeignLayer(b.MediaType) {
				g.absent = append(g.absent, b.Digest)
				continue
			}
			g.blobs = append(g.blobs, b)
		}
	default:
		return fmt.Errorf("manifest %s has media type %q: %w", desc.Digest, desc.MediaType, ErrUnsupported)
	}
	g.manifests = append(g.manifests, manifestBlob{desc: desc, body: body})
	return nil
}

// transfer copies the blobs of g, then its manifests, children before parents.
func (cp *copier) transfer(ctx context.Context, g *graph) error {
	for _, b := range g.blobs {
		cp.progress(ProgressEvent{Kind: BlobQueued, Descriptor: b})
	}
	if err := cp.copyBlobs(ctx, g.blobs); err != nil {
		return err
	}
	for _, m := range g.manifests {
		if err := cp.writeManifest(ctx, m); err != nil {
			return fmt.Errorf("manifest %s: %w", m.desc.Digest, err)
		}
	}
	return nil
}

// copyBlobs copies blobs into the destination, at most Concurrency at once; the first
// failure cancels the rest.
func (cp *copier) copyBlobs(ctx context.Context, blobs []ocitypes.Descriptor) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, cp.opts.Concurrency)
	var wg sync.WaitGroup
	for _, d := range blobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The slot is for transferring: it is handed on as soon as the last byte is
			// in, while this blob's commit (an fsync for a directory) completes.
			release := sync.OnceFunc(func() { <-sem })
			defer release()
			if err := cp.copyBlob(ctx, d, release); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// copyBlob copies one blob, continuing a partial one the destination kept. If a kept
// partial turns out wrong, the blob is copied once more from its start; if a source
// with alternatives (a foreign layer's urls) serves wrong bytes, the next one is
// tried. transferred is called once the bytes are in, before the commit.
func (cp *copier) copyBlob(ctx context.Context, d ocitypes.Descriptor, transferred func()) error {
	if cp.mountFrom != nil && cp.mount(ctx, d) {
		cp.progress(ProgressEvent{Kind: BlobSkipped, Descriptor: d, Offset: d.Size})
		return nil
	}
	from := 0 // the alternative to try first (see alternateSource)
	restarted := false
	retries := 0
	for {
		w, err := cp.dst.OpenBlob(ctx, d)
		if errors.Is(err, ErrAlreadyExists) {
			cp.progress(ProgressEvent{Kind: BlobSkipped, Descriptor: d, Offset: d.Size})
			return nil
		}
		if err != nil {
			cp.progress(ProgressEvent{Kind: BlobFailed, Descriptor: d, Err: err})
			return errdef.Blob(d.Digest, err)
		}
		offset := w.Offset()
		cp.progress(ProgressEvent{Kind: BlobStarted, Descriptor: d, Offset: offset})
		used, err := cp.stream(ctx, d, from, offset, w)
		if err == nil {
			transferred()
			err = w.Commit()
		}
		w.Close()
		if err == nil {
			cp.progress(ProgressEvent{Kind: BlobDone, Descriptor: d, Offset: d.Size})
			return nil
		}
		if retries < maxBlobRetries && ctx.Err() == nil && destinationTransient(err) {
			// The destination lost a connection (a push): the source can serve the blob
			// again, so start it over rather than fail the copy.
			retries++
			cp.logger.DebugContext(ctx, "blob: destination failed, starting over", "digest", d.Digest, "error", err)
			continue
		}
		if errors.Is(err, ErrDigestMismatch) && ctx.Err() == nil {
			if offset > 0 && !restarted {
				restarted = true
				cp.logger.DebugContext(ctx, "blob: kept partial was wrong, starting over", "digest", d.Digest)
				continue
			}
			if alt, ok := cp.src.(alternateSource); ok && used < alt.alternatives(d) {
				from = used + 1
				cp.logger.DebugContext(ctx, "blob: wrong bytes, trying the next source", "digest", d.Digest)
				continue
			}
		}
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = cause
		}
		cp.progress(ProgressEvent{Kind: BlobFailed, Descriptor: d, Err: err})
		return errdef.Blob(d.Digest, err)
	}
}

// mount asks a repository destination to mount d from the source repository of the
// same registry, and reports whether the destination now holds it.
func (cp *copier) mount(ctx context.Context, d ocitypes.Descriptor) bool {
	m, ok := cp.dst.(blobMounter)
	if !ok {
		return false
	}
	err := m.Mount(ctx, d, cp.mountFrom)
	if errors.Is(err, ErrAlreadyExists) {
		return true
	}
	cp.logger.DebugContext(ctx, "blob: not mounted, uploading", "digest", d.Digest, "error", err)
	return false
}

// blobMounter is a destination that can take a blob from another repository of its
// registry without an upload. Mount returns an error wrapping [ErrAlreadyExists] when
// the destination now holds the blob; anything else means "upload it".
type blobMounter interface {
	Mount(ctx context.Context, d ocitypes.Descriptor, from *Repository) error
}

// alternateSource is a source with several places for some blobs (a registry and a
// foreign layer's urls): fetchFrom opens bytes [offset, size) of d from the first that
// answers, counting from from, and says which it used.
type alternateSource interface {
	alternatives(d ocitypes.Descriptor) int
	fetchFrom(ctx context.Context, d ocitypes.Descriptor, from int, offset int64) (io.ReadCloser, int, error)
}

// stream copies bytes [offset, size) of d from the source into w. A source that
// serves ranges is read unverified (w verifies at Commit); another is read whole
// through its verifying reader, the first offset bytes skipped. A writer that can read
// from a reader (layout.Dir's can) fills its own buffer straight from the connection;
// others get a pooled copy buffer. It returns which alternative served the bytes.
func (cp *copier) stream(ctx context.Context, d ocitypes.Descriptor, from int, offset int64, w io.Writer) (int, error) {
	if offset > d.Size {
		return from, fmt.Errorf("destination holds %d bytes of a %d-byte blob: %w", offset, d.Size, ErrDigestMismatch)
	}
	progress := cp.progress
	if repo, ok := cp.src.(*Repository); ok && from == 0 {
		// A large blob goes over several connections when w takes ranges (parallel.go);
		// the offsets it reports only grow, whatever order the chunks arrive in.
		progress = monotonicProgress(progress)
		next, done, err := repo.c.copyParallel(ctx, cp.parallel, repo.ref, d, offset, w, progress)
		if done {
			return 0, err
		}
		offset = next
	}
	rc, used, err := cp.open(ctx, d, from, offset)
	if err != nil {
		return used, err
	}
	defer rc.Close()
	pr := &progressReader{r: sourceReader{rc}, d: d, n: offset, next: offset + progressStep, progress: progress}
	if rf, ok := w.(io.ReaderFrom); ok {
		_, err = rf.ReadFrom(pr)
		return used, err
	}
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	_, err = io.CopyBuffer(onlyWriter{w}, pr, *bufp)
	return used, err
}

// open opens bytes [offset, size) of d from the source.
func (cp *copier) open(ctx context.Context, d ocitypes.Descriptor, from int, offset int64) (io.ReadCloser, int, error) {
	switch src := cp.src.(type) {
	case alternateSource:
		return src.fetchFrom(ctx, d, from, offset)
	case RangeSource:
		rc, err := src.FetchRange(ctx, d, offset, d.Size-offset)
		return rc, 0, err
	}
	rc, err := cp.src.Fetch(ctx, d)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			rc.Close()
			return nil, 0, fmt.Errorf("skipping the %d bytes already held: %w", offset, err)
		}
	}
	return rc, 0, nil
}

// maxBlobRetries bounds how many times one blob is started over after its destination
// failed with a transient error.
const maxBlobRetries = 2

// sourceReader marks the errors of a source's reader, so that a failure of the
// destination can be told from one of the source (which resumes on its own, within
// its bounds, and is not started over).
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// sourceError is an error of a source's reader.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// destinationTransient reports whether err is a destination's failure that another
// attempt may not meet: a broken connection, a timeout, a 5xx, 408 or 429.
func destinationTransient(err error) bool {
	var se *sourceError
	if errors.As(err, &se) {
		return false
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout || re.StatusCode == http.StatusTooManyRequests
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || errors.As(err, &ne)
}

// writeManifest puts a manifest or index, held in memory, into the destination.
func (cp *copier) writeManifest(ctx context.Context, m manifestBlob) error {
	w, err := cp.dst.OpenBlob(ctx, m.desc)
	if errors.Is(err, ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	body := m.body
	if off := w.Offset(); off > 0 && off <= int64(len(body)) {
		body = body[off:]
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Commit()
}

// serializeProgress wraps f so calls never overlap; nil becomes a no-op.
func serializeProgress(f func(ProgressEvent)) func(ProgressEvent) {
	if f == nil {
		return func(ProgressEvent) {}
	}
	var mu sync.Mutex
	return func(e ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		f(e)
	}
}
