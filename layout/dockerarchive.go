package layout

import (
	"encoding/json"
	"fmt"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

const (
	dockerManifestFile     = "manifest.json"
	dockerRepositoriesFile = "repositories"
	// maxIndexDepth bounds the nesting of indexes followed to find an image manifest.
	maxIndexDepth = 4
)

// dockerManifestItem is one image of docker's manifest.json (docker save's format):
// paths inside the archive of the config and of the layers, and the familiar names.
type dockerManifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerArchive returns the content of manifest.json and of repositories (nil when no
// tagged image has a known top layer) for the tagged images of the tar. An image
// appears in manifest.json when the tar holds its manifest, its config and all its
// layers; an index root contributes one image, chosen by chooseManifest. Entries come
// in the order of the Tag calls, an image tagged twice once with both names.
func (t *Tar) dockerArchive() (manifest, repos []byte, err error) {
	items := []*dockerManifestItem{}
	byManifest := map[digest.Digest]*dockerManifestItem{}
	repositories := map[string]map[string]string{}
	for _, tg := range t.tags {
		md, ok := t.chooseManifest(tg.root, 0)
		if !ok {
			continue
		}
		var m ocitypes.Manifest
		if err := json.Unmarshal(t.meta[md.Digest], &m); err != nil || !isConfig(m.Config.MediaType) {
			continue
		}
		if !t.holds(m.Config) {
			continue
		}
		complete := true
		for _, l := range m.Layers {
			complete = complete && t.holds(l)
		}
		if !complete {
			continue
		}
		repo, tag := familiarRepoTag(tg.name)
		item := byManifest[md.Digest]
		if item == nil {
			item = &dockerManifestItem{Config: blobName(m.Config.Digest), Layers: []string{}}
			for _, l := range m.Layers {
				item.Layers = append(item.Layers, blobName(l.Digest))
			}
			byManifest[md.Digest] = item
			items = append(items, item)
		}
		if tag == "" {
			continue
		}
		item.RepoTags = append(item.RepoTags, repo+":"+tag)
		if top, ok := t.topLayerID(m.Config.Digest); ok {
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][tag] = top
		}
	}
	manifest, err = json.Marshal(items)
	if err != nil {
		return nil, nil, fmt.Errorf("encode manifest.json: %w", err)
	}
	manifest = append(manifest, '\n')
	if len(repositories) > 0 {
		repos, err = json.Marshal(repositories)
		if err != nil {
			return nil, nil, fmt.Errorf("encode repositories: %w", err)
		}
		repos = append(repos, '\n')
	}
	return manifest, repos, nil
}

// holds reports whether the tar holds blob d complete.
func (t *Tar) holds(d ocitypes.Descriptor) bool {
	size, ok := t.written[d.Digest]
	return ok && size == d.Size
}

// chooseManifest returns the image manifest that manifest.json describes for root: root
// itself when it is a manifest; for an index, its manifest for the Platform option if
// the tar holds it, else the first image manifest of the index that the tar holds
// (nested indexes are followed, attestation manifests of platform unknown/unknown are
// skipped).
func (t *Tar) chooseManifest(root ocitypes.Descriptor, depth int) (ocitypes.Descriptor, bool) {
	b, ok := t.meta[root.Digest]
	if !ok {
		return ocitypes.Descriptor{}, false
	}
	if ocitypes.IsManifest(root.MediaType) {
		return root, true
	}
	if !ocitypes.IsIndex(root.MediaType) || depth >= maxIndexDepth {
		return ocitypes.Descriptor{}, false
	}
	var idx ocitypes.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocitypes.Descriptor{}, false
	}
	if p := t.opts.Platform; p != nil {
		for _, d := range idx.Manifests {
			if platformMatches(p, d.Platform) {
				if md, ok := t.chooseManifest(d, depth+1); ok {
					return md, true
				}
			}
		}
	}
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "unknown" {
			continue
		}
		if md, ok := t.chooseManifest(d, depth+1); ok {
			return md, true
		}
	}
	return ocitypes.Descriptor{}, false
}

// platformMatches reports whether got is the platform want: same os and architecture,
// and same variant when want has one.
func platformMatches(want, got *ocitypes.Platform) bool {
	return got != nil && got.OS == want.OS && got.Architecture == want.Architecture &&
		(want.Variant == "" || got.Variant == want.Variant)
}

// topLayerID returns the hex of the last diff_id of the image config dg, which docker's
// repositories file names as the image of a tag.
func (t *Tar) topLayerID(dg digest.Digest) (string, bool) {
	b, ok := t.meta[dg]
	if !ok {
		return "", false
	}
	var img ocitypes.Image
	if err := json.Unmarshal(b, &img); err != nil || len(img.RootFS.DiffIDs) == 0 {
		return "", false
	}
	top := img.RootFS.DiffIDs[len(img.RootFS.DiffIDs)-1]
	if top.Validate() != nil {
		return "", false
	}
	return top.Encoded(), true
}
