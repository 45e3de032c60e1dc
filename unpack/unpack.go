// Package unpack writes an image's flattened root filesystem, or an OCI runtime
// bundle, into a directory, applying the layers in order straight from their stream.
//
// Each layer is fetched once, decompressed (gzip, zstd or none), checked against
// both of its digests (the compressed blob against the manifest, the uncompressed tar
// against the config's rootfs.diff_ids) and applied as the image-spec says: entries
// replace what lower layers left at their paths, whiteouts (".wh.NAME") and opaque
// markers (".wh..wh..opq") hide lower content but never what the same layer writes.
//
// Nothing reaches the destination until every layer has been verified: the tree is
// built in a staging directory beside it (".NAME.unpacking", on the same file
// system), which replaces the destination by a rename at the end. A failed or
// interrupted run leaves only that staging directory, which the next run removes.
//
// Layers are hostile input. Every entry is written through an [os.Root] on the
// staging directory, names are cleaned and refused when absolute or holding "..",
// and symbolic links in a path are followed as if the root filesystem were "/", so a
// link planted by one entry cannot carry a later entry, hard link or whiteout
// outside. Sizes, names and path depths are bounded by [Options].
package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// Source serves an image: a registry repository (*ocistream.Repository), an OCI
// image layout directory or archive. It has the method set of ocistream.Source, so
// any of those can be passed as they are.
type Source interface {
	// Resolve returns the descriptor of the image's manifest or index.
	Resolve(ctx context.Context) (ocitypes.Descriptor, error)
	// Fetch returns a reader of the manifest, index or blob d that checks size and
	// digest as it reads: a wrong blob ends in an error wrapping
	// ErrDigestMismatch on the read that would have returned io.EOF.
	Fetch(ctx context.Context, d ocitypes.Descriptor) (io.ReadCloser, error)
}

// Options tune [Image]. The zero value (or nil) unpacks the host's platform into an
// absent or empty directory.
type Options struct {
	// Platform picks the manifest of a multi-platform image. Default: the host's
	// platform ([ocitypes.HostPlatform]).
	Platform *ocitypes.Platform
	// Bundle writes an OCI runtime bundle: the root filesystem in DIR/rootfs and a
	// runtime configuration in DIR/config.json ([RuntimeConfig]). Default false:
	// the root filesystem goes into DIR itself.
	Bundle bool
	// Overwrite replaces a DIR that is not empty. The replacement is atomic: DIR
	// holds its old content until the new tree is complete. Default false: a
	// non-empty DIR is refused with an error wrapping ErrAlreadyExists.
	Overwrite bool
	// SkipForeign leaves out foreign (non-distributable) layers, such as Windows
	// base layers, recording each in [Result.SkippedLayers]. Default false: such
	// a layer fails the unpack.
	SkipForeign bool
	// Progress, when set, is called as each layer's compressed bytes are read:
	// with 0 when the layer starts, then with the bytes read so far, and with
	// the layer's size once it is applied and both its digests matched. Calls
	// come from the goroutine that called Image, one at a time.
	Progress func(layer ocitypes.Descriptor, done int64)

	// MaxLayerSize bounds the uncompressed size of one layer, in bytes; an
	// entry larger than what is left of it is refused before a byte is written.
	// Default 64 GiB.
	MaxLayerSize int64
	// MaxEntries bounds the number of entries of one layer. Default 4 Mi.
	MaxEntries int
	// MaxNameLength bounds the length of an entry's name and of a link target,
	// in bytes. Default 4096 (PATH_MAX).
	MaxNameLength int
	// MaxPathDepth bounds the number of components of an entry's name. Default
	// 256.
	MaxPathDepth int
}

// Default limits, applied when the Options field is zero.
const (
	DefaultMaxLayerSize  = 64 << 30
	DefaultMaxEntries    = 4 << 20
	DefaultMaxNameLength = 4096
	DefaultMaxPathDepth  = 256
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Platform == nil {
		p := ocitypes.HostPlatform()
		r.Platform = &p
	}
	if r.MaxLayerSize <= 0 {
		r.MaxLayerSize = DefaultMaxLayerSize
	}
	if r.MaxEntries <= 0 {
		r.MaxEntries = DefaultMaxEntries
	}
	if r.MaxNameLength <= 0 {
		r.MaxNameLength = DefaultMaxNameLength
	}
	if r.MaxPathDepth <= 0 {
		r.MaxPathDepth = DefaultMaxPathDepth
	}
	return r
}

// Result says what [Image] unpacked.
type Result struct {
	// Manifest is the descriptor of the image manifest unpacked (the platform's
	// manifest when the source named an index).
	Manifest ocitypes.Descriptor
	// Config is the image configuration.
	Config ocitypes.Image
	// Layers are the layers applied, in order.
	Layers []ocitypes.Descriptor
	// SkippedLayers are the foreign layers left out ([Options.SkipForeign]).
	SkippedLayers []ocitypes.Descriptor
	// Warnings say, one line each, what could not be reproduced and was
	// skipped: ownership when not running as root, device nodes where they may
	// not be created, extended attributes the file system refuses. Each kind is
	// one line with a count and the first path.
	Warnings []string
}

// Image unpacks the image src names into dir: its flattened root filesystem, or a
// runtime bundle with [Options.Bundle]. It resolves the source, picks the platform's
// manifest from an index, reads the config, then fetches and applies the layers one
// after the other, each streamed: memory stays bounded (a few MiB of buffers plus
// the per-layer set of paths written, for the whiteout rules) whatever the image
// size. Disk use is the unpacked tree, in a staging directory beside dir until the
// end.
//
// dir must be absent or an empty directory unless [Options.Overwrite]. On error dir
// is left as it was; errors name the layer, and for a refused entry the entry.
// A wrong blob wraps ErrDigestMismatch, a refused entry [ErrInvalidLayer], a limit
// ErrSizeExceedsLimit, an unknown layer media type ErrUnsupported.
func Image(ctx context.Context, src Source, dir string, opts *Options) (Result, error) {
	o := opts.withDefaults()
	dir = filepath.Clean(dir)
	if err := checkDest(dir, o.Overwrite); err != nil {
		return Result{}, err
	}
	res, err := resolveImage(ctx, src, o.Platform)
	if err != nil {
		return Result{}, err
	}
	if err := checkLayers(&res, o.SkipForeign); err != nil {
		return Result{}, err
	}

	stage := stagingPath(dir)
	if err := os.RemoveAll(stage); err != nil {
		return Result{}, fmt.Errorf("remove the staging directory of an earlier run: %w", err)
	}
	if err := os.Mkdir(stage, 0o700); err != nil {
		return Result{}, fmt.Errorf("create the staging directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	rootfs := stage
	if o.Bundle {
		rootfs = filepath.Join(stage, "rootfs")
		if err := os.Mkdir(rootfs, 0o700); err != nil {
			return Result{}, err
		}
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()

	u := newUnpacker(root, &o)
	if err := u.applyAll(ctx, src, &res); err != nil {
		return Result{}, err
	}
	res.Warnings = u.warnings()
	if o.Bundle {
		spec, err := RuntimeConfig(res.Config, root)
		if err != nil {
			return Result{}, err
		}
		if err := writeRuntimeConfig(filepath.Join(stage, "config.json"), spec); err != nil {
			return Result{}, err
		}
		if err := os.Chmod(stage, 0o755); err != nil {
			return Result{}, err
		}
	}
	if err := commit(stage, dir, o.Overwrite); err != nil {
		return Result{}, err
	}
	ok = true
	return res, nil
}

// stagingPath is where the tree for dir is built: a hidden sibling, on the same
// file system so that the final rename is atomic, and at a fixed name so that the
// next run finds and removes what a killed run left.
func stagingPath(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".unpacking")
}

// checkDest refuses a destination that is not a directory, or not empty when
// overwrite is not set.
func checkDest(dir string, overwrite bool) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory: %w", dir, errdef.ErrAlreadyExists)
	case overwrite:
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("%s is not empty (overwrite it with --force): %w", dir, errdef.ErrAlreadyExists)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// commit puts the staging directory stage in dir's place. An absent or empty dir is
// replaced by one rename; a non-empty one (overwrite) is exchanged with stage
// atomically where the system can (renameat2 RENAME_EXCHANGE), then removed.
func commit(stage, dir string, overwrite bool) error {
	// syscall.Rename, not os.Rename: the latter refuses to replace a directory,
	// even an empty one.
	if err := syscall.Rename(stage, dir); err == nil {
		return syncDir(filepath.Dir(dir))
	} else if !overwrite {
		if err := checkDest(dir, false); err != nil {
			return err
		}
		return &os.LinkError{Op: "rename", Old: stage, New: dir, Err: err}
	}
	old := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".replaced")
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := exchange(stage, dir); err != nil {
		// No atomic exchange: two renames, with dir absent in between.
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(stage, dir); err != nil {
			return err
		}
	} else if err := os.Rename(stage, old); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, errSyncUnsupported) {
		return err
	}
	return nil
}

// resolveImage resolves src to an image manifest for platform and reads the
// manifest and config.
func resolveImage(ctx context.Context, src Source, platform *ocitypes.Platform) (Result, error) {
	desc, err := src.Resolve(ctx)
	if err != nil {
		return Result{}, err
	}
	for depth := 0; ocitypes.IsIndex(desc.MediaType); depth++ {
		if depth > 0 {
			return Result{}, fmt.Errorf("index %s: %w: an index within an index", desc.Digest, errdef.ErrUnsupported)
		}
		body, err := fetchSmall(ctx, src, desc)
		if err != nil {
			return Result{}, err
		}
		idx, err := ocitypes.ParseIndex(desc.MediaType, body)
		if err != nil {
			return Result{}, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		if desc, err = ocitypes.SelectManifest(idx, *platform); err != nil {
			return Result{}, err
		}
	}
	if !ocitypes.IsManifest(desc.MediaType) {
		return Result{}, fmt.Errorf("%s: %w: media type %q is not an image manifest", desc.Digest, errdef.ErrUnsupported, desc.MediaType)
	}
	body, err := fetchSmall(ctx, src, desc)
	if err != nil {
		return Result{}, err
	}
	m, err := ocitypes.ParseManifest(desc.MediaType, body)
	if err != nil {
		return Result{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	switch m.Config.MediaType {
	case ocitypes.MediaTypeOCIConfig, ocitypes.MediaTypeDockerConfig:
	default:
		return Result{}, fmt.Errorf("manifest %s: %w: config media type %q is not an image config (an artifact?)",
			desc.Digest, errdef.ErrUnsupported, m.Config.MediaType)
	}
	body, err = fetchSmall(ctx, src, m.Config)
	if err != nil {
		return Result{}, err
	}
	cfg, err := ocitypes.ParseImageConfig(body)
	if err != nil {
		return Result{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if desc.Platform == nil {
		desc.Platform = &ocitypes.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	}
	return Result{Manifest: desc, Config: cfg, Layers: m.Layers}, nil
}

// fetchSmall reads a manifest, index or config of at most MaxManifestSize bytes.
func fetchSmall(ctx context.Context, src Source, d ocitypes.Descriptor) ([]byte, error) {
	if d.Size > ocitypes.MaxManifestSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d byte limit: %w", d.Digest, d.Size, ocitypes.MaxManifestSize, errdef.ErrSizeExceedsLimit)
	}
	rc, err := src.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, ocitypes.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Digest, err)
	}
	return body, nil
}

// checkLayers matches the layers with the config's diff_ids and refuses unknown
// media types and, unless skipForeign, foreign layers, before anything is fetched.
func checkLayers(res *Result, skipForeign bool) error {
	diffIDs := res.Config.RootFS.DiffIDs
	if len(diffIDs) != len(res.Layers) {
		return fmt.Errorf("manifest %s has %d layers but its config lists %d diff_ids: %w",
			res.Manifest.Digest, len(res.Layers), len(diffIDs), errdef.ErrInvalidManifest)
	}
	for i, l := range res.Layers {
		if _, err := compressionOf(l.MediaType); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
		if ocitypes.IsForeignLayer(l.MediaType) && !skipForeign {
			return fmt.Errorf("layer %d (%s) is a foreign, non-distributable layer (%s): %w; skip it with --skip-foreign",
				i+1, l.Digest, l.MediaType, errdef.ErrUnsupported)
		}
		if err := diffIDs[i].Validate(); err != nil {
			return fmt.Errorf("diff_id %d: %w: %w", i+1, errdef.ErrInvalidManifest, err)
		}
	}
	return nil
}

// ErrInvalidLayer is wrapped by the error for a layer entry that is refused: a name
// that is absolute, holds "..", or reaches outside the root filesystem through a
// link, a hard link to a missing or outside file, a malformed whiteout, an entry
// larger than what the layer may still hold.
var ErrInvalidLayer = errors.New("invalid layer")
