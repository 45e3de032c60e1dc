package serve

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
	"github.com/opencontainers/go-digest"
)

// repoPath is the distribution-spec grammar of a repository name.
var repoPath = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// tagGrammar is the distribution-spec grammar of a tag.
var tagGrammar = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// view is what the server serves from one reading of index.json: the repositories,
// their tags, and which manifests and blobs each one holds.
type view struct {
	repos   map[string]*repo // by name, aliases included
	catalog []string         // the names, sorted, without aliases
}

// repo is one repository of the view.
type repo struct {
	name      string
	tags      map[string]ocitypes.Descriptor
	tagList   []string                              // sorted
	manifests map[digest.Digest]ocitypes.Descriptor // every manifest and index reachable from its roots
	blobs     map[digest.Digest]int64               // every blob (manifests too) and its size
	referrers map[digest.Digest][]ocitypes.Descriptor
}

func newRepo(name string) *repo {
	return &repo{
		name:      name,
		tags:      make(map[string]ocitypes.Descriptor),
		manifests: make(map[digest.Digest]ocitypes.Descriptor),
		blobs:     make(map[digest.Digest]int64),
		referrers: make(map[digest.Digest][]ocitypes.Descriptor),
	}
}

// manifestInfo is what the view needs of a manifest or index: its children, and what a
// referrers response says of it.
type manifestInfo struct {
	MediaType    string                `json:"mediaType"`
	ArtifactType string                `json:"artifactType"`
	Config       *ocitypes.Descriptor  `json:"config"`
	Layers       []ocitypes.Descriptor `json:"layers"`
	Blobs        []ocitypes.Descriptor `json:"blobs"` // the withdrawn artifact manifest
	Manifests    []ocitypes.Descriptor `json:"manifests"`
	Subject      *ocitypes.Descriptor  `json:"subject"`
	Annotations  map[string]string     `json:"annotations"`
}

// imageName returns the repository and tag an index.json entry is served under. The
// full name (io.containerd.image.name) gives both: "127.0.0.1:5000/many:latest" is
// tag latest of repository many. An entry with only a tag (org.opencontainers.image.ref.name,
// as skopeo writes) belongs to the default repository, unless its tag is itself a
// full name. An entry with neither is in the default repository, untagged.
func imageName(im layout.Image, defaultRepo string) (repository, tag string) {
	if im.Name != "" {
		if n, err := ref.Parse(im.Name); err == nil {
			tag = n.Tag()
			if tag == "" && tagGrammar.MatchString(im.Tag) {
				tag = im.Tag
			}
			return n.Repository(), tag
		}
	}
	switch {
	case im.Tag == "":
		return defaultRepo, ""
	case tagGrammar.MatchString(im.Tag):
		return defaultRepo, im.Tag
	}
	if n, err := ref.Parse(im.Tag); err == nil && n.Tag() != "" {
		return n.Repository(), n.Tag()
	}
	return defaultRepo, ""
}

// DefaultRepository returns the repository name that images named only by a tag are
// served under for the layout at path: its directory's base name, lower-cased, with
// characters a repository name cannot hold replaced by "-" ("testdata/hello" gives
// "hello"); "layout" when nothing usable is left.
func DefaultRepository(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	base := strings.ToLower(filepath.Base(abs))
	var b strings.Builder
	for _, c := range base {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-._")
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	if !repoPath.MatchString(name) {
		return "layout"
	}
	return name
}

// builder builds a view, reading each manifest once.
type builder struct {
	h     *Handler
	infos map[digest.Digest]*manifestInfo // nil entry: unreadable
	v     *view
}

// buildView builds the view of the layout's current index.json.
func (h *Handler) buildView() *view {
	b := &builder{h: h, infos: make(map[digest.Digest]*manifestInfo), v: &view{repos: make(map[string]*repo)}}
	var unnamed []ocitypes.Descriptor // entries without any name: referrers, or untagged images
	for _, im := range h.reader.Images() {
		name, tag := imageName(im, h.defaultRepo)
		if im.Name == "" && im.Tag == "" {
			unnamed = append(unnamed, im.Descriptor)
			continue
		}
		r := b.repo(name)
		if tag != "" {
			r.tags[tag] = im.Descriptor
		}
		b.walk(r, im.Descriptor)
	}
	// An entry without any name belongs to the default repository, unless it is a
	// referrer: then it belongs to the repositories holding its subject (a signature
	// of a referrer lands once the referrer has), and to the default one only when
	// no repository holds its subject.
	for _, d := range unnamed {
		if info := b.info(d); info == nil || info.Subject == nil {
			b.walk(b.repo(h.defaultRepo), d)
		}
	}
	for changed := true; changed; {
		changed = false
		for _, d := range unnamed {
			info := b.info(d)
			if info == nil || info.Subject == nil {
				continue
			}
			for _, r := range b.v.repos {
				if _, ok := r.manifests[info.Subject.Digest]; ok {
					if _, done := r.manifests[d.Digest]; !done {
						b.walk(r, d)
						changed = true
					}
				}
			}
		}
	}
	for _, d := range unnamed {
		if !b.placed(d.Digest) {
			b.walk(b.repo(h.defaultRepo), d)
		}
	}
	for name, r := range b.v.repos {
		b.v.catalog = append(b.v.catalog, name)
		for t := range r.tags {
			r.tagList = append(r.tagList, t)
		}
		slices.Sort(r.tagList)
		for _, list := range r.referrers {
			slices.SortFunc(list, func(a, b ocitypes.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		}
	}
	slices.Sort(b.v.catalog)
	// Docker Hub's official images answer to their short name too: library/alpine
	// is also alpine, unless a repository of that name exists.
	for _, name := range b.v.catalog {
		if short, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(short, "/") {
			if _, taken := b.v.repos[short]; !taken {
				b.v.repos[short] = b.v.repos[name]
			}
		}
	}
	return b.v
}

// placed reports whether a repository holds the manifest dg.
func (b *builder) placed(dg digest.Digest) bool {
	for _, r := range b.v.repos {
		if _, ok := r.manifests[dg]; ok {
			return true
		}
	}
	return false
}

func (b *builder) repo(name string) *repo {
	r := b.v.repos[name]
	if r == nil {
		r = newRepo(name)
		b.v.repos[name] = r
	}
	return r
}

// walk adds the manifest or index d and everything it references to r.
func (b *builder) walk(r *repo, d ocitypes.Descriptor) {
	if _, done := r.manifests[d.Digest]; done {
		return
	}
	info := b.info(d)
	if info != nil && d.MediaType == "" {
		d.MediaType = info.MediaType
	}
	r.manifests[d.Digest] = d
	r.blobs[d.Digest] = d.Size
	if info == nil {
		return
	}
	if info.Subject != nil {
		r.referrers[info.Subject.Digest] = append(r.referrers[info.Subject.Digest], referrer(d, info))
	}
	for _, c := range info.Manifests {
		b.walk(r, c)
	}
	if info.Config != nil {
		r.blobs[info.Config.Digest] = info.Config.Size
	}
	for _, l := range append(info.Layers, info.Blobs...) {
		r.blobs[l.Digest] = l.Size
	}
}

// info reads and parses the manifest or index d, once; nil when it cannot be read
// (the problem is logged) or is not a manifest.
func (b *builder) info(d ocitypes.Descriptor) *manifestInfo {
	if info, ok := b.infos[d.Digest]; ok {
		return info
	}
	b.infos[d.Digest] = nil
	body, err := b.h.small(d.Digest, d.Size)
	if err != nil {
		b.h.blobProblem(d.Digest, err)
		return nil
	}
	var info manifestInfo
	if err := json.Unmarshal(body, &info); err != nil {
		b.h.log.Warn("manifest does not parse, its children are not served", "digest", d.Digest, "error", err)
		return nil
	}
	if info.MediaType == "" {
		info.MediaType = d.MediaType
	}
	valid := func(ds []ocitypes.Descriptor) []ocitypes.Descriptor {
		return slices.DeleteFunc(ds, func(c ocitypes.Descriptor) bool { return c.Digest.Validate() != nil || c.Size < 0 })
	}
	info.Manifests, info.Layers, info.Blobs = valid(info.Manifests), valid(info.Layers), valid(info.Blobs)
	if info.Config != nil && len(valid([]ocitypes.Descriptor{*info.Config})) == 0 {
		info.Config = nil
	}
	if info.Subject != nil && info.Subject.Digest.Validate() != nil {
		info.Subject = nil
	}
	b.infos[d.Digest] = &info
	return &info
}

// referrer returns the descriptor of manifest d in a referrers response: its
// artifactType (the manifest's, else its config's media type) and annotations.
func referrer(d ocitypes.Descriptor, info *manifestInfo) ocitypes.Descriptor {
	out := ocitypes.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: info.ArtifactType, Annotations: info.Annotations}
	if out.MediaType == "" {
		out.MediaType = info.MediaType
	}
	if out.ArtifactType == "" && info.Config != nil && !ocitypes.IsIndex(out.MediaType) {
		out.ArtifactType = info.Config.MediaType
	}
	return out
}
