package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registryAPI talks plain HTTP to a registry on host ("127.0.0.1:5000"), anonymously.
type registryAPI struct {
	host   string
	client *http.Client
}

func newRegistryAPI(host string) *registryAPI {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 16
	return &registryAPI{host: host, client: &http.Client{Transport: t}}
}

func (r *registryAPI) url(path string) string { return "http://" + r.host + path }

// waitReady polls GET /v2/ until the registry answers 200, for at most timeout.
func (r *registryAPI) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/v2/"), nil)
		resp, err := r.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry %s not ready after %s: %w", r.host, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// push uploads the blobs and manifests of p from cache into repository p.Name; blobs
// the registry already has are skipped. The root is tagged "latest".
func (r *registryAPI) push(ctx context.Context, cache string, p *plan, logf func(string, ...any)) error {
	start := time.Now()
	var uploaded, skipped int
	for _, d := range p.Blobs {
		has, err := r.hasBlob(ctx, p.Name, d)
		if err != nil {
			return err
		}
		if has {
			skipped++
			continue
		}
		if err := r.uploadBlob(ctx, cache, p.Name, d); err != nil {
			return err
		}
		uploaded++
	}
	for i, m := range p.Manifests {
		body, err := os.ReadFile(blobPath(cache, m.Digest))
		if err != nil {
			return err
		}
		refs := []string{m.Digest.String()}
		if i == len(p.Manifests)-1 {
			refs = append(refs, "latest")
		}
		for _, ref := range refs {
			if err := r.putManifest(ctx, p.Name, ref, m.MediaType, body); err != nil {
				return err
			}
		}
	}
	logf("image %s: pushed %d blobs, %d already there, in %s", p.Name, uploaded, skipped, time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *registryAPI) hasBlob(ctx context.Context, repo string, d ocispec.Descriptor) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("/v2/"+repo+"/blobs/"+d.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength == d.Size, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("HEAD blob %s: %s", d.Digest, resp.Status)
}

// uploadBlob pushes one blob monolithically: POST to open an upload, PUT its bytes.
func (r *registryAPI) uploadBlob(ctx context.Context, cache, repo string, d ocispec.Descriptor) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v2/"+repo+"/blobs/uploads/"), nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST upload of %s: %s", d.Digest, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload location %q: %w", resp.Header.Get("Location"), err)
	}
	q := loc.Query()
	q.Set("digest", d.Digest.String())
	loc.RawQuery = q.Encode()

	f, err := os.Open(blobPath(cache, d.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), f)
	if err != nil {
		return err
	}
	req.ContentLength = d.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = r.client.Do(req)
	if err != nil {
		return fmt.Errorf("PUT blob %s: %w", d.Digest, err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT blob %s: %s", d.Digest, resp.Status)
	}
	return nil
}

func (r *registryAPI) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("/v2/"+repo+"/manifests/"+url.PathEscape(ref)), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT manifest %s:%s: %s: %s", repo, ref, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
