package ocitypes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
)

// fixture returns the bytes of testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMediaTypeOf(t *testing.T) {
	const (
		ociManifestNoType = `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`
		ociIndexNoType    = `{"schemaVersion":2,"manifests":[]}`
	)
	tests := []struct {
		name        string
		contentType string
		body        string
		file        string
		want        string
		wantErr     error
		errContains string
	}{
		{name: "oci index", contentType: MediaTypeOCIIndex, file: "oci-index-attestations.json", want: MediaTypeOCIIndex},
		{name: "docker list", contentType: MediaTypeDockerManifestList, file: "docker-manifest-list.json", want: MediaTypeDockerManifestList},
		{name: "oci manifest", contentType: MediaTypeOCIManifest, file: "oci-manifest.json", want: MediaTypeOCIManifest},
		{name: "docker v2", contentType: MediaTypeDockerManifest, file: "docker-manifest-v2.json", want: MediaTypeDockerManifest},
		{name: "content-type parameters ignored", contentType: MediaTypeDockerManifest + "; charset=utf-8", file: "docker-manifest-v2.json", want: MediaTypeDockerManifest},
		{name: "content-type case ignored", contentType: "Application/VND.docker.distribution.manifest.v2+JSON", file: "docker-manifest-v2.json", want: MediaTypeDockerManifest},
		{name: "generic json uses the field", contentType: "application/json;charset=ISO-8859-1", file: "docker-manifest-v2.json", want: MediaTypeDockerManifest},
		{name: "octet-stream uses the field", contentType: "application/octet-stream", file: "oci-index-attestations.json", want: MediaTypeOCIIndex},
		{name: "no content-type, field", contentType: "", file: "docker-manifest-list.json", want: MediaTypeDockerManifestList},
		{name: "text/plain, keys say index", contentType: "text/plain", body: ociIndexNoType, want: MediaTypeOCIIndex},
		{name: "no content-type, keys say manifest", body: ociManifestNoType, want: MediaTypeOCIManifest},
		{name: "content-type without field", contentType: MediaTypeOCIManifest, body: ociManifestNoType, want: MediaTypeOCIManifest},
		{name: "field contradicts content-type", contentType: MediaTypeOCIManifest, file: "docker-manifest-v2.json",
			wantErr: errdef.ErrInvalidManifest, errContains: `invalid manifest: mediaType "application/vnd.docker.distribution.manifest.v2+json" in the body contradicts content-type "application/vnd.oci.image.manifest.v1+json"`},
		{name: "index content-type, manifest body", contentType: MediaTypeOCIIndex, body: ociManifestNoType,
			wantErr: errdef.ErrInvalidManifest, errContains: `ambiguous body: an index (application/vnd.oci.image.index.v1+json) with a "config" key`},
		{name: "manifest content-type, index body", contentType: MediaTypeOCIManifest, body: ociIndexNoType,
			wantErr: errdef.ErrInvalidManifest, errContains: `with a "manifests" key`},
		{name: "both kinds of keys", body: `{"schemaVersion":2,"manifests":[],"layers":[]}`,
			wantErr: errdef.ErrInvalidManifest, errContains: "ambiguous"},
		{name: "schema1 signed by content-type", contentType: MediaTypeDockerSchema1Signed, file: "schema1-signed.json",
			wantErr: errdef.ErrUnsupported, errContains: "unsupported: docker image manifest schema 1 (content-type application/vnd.docker.distribution.manifest.v1+prettyjws) is not supported; the image must be rebuilt or pushed again as docker schema 2 or oci"},
		{name: "schema1 by schemaVersion", contentType: "application/json", file: "schema1-signed.json",
			wantErr: errdef.ErrUnsupported, errContains: "schemaVersion 1"},
		{name: "schema1 by field", body: `{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}`,
			wantErr: errdef.ErrUnsupported, errContains: "mediaType application/vnd.docker.distribution.manifest.v1+json"},
		{name: "unknown content-type", contentType: "application/vnd.oci.artifact.manifest.v1+json", body: `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}`,
			wantErr: errdef.ErrUnsupported, errContains: `media type "application/vnd.oci.artifact.manifest.v1+json" is neither an image manifest nor an index`},
		{name: "unknown field", body: `{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`,
			wantErr: errdef.ErrUnsupported},
		{name: "html error page", contentType: "text/html", body: `{}`, wantErr: errdef.ErrUnsupported},
		{name: "nothing to go on", contentType: "application/json", body: `{"schemaVersion":2}`,
			wantErr: errdef.ErrInvalidManifest, errContains: "cannot tell the media type"},
		{name: "mediaType not a string", body: `{"schemaVersion":2,"mediaType":2,"manifests":[]}`,
			wantErr: errdef.ErrInvalidManifest, errContains: "mediaType is 2, not a string"},
		{name: "schemaVersion a string", body: `{"schemaVersion":"2","manifests":[]}`,
			wantErr: errdef.ErrInvalidManifest, errContains: `schemaVersion is "2", not an integer`},
		{name: "not an object", body: `[{"schemaVersion":2}]`, wantErr: errdef.ErrInvalidManifest, errContains: "not a json object"},
		{name: "null", body: `null`, wantErr: errdef.ErrInvalidManifest},
		{name: "empty", body: ``, wantErr: errdef.ErrInvalidManifest, errContains: "empty body"},
		{name: "trailing garbage", body: ociIndexNoType + `x`, wantErr: errdef.ErrInvalidManifest, errContains: "malformed json"},
		{name: "two objects", body: ociIndexNoType + ` {}`, wantErr: errdef.ErrInvalidManifest, errContains: "after top-level value"},
		{name: "trailing white space", body: ociIndexNoType + " \n\t", want: MediaTypeOCIIndex},
		{name: "truncated", body: ociIndexNoType[:20], wantErr: errdef.ErrInvalidManifest},
		{name: "duplicate mediaType", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"mediaType":"application/vnd.oci.image.manifest.v1+json"}`,
			wantErr: errdef.ErrInvalidManifest, errContains: `duplicate key "mediaType"`},
		{name: "case-folded duplicate", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"MediaType":"application/vnd.oci.image.manifest.v1+json"}`,
			wantErr: errdef.ErrInvalidManifest, errContains: `duplicate key "MediaType"`},
		{name: "nested duplicate", body: `{"schemaVersion":2,"manifests":[{"digest":"a","size":1,"digest":"b"}]}`,
			wantErr: errdef.ErrInvalidManifest, errContains: `duplicate key "digest"`},
		{name: "long s folds to s", body: "{\"schemaVersion\":2,\"manifests\":[],\"manifest\u017F\":[{}]}",
			wantErr: errdef.ErrInvalidManifest, errContains: "duplicate key"},
		{name: "kelvin sign folds to k", body: "{\"schemaVersion\":2,\"manifests\":[{\"\u212Aeep\":1,\"size\":1,\"\u017Fize\":2}]}",
			wantErr: errdef.ErrInvalidManifest, errContains: "regardless of case"},
		{name: "case variants of map keys are fine", body: `{"schemaVersion":2,"manifests":[],"annotations":{"org.example":"a","ORG.EXAMPLE":"b"}}`, want: MediaTypeOCIIndex},
		{name: "exact duplicate map keys are not", body: `{"schemaVersion":2,"manifests":[],"annotations":{"a":"1","a":"2"}}`,
			wantErr: errdef.ErrInvalidManifest, errContains: `duplicate key "a"`},
		{name: "same key in sibling objects is fine", body: `{"schemaVersion":2,"manifests":[{"a":1},{"a":2}],"x":{"a":{"a":1}}}`, want: MediaTypeOCIIndex},
		{name: "too large", body: `{"manifests":[]}` + strings.Repeat(" ", MaxManifestSize), wantErr: errdef.ErrSizeExceedsLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = fixture(t, tt.file)
			}
			got, err := MediaTypeOf(tt.contentType, body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("MediaTypeOf(%q) error = %v, want %v", tt.contentType, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("MediaTypeOf(%q) error = %q, want it to contain %q", tt.contentType, err, tt.errContains)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("MediaTypeOf(%q) = %q, %v, want %q", tt.contentType, got, err, tt.want)
			}
		})
	}
}

func TestMediaTypePredicates(t *testing.T) {
	tests := []struct {
		mediaType                string
		index, manifest, foreign bool
	}{
		{MediaTypeOCIIndex, true, false, false},
		{MediaTypeDockerManifestList, true, false, false},
		{MediaTypeOCIManifest, false, true, false},
		{MediaTypeDockerManifest, false, true, false},
		{MediaTypeDockerManifest + "; charset=utf-8", false, true, false},
		{strings.ToUpper(MediaTypeOCIIndex), true, false, false},
		{MediaTypeDockerSchema1, false, false, false},
		{MediaTypeDockerSchema1Signed, false, false, false},
		{MediaTypeOCIConfig, false, false, false},
		{MediaTypeOCILayerGzip, false, false, false},
		{MediaTypeDockerLayer, false, false, false},
		{MediaTypeDockerForeignLayer, false, false, true},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar", false, false, true},
		{MediaTypeOCILayerNondistributable, false, false, true},
		{MediaTypeOCILayerNondistributableGzip, false, false, true},
		{MediaTypeOCILayerNondistributableZstd, false, false, true},
		{"", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.mediaType, func(t *testing.T) {
			if got := IsIndex(tt.mediaType); got != tt.index {
				t.Errorf("IsIndex(%q) = %v, want %v", tt.mediaType, got, tt.index)
			}
			if got := IsManifest(tt.mediaType); got != tt.manifest {
				t.Errorf("IsManifest(%q) = %v, want %v", tt.mediaType, got, tt.manifest)
			}
			if got := IsForeignLayer(tt.mediaType); got != tt.foreign {
				t.Errorf("IsForeignLayer(%q) = %v, want %v", tt.mediaType, got, tt.foreign)
			}
		})
	}
}

func TestManifestAccept(t *testing.T) {
	want := []string{MediaTypeOCIIndex, MediaTypeOCIManifest, MediaTypeDockerManifestList, MediaTypeDockerManifest}
	if strings.Join(ManifestAccept, ",") != strings.Join(want, ",") {
		t.Errorf("ManifestAccept = %q, want %q", ManifestAccept, want)
	}
	for _, mt := range ManifestAccept {
		if !IsIndex(mt) && !IsManifest(mt) {
			t.Errorf("ManifestAccept holds %q, neither index nor manifest", mt)
		}
	}
}

func TestMediaTypeConstants(t *testing.T) {
	// The OCI constants must equal image-spec's own.
	tests := []struct{ got, want string }{
		{MediaTypeOCIManifest, "application/vnd.oci.image.manifest.v1+json"},
		{MediaTypeOCIIndex, "application/vnd.oci.image.index.v1+json"},
		{MediaTypeOCIConfig, "application/vnd.oci.image.config.v1+json"},
		{MediaTypeOCILayer, "application/vnd.oci.image.layer.v1.tar"},
		{MediaTypeOCILayerGzip, "application/vnd.oci.image.layer.v1.tar+gzip"},
		{MediaTypeOCILayerZstd, "application/vnd.oci.image.layer.v1.tar+zstd"},
		{MediaTypeOCIEmpty, "application/vnd.oci.empty.v1+json"},
		{MediaTypeOCILayoutHeader, "application/vnd.oci.layout.header.v1+json"},
		{MediaTypeOCILayerNondistributableGzip, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("constant = %q, want %q", tt.got, tt.want)
		}
		if !validMediaType(tt.got) {
			t.Errorf("validMediaType(%q) = false", tt.got)
		}
	}
}

func TestValidMediaType(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"application/json", true},
		{"application/vnd.in-toto+json", true},
		{"application/vnd.wasm.content.layer.v1+wasm", true},
		{"application", false},
		{"application/", false},
		{"/json", false},
		{"application/json; charset=utf-8", false},
		{"application/js on", false},
		{"application/+json", false},
		{"a/b/c", false},
		{strings.Repeat("a", 127) + "/b", true},
		{strings.Repeat("a", 128) + "/b", false},
	}
	for _, tt := range tests {
		if got := validMediaType(tt.in); got != tt.want {
			t.Errorf("validMediaType(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
