package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// floorOptions are the knobs of the floor: the least work a verified pull can do.
type floorOptions struct {
	host, repo, ref string
	platform        string // "os/arch" for an index
	out             string
	concurrency     int
	bufferSize      int
	noSync          bool
	// writeback, when positive, starts the writeback of every writeback bytes as soon as
	// they are written (sync_file_range), so that the final fsync finds little to do;
	// writebackWait also waits for the window before the one just started.
	writeback     int64
	writebackWait bool
	// syncDir fsyncs the blobs directory after each rename, as a layout writer that
	// makes every blob durable on its own does.
	syncDir bool
	// staged copies what each read returns into a second buffer of the same size,
	// hashed and written when full: the data path of a reader feeding a buffered writer.
	staged bool
	// asyncCommit frees a blob's concurrency slot and buffer once its last byte is
	// written, so the fsync and rename overlap the next download.
	asyncCommit bool
	// prealloc reserves each blob's size with fallocate before writing it.
	prealloc bool
}

// floorPull downloads the manifest(s) and every blob of an image, hashing each blob
// with SHA-256 as it streams into its file, fsyncing the file, checking the digest and
// renaming it to out/blobs/sha256/<hex>; blobs go concurrency at a time, largest first.
// Nothing else: no retries, no resume, no locks, no index.json.
func floorPull(ctx context.Context, o floorOptions) error {
	api := newRegistryAPI(o.host)
	if err := os.MkdirAll(filepath.Join(o.out, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	desc, body, err := api.getManifest(ctx, o.repo, o.ref)
	if err != nil {
		return err
	}
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		var child *ocispec.Descriptor
		for i, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS+"/"+m.Platform.Architecture == o.platform {
				child = &idx.Manifests[i]
				break
			}
		}
		if child == nil {
			return fmt.Errorf("index has no manifest for platform %q", o.platform)
		}
		if desc, body, err = api.getManifest(ctx, o.repo, child.Digest.String()); err != nil {
			return err
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "blobs", "sha256", desc.Digest.Encoded()), body, 0o644); err != nil {
		return err
	}
	blobs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
	slices.SortStableFunc(blobs, func(a, b ocispec.Descriptor) int { return int(min(max(b.Size-a.Size, -1), 1)) })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, o.concurrency)
	bufs := sync.Pool{New: func() any { b := make([]byte, o.bufferSize); return &b }}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, d := range blobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer release()
			bp := bufs.Get().(*[]byte)
			done := func() { bufs.Put(bp); release() }
			if !o.asyncCommit {
				defer done()
				done = func() {}
			}
			if err := api.fetchBlob(ctx, o, d, *bp, done); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getManifest fetches a manifest or index by tag or digest and checks its digest
// against Docker-Content-Digest.
func (r *registryAPI) getManifest(ctx context.Context, repo, ref string) (ocispec.Descriptor, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/v2/"+repo+"/manifests/"+ref), nil)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	req.Header.Set("Accept", strings.Join([]string{
		ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}, ", "))
	resp, err := r.client.Do(req)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, fmt.Errorf("GET manifest %s:%s: %s", repo, ref, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	dg := digest.FromBytes(body)
	if want := resp.Header.Get("Docker-Content-Digest"); want != "" && want != dg.String() {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s:%s hashes to %s, registry says %s", repo, ref, dg, want)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return ocispec.Descriptor{MediaType: strings.TrimSpace(mt), Digest: dg, Size: int64(len(body))}, body, nil
}

// fetchBlob streams blob d into out/blobs/sha256, verified, through buf.
// received is called once the last byte is written, before the fsync.
func (r *registryAPI) fetchBlob(ctx context.Context, o floorOptions, d ocispec.Descriptor, buf []byte, received func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/v2/"+o.repo+"/blobs/"+d.Digest.String()), nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET blob %s: %s", d.Digest, resp.Status)
	}
	final := filepath.Join(o.out, "blobs", "sha256", d.Digest.Encoded())
	f, err := os.Create(final + ".partial")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if o.prealloc && d.Size > 0 {
		if err := preallocate(f, d.Size); err != nil {
			return err
		}
	}
	h := sha256.New()
	var stage []byte
	if o.staged {
		stage = make([]byte, 0, len(buf))
	}
	var n, flushed int64
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			if o.staged {
				if len(stage)+k > cap(stage) {
					if _, err := f.Write(stage); err != nil {
						return err
					}
					stage = stage[:0]
				}
				stage = append(stage, buf[:k]...)
			} else if _, err := f.Write(buf[:k]); err != nil {
				return err
			}
			n += int64(k)
			if o.writeback > 0 && n-flushed >= o.writeback {
				if err := startWriteback(f, flushed, n-flushed, o.writebackWait); err != nil {
					return err
				}
				flushed = n
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("GET blob %s: %w", d.Digest, rerr)
		}
	}
	if len(stage) > 0 {
		if _, err := f.Write(stage); err != nil {
			return err
		}
	}
	received()
	if n != d.Size {
		return fmt.Errorf("blob %s: %d bytes, want %d", d.Digest, n, d.Size)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != d.Digest {
		return fmt.Errorf("blob %s: content hashes to %s", d.Digest, got)
	}
	if !o.noSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return err
	}
	if o.syncDir && !o.noSync {
		dir, err := os.Open(filepath.Dir(final))
		if err != nil {
			return err
		}
		defer dir.Close()
		return dir.Sync()
	}
	return nil
}
