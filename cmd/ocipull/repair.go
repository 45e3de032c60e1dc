package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// quarantineDir is where bad blobs are moved, under the layout directory.
const quarantineDir = ".quarantine"

// quarantine moves the blobs of rep whose bytes are wrong (corrupt, wrong size) out
// of blobs/ into DIR/.quarantine/, so that the next pull fetches them again, and
// returns how many it moved. Blobs nothing references are hashed too (a pull would
// skip them by their size alone), and moved when their bytes do not match their name.
func quarantine(ctx context.Context, dir string, rep *layout.VerifyReport) (int, error) {
	moved := 0
	for _, p := range rep.Problems {
		if p.Digest == "" || !strings.HasPrefix(p.Path, "blobs/") {
			continue
		}
		switch p.Kind {
		case layout.Corrupt, layout.WrongSize:
		case layout.Unreferenced:
			ok, err := blobMatches(ctx, filepath.Join(dir, filepath.FromSlash(p.Path)), p.Digest)
			if err != nil || ok {
				continue
			}
		default:
			continue
		}
		q := filepath.Join(dir, quarantineDir)
		if err := os.MkdirAll(q, 0o755); err != nil {
			return moved, err
		}
		name := filepath.Join(q, string(p.Digest.Algorithm())+"-"+p.Digest.Encoded())
		if err := os.Rename(filepath.Join(dir, filepath.FromSlash(p.Path)), name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return moved, fmt.Errorf("quarantine %s: %w", p.Path, err)
		}
		moved++
	}
	return moved, nil
}

// blobMatches reports whether the file at path hashes to dg.
func blobMatches(ctx context.Context, path string, dg digest.Digest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !dg.Algorithm().Available() {
		return false, fmt.Errorf("%s: unsupported digest algorithm", dg)
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	v := dg.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return false, err
	}
	return v.Verified(), nil
}

// repairBeforePull re-hashes the layout at dir, if there is one, and quarantines its
// bad blobs, for pull --verify. It says on stderr what it found.
func (st *state) repairBeforePull(ctx context.Context, cmd *cli.Command, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		return nil // nothing there yet: everything is fetched
	}
	rep, err := layout.Verify(ctx, dir, &layout.VerifyOptions{Concurrency: st.opts.concurrency})
	if err != nil {
		return err
	}
	moved, err := quarantine(ctx, dir, rep)
	if err != nil {
		return err
	}
	if !st.opts.quiet {
		msg := fmt.Sprintf("verified %s (%s) in %s", plural(rep.Blobs, "blob"), formatSize(rep.Bytes), dir)
		if moved > 0 {
			msg += fmt.Sprintf(": %s bad, moved to %s to be fetched again", plural(moved, "blob"), filepath.Join(dir, quarantineDir))
		}
		fmt.Fprintln(stderr(cmd), msg)
	}
	return nil
}

// imageNames returns the image names index.json of the layout at dir records
// (io.containerd.image.name), for the command that pulls them again.
func imageNames(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil
	}
	idx, err := ocitypes.ParseIndex(ocitypes.MediaTypeOCIIndex, b)
	if err != nil {
		return nil
	}
	var names []string
	for _, m := range idx.Manifests {
		if n := m.Annotations["io.containerd.image.name"]; n != "" {
			names = append(names, n)
		}
	}
	return names
}

// repullHint is the command that fetches the blobs of the layout at dir again.
func repullHint(dir string) string {
	name := "REF"
	if names := imageNames(dir); len(names) > 0 {
		name = names[0]
	}
	return fmt.Sprintf("ocipull pull --verify %s -o %s", name, dir)
}
