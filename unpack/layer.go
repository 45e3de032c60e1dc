package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// compression of a layer blob.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstded
)

// compressionOf returns how a layer of mediaType is compressed, and fails with
// ErrUnsupported for a media type that is not a layer this package knows.
func compressionOf(mediaType string) (compression, error) {
	mt := mediaType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case ocitypes.MediaTypeOCILayer, ocitypes.MediaTypeOCILayerNondistributable,
		"application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.foreign.diff.tar":
		return uncompressed, nil
	case ocitypes.MediaTypeOCILayerGzip, ocitypes.MediaTypeOCILayerNondistributableGzip,
		ocitypes.MediaTypeDockerLayer, ocitypes.MediaTypeDockerForeignLayer:
		return gzipped, nil
	case ocitypes.MediaTypeOCILayerZstd, ocitypes.MediaTypeOCILayerNondistributableZstd:
		return zstded, nil
	}
	return 0, fmt.Errorf("%w: unknown layer media type %q", errdef.ErrUnsupported, mediaType)
}

// Whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// dirMeta is what is applied to a directory after every layer: mode and times
// (setting them earlier would be undone by writing into it, or lock the unpack out).
type dirMeta struct {
	mode         fs.FileMode
	atime, mtime time.Time
}

// note counts one kind of thing that could not be reproduced.
type note struct {
	count int
	first string
}

// unpacker applies layers to a root filesystem.
type unpacker struct {
	root   *os.Root
	o      *Options
	isRoot bool
	buf    []byte

	dirCache map[string]string // resolveDir results, while nothing is removed
	implicit int               // directories created because an entry needed them

	// Of the layer being applied: the paths its entries wrote, and their
	// ancestors. Whiteouts and opaque markers spare them.
	upper, upperDirs map[string]struct{}

	dirs  map[string]dirMeta
	notes map[string]*note
	order []string // of notes
}

func newUnpacker(root *os.Root, o *Options) *unpacker {
	return &unpacker{
		root:      root,
		o:         o,
		isRoot:    os.Geteuid() == 0,
		buf:       make([]byte, 1<<20),
		dirCache:  map[string]string{},
		upper:     map[string]struct{}{},
		upperDirs: map[string]struct{}{},
		dirs:      map[string]dirMeta{},
		notes:     map[string]*note{},
	}
}

// applyAll applies the layers of res in order, then the directories' modes and
// times.
func (u *unpacker) applyAll(ctx context.Context, src Source, res *Result) error {
	layers := res.Layers
	res.Layers = nil
	for i, l := range layers {
		if ocitypes.IsForeignLayer(l.MediaType) {
			res.SkippedLayers = append(res.SkippedLayers, l)
			continue
		}
		if err := u.applyLayer(ctx, src, i, l, res.Config.RootFS.DiffIDs[i]); err != nil {
			return err
		}
		res.Layers = append(res.Layers, l)
	}
	return u.finishDirs()
}

// layerError names the layer in an error.
func layerError(i int, l ocitypes.Descriptor, err error) error {
	return fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
}

// applyLayer fetches layer i, described by l, and applies it, checking its
// uncompressed stream against diffID and its blob against l (by reading it to the
// end, so that the source's check fires).
func (u *unpacker) applyLayer(ctx context.Context, src Source, i int, l ocitypes.Descriptor, diffID digest.Digest) error {
	comp, err := compressionOf(l.MediaType)
	if err != nil {
		return layerError(i, l, err)
	}
	if !diffID.Algorithm().Available() {
		return layerError(i, l, fmt.Errorf("diff_id %s: %w: digest algorithm", diffID, errdef.ErrUnsupported))
	}
	rc, err := src.Fetch(ctx, l)
	if err != nil {
		return layerError(i, l, err)
	}
	blob := &blobReader{ctx: ctx, r: rc}
	u.report(l, 0)
	ra := newReadAhead(blob, rc, l, u.o.Progress)
	defer ra.Close()

	var dec io.Reader
	switch comp {
	case gzipped:
		zr, err := gzip.NewReader(ra)
		if err != nil {
			return layerError(i, l, u.blobError(ra, fmt.Errorf("gzip: %w", err)))
		}
		defer zr.Close()
		dec = zr
	case zstded:
		zr, err := zstd.NewReader(ra, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return layerError(i, l, err)
		}
		defer zr.Close()
		dec = zr
	default:
		dec = ra
	}
	tarStream := &hashingReader{r: dec, h: diffID.Algorithm().Hash(), limit: u.o.MaxLayerSize}

	clear(u.upper)
	clear(u.upperDirs)
	tr := tar.NewReader(tarStream)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return layerError(i, l, u.blobError(ra, err))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if n >= u.o.MaxEntries {
			return layerError(i, l, fmt.Errorf("more than %d entries: %w", u.o.MaxEntries, errdef.ErrSizeExceedsLimit))
		}
		if err := u.entry(tr, hdr, tarStream); err != nil {
			err = fmt.Errorf("entry %q: %w", hdr.Name, err)
			if readFailure(err) {
				err = u.blobError(ra, err)
			}
			return layerError(i, l, err)
		}
	}
	// What follows the tar's end (padding to a record) is part of the diff_id.
	if _, err := io.CopyBuffer(io.Discard, tarStream, u.buf); err != nil {
		return layerError(i, l, u.blobError(ra, err))
	}
	if got := digest.NewDigest(diffID.Algorithm(), tarStream.h); got != diffID {
		return layerError(i, l, fmt.Errorf("%w: the uncompressed layer is %s, the config's diff_id says %s",
			errdef.ErrDigestMismatch, got, diffID))
	}
	// And what follows the compressed stream's end is part of the blob.
	if err := drain(ra); err != nil {
		return layerError(i, l, err)
	}
	if blob.n != l.Size {
		return layerError(i, l, fmt.Errorf("%w: read %d bytes, the manifest says %d", errdef.ErrDigestMismatch, blob.n, l.Size))
	}
	u.report(l, l.Size)
	return nil
}

// report calls the progress function, if any.
func (u *unpacker) report(l ocitypes.Descriptor, n int64) {
	if u.o.Progress != nil {
		u.o.Progress(l, n)
	}
}

// blobError returns the blob's own error in place of err when the blob is wrong:
// a corrupt blob makes the decompressor or the tar reader fail first, and the
// digest mismatch is the better explanation. It reads the rest of the blob to
// find out, unless err is the context's.
func (u *unpacker) blobError(ra *readAhead, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if berr := drain(ra); berr != nil && (errors.Is(berr, errdef.ErrDigestMismatch) || errors.Is(berr, io.ErrUnexpectedEOF)) {
		return berr
	}
	return err
}

// readFailure reports whether an entry failed reading the layer (a corrupt or
// truncated stream), rather than being refused or failing to write: only then is
// the rest of the blob worth reading to find a better explanation.
func readFailure(err error) bool {
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	var errno syscall.Errno
	switch {
	case errors.Is(err, ErrInvalidLayer), errors.Is(err, errdef.ErrSizeExceedsLimit),
		errors.As(err, &pathErr), errors.As(err, &linkErr), errors.As(err, &errno):
		return false
	}
	return true
}

// drain reads r to its end, and returns the error that ended it, nil for io.EOF.
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// blobReader reads a layer blob from the source, counting and keeping the error
// that ended it (sticky: a drained reader stays drained), and stops when the
// context is done.
type blobReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	err error
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil {
		b.err = err
	} else if cerr := b.ctx.Err(); cerr != nil {
		b.err = cerr
		err = cerr
	}
	return n, err
}

// hashingReader hashes and counts the uncompressed stream, and refuses one longer
// than limit.
type hashingReader struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if h.n > h.limit {
		return n, fmt.Errorf("uncompressed layer larger than %d bytes: %w", h.limit, errdef.ErrSizeExceedsLimit)
	}
	return n, err
}

// entry applies one tar entry.
func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header, stream *hashingReader) error {
	name, err := cleanName(hdr.Name, u.o.MaxNameLength, u.o.MaxPathDepth)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLayer, err)
	}
	if hdr.Size > 0 && hdr.Size > u.o.MaxLayerSize-stream.n {
		return fmt.Errorf("%w: %d bytes, more than the layer may still hold (limit %d)", errdef.ErrSizeExceedsLimit, hdr.Size, u.o.MaxLayerSize)
	}
	if base := path.Base(name); strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(name, base)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
		return u.dir(name, hdr)
	}
	if name == "." {
		return fmt.Errorf("%w: the root can only be a directory", ErrInvalidLayer)
	}
	p, err := u.prepare(name, false)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		err = u.file(p, hdr, tr)
	case tar.TypeSymlink:
		err = u.symlink(p, hdr)
	case tar.TypeLink:
		err = u.hardlink(p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = u.node(p, hdr)
	default:
		return fmt.Errorf("%w: unsupported entry type %q", ErrInvalidLayer, hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	u.markUpper(p)
	return nil
}

// prepare resolves the entry name to its real path and clears the way: whatever
// a lower layer left there goes, except a directory when the entry is one too.
func (u *unpacker) prepare(name string, isDir bool) (string, error) {
	p, err := u.resolve(name, true)
	if err != nil {
		if errors.Is(err, errEscape) {
			err = fmt.Errorf("%w: %w", ErrInvalidLayer, err)
		}
		return "", err
	}
	fi, ok, err := lexists(u.root, p)
	if err != nil || !ok {
		return p, err
	}
	if isDir && fi.IsDir() {
		return p, nil
	}
	return p, u.remove(p)
}

// remove removes p and everything under it.
func (u *unpacker) remove(p string) error {
	u.forget()
	for d := range u.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			delete(u.dirs, d)
		}
	}
	if p == "." {
		return u.removeLower(".")
	}
	return u.root.RemoveAll(p)
}

// markUpper records that the current layer wrote p.
func (u *unpacker) markUpper(p string) {
	u.upper[p] = struct{}{}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := u.upperDirs[d]; ok {
			break
		}
		u.upperDirs[d] = struct{}{}
	}
}

// written reports whether the current layer wrote p or something under it.
func (u *unpacker) written(p string) (self, below bool) {
	_, self = u.upper[p]
	_, below = u.upperDirs[p]
	return self, below
}

// whiteout applies a whiteout entry name (whose last component is base): an
// opaque marker hides the lower children of its directory; ".wh.X" hides the
// lower X. Neither touches what the current layer wrote.
func (u *unpacker) whiteout(name, base string) error {
	dir := path.Dir(name)
	if base == opaqueMarker {
		d, err := u.resolveDir(dir, false)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return nil
		case err != nil:
			return u.refuseEscape(err)
		}
		return u.removeLower(d)
	}
	hidden := strings.TrimPrefix(base, whiteoutPrefix)
	switch hidden {
	case "":
		return fmt.Errorf("%w: a whiteout names nothing (%q)", ErrInvalidLayer, base)
	case ".", "..":
		return fmt.Errorf("%w: a whiteout names %q: %w", ErrInvalidLayer, hidden, errEscape)
	}
	p, err := u.resolve(path.Join(dir, hidden), false)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return u.refuseEscape(err)
	}
	fi, ok, err := lexists(u.root, p)
	if err != nil || !ok {
		return err
	}
	self, below := u.written(p)
	switch {
	case !self && !below:
		return u.remove(p)
	case fi.IsDir():
		return u.removeLower(p)
	}
	return nil
}

// refuseEscape marks an escaping path as an invalid layer.
func (u *unpacker) refuseEscape(err error) error {
	if errors.Is(err, errEscape) {
		return fmt.Errorf("%w: %w", ErrInvalidLayer, err)
	}
	return err
}

// removeLower removes the children of directory d that lower layers wrote,
// descending into those the current layer wrote into.
func (u *unpacker) removeLower(d string) error {
	f, err := u.root.Open(d)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, c := range names {
		p := c
		if d != "." {
			p = d + "/" + c
		}
		self, below := u.written(p)
		switch {
		case !self && !below:
			if err := u.remove(p); err != nil {
				return err
			}
		case below:
			if err := u.removeLower(p); err != nil {
				return err
			}
		default:
			if fi, err := u.root.Lstat(p); err == nil && fi.IsDir() {
				if err := u.removeLower(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// dir applies a directory entry: created if absent, kept (with its content) if a
// lower layer made it, its mode and times recorded for the end.
func (u *unpacker) dir(name string, hdr *tar.Header) error {
	p, err := u.prepare(name, true)
	if err != nil {
		return err
	}
	if p != "." {
		if err := u.root.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		u.markUpper(p)
	}
	if err := u.owner(p, hdr); err != nil {
		return err
	}
	if xattrs := xattrsOf(hdr); len(xattrs) > 0 {
		f, err := u.root.Open(p)
		if err != nil {
			return err
		}
		err = u.setXattrs(f, p, xattrs)
		f.Close()
		if err != nil {
			return err
		}
	}
	u.dirs[p] = dirMeta{mode: hdr.FileInfo().Mode(), atime: atimeOf(hdr), mtime: hdr.ModTime}
	return nil
}

// file writes a regular file entry.
func (u *unpacker) file(p string, hdr *tar.Header, r io.Reader) error {
	f, err := u.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// A plain writer: os.File's ReadFrom would try copy_file_range and splice first.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r, u.buf); err != nil {
		f.Close()
		return err
	}
	if u.isRoot {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			f.Close()
			return err
		}
	} else {
		u.noteOwner(p)
	}
	if err := f.Chmod(hdr.FileInfo().Mode()); err != nil {
		f.Close()
		return err
	}
	if err := u.setXattrs(f, p, xattrsOf(hdr)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return u.root.Chtimes(p, atimeOf(hdr), hdr.ModTime)
}

// symlink creates a symbolic link entry. Its target is stored as written: it is
// only ever followed through resolveDir, which keeps it inside the root.
func (u *unpacker) symlink(p string, hdr *tar.Header) error {
	if hdr.Linkname == "" || len(hdr.Linkname) > u.o.MaxNameLength || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return fmt.Errorf("%w: symbolic link target %q", ErrInvalidLayer, hdr.Linkname)
	}
	if err := u.root.Symlink(hdr.Linkname, p); err != nil {
		return err
	}
	if err := u.lowner(p, hdr); err != nil {
		return err
	}
	return u.at(p, func(dirfd int, base string) error {
		return lutimesAt(dirfd, base, atimeOf(hdr), hdr.ModTime)
	})
}

// hardlink creates a hard link entry to a file of this layer or a lower one. The
// target is a name in the image, resolved like an entry's; it must exist and not
// be a directory.
func (u *unpacker) hardlink(p string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname, u.o.MaxNameLength, u.o.MaxPathDepth)
	if err != nil {
		return fmt.Errorf("%w: hard link target: %w", ErrInvalidLayer, err)
	}
	tp, err := u.resolve(target, false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: hard link to %q, which does not exist", ErrInvalidLayer, hdr.Linkname)
	}
	if err != nil {
		return u.refuseEscape(err)
	}
	fi, ok, err := lexists(u.root, tp)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: hard link to %q, which does not exist", ErrInvalidLayer, hdr.Linkname)
	case fi.IsDir():
		return fmt.Errorf("%w: hard link to %q, a directory", ErrInvalidLayer, hdr.Linkname)
	case tp == p:
		return nil
	}
	return u.root.Link(tp, p)
}

// node creates a character or block device or a FIFO. Device nodes need
// privilege (CAP_MKNOD): without it they are skipped and noted.
func (u *unpacker) node(p string, hdr *tar.Header) error {
	err := u.at(p, func(dirfd int, base string) error {
		return mknodAt(dirfd, base, hdr.Typeflag, uint32(hdr.Mode&0o7777), hdr.Devmajor, hdr.Devminor)
	})
	if err != nil && refused(err) && hdr.Typeflag != tar.TypeFifo {
		u.note("device nodes not created (not permitted here)", p)
		return nil
	}
	if err != nil {
		return err
	}
	if err := u.lowner(p, hdr); err != nil {
		return err
	}
	if err := u.root.Chmod(p, hdr.FileInfo().Mode()); err != nil {
		return err
	}
	return u.root.Chtimes(p, atimeOf(hdr), hdr.ModTime)
}

// at calls fn with a descriptor of p's directory and p's last component.
func (u *unpacker) at(p string, fn func(dirfd int, base string) error) error {
	d, err := u.root.Open(path.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd), path.Base(p)) }); err != nil {
		return err
	}
	return ferr
}

// owner sets the owner of p (not a link) when running as root.
func (u *unpacker) owner(p string, hdr *tar.Header) error {
	if !u.isRoot {
		u.noteOwner(p)
		return nil
	}
	return u.root.Lchown(p, hdr.Uid, hdr.Gid)
}

// lowner sets the owner of p, not following a link, when running as root.
func (u *unpacker) lowner(p string, hdr *tar.Header) error { return u.owner(p, hdr) }

func (u *unpacker) noteOwner(p string) {
	u.note("ownership not applied (not running as root)", p)
}

// xattrsOf returns the extended attributes of an entry (PAX SCHILY.xattr records).
func xattrsOf(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if m == nil {
				m = map[string]string{}
			}
			m[name] = v
		}
	}
	return m
}

// setXattrs sets the extended attributes of the open file f (at p). Those the file
// system or the process's privileges refuse are noted and skipped.
func (u *unpacker) setXattrs(f *os.File, p string, xattrs map[string]string) error {
	if len(xattrs) == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for name, v := range xattrs {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = fsetxattr(int(fd), name, []byte(v)) }); err != nil {
			return err
		}
		if serr != nil {
			if !refused(serr) {
				return fmt.Errorf("extended attribute %s: %w", name, serr)
			}
			u.note("extended attribute "+name+" not set (refused by the file system or not permitted)", p)
		}
	}
	return nil
}

// atimeOf is the access time to give an entry: its own when the tar records one,
// else its modification time.
func atimeOf(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

// note records one thing not reproduced, of kind what, at p.
func (u *unpacker) note(what, p string) {
	n := u.notes[what]
	if n == nil {
		n = &note{first: p}
		u.notes[what] = n
		u.order = append(u.order, what)
	}
	n.count++
}

// warnings returns the notes as one line each.
func (u *unpacker) warnings() []string {
	var w []string
	for _, what := range u.order {
		n := u.notes[what]
		line := fmt.Sprintf("%s: /%s", what, n.first)
		if n.count > 1 {
			line += fmt.Sprintf(" and %d more", n.count-1)
		}
		w = append(w, line)
	}
	return w
}

// finishDirs gives every directory entry its mode and times, once nothing more is
// written into them. The root gets 0755 unless a layer said otherwise.
func (u *unpacker) finishDirs() error {
	if _, ok := u.dirs["."]; !ok {
		if err := u.root.Chmod(".", 0o755); err != nil {
			return err
		}
	}
	for p, m := range u.dirs {
		if err := u.root.Chmod(p, m.mode); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
		if err := u.root.Chtimes(p, m.atime, m.mtime); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
	}
	return nil
}
