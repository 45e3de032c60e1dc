package ocitypes

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ocistream/ocistream/errdef"
	digest "github.com/opencontainers/go-digest"
)

// mutate decodes the fixture name, lets edit change it and encodes it again.
func mutate(t *testing.T, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layer returns the i-th layer of a decoded manifest for editing.
func layer(m map[string]any, i int) map[string]any {
	return m["layers"].([]any)[i].(map[string]any)
}

const sha256Empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        func(t *testing.T) []byte
		wantErr     error
		errContains string
		check       func(t *testing.T, m Manifest)
	}{
		{
			name: "oci image", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte { return fixture(t, "oci-manifest.json") },
			check: func(t *testing.T, m Manifest) {
				if len(m.Layers) != 3 || m.Config.MediaType != MediaTypeOCIConfig || m.Config.Size != 1471 ||
					m.Annotations["org.opencontainers.image.ref.name"] != "3.21.3" {
					t.Errorf("ParseManifest(oci-manifest.json) = %+v", m)
				}
			},
		},
		{
			name: "docker schema2", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte { return fixture(t, "docker-manifest-v2.json") },
			check: func(t *testing.T, m Manifest) {
				if m.MediaType != MediaTypeDockerManifest || len(m.Layers) != 2 || m.Layers[0].Size != 2813316 {
					t.Errorf("ParseManifest(docker-manifest-v2.json) = %+v", m)
				}
			},
		},
		{
			name: "foreign layer with urls", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte { return fixture(t, "docker-manifest-foreign.json") },
			check: func(t *testing.T, m Manifest) {
				if !IsForeignLayer(m.Layers[0].MediaType) || len(m.Layers[0].URLs) != 1 || IsForeignLayer(m.Layers[1].MediaType) {
					t.Errorf("ParseManifest(docker-manifest-foreign.json) layers = %+v", m.Layers)
				}
			},
		},
		{
			name: "artifact with subject and embedded data", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte { return fixture(t, "oci-artifact.json") },
			check: func(t *testing.T, m Manifest) {
				if m.ArtifactType != "application/spdx+json" || m.Subject == nil || string(m.Config.Data) != "{}" {
					t.Errorf("ParseManifest(oci-artifact.json) = %+v", m)
				}
			},
		},
		{
			name: "artifact without layers", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte { return fixture(t, "oci-artifact-nolayers.json") },
			check: func(t *testing.T, m Manifest) {
				if m.Layers == nil || len(m.Layers) != 0 {
					t.Errorf("ParseManifest(oci-artifact-nolayers.json) layers = %#v, want empty", m.Layers)
				}
			},
		},
		{
			name: "generic content-type", contentType: "application/octet-stream",
			body: func(t *testing.T) []byte { return fixture(t, "oci-manifest.json") },
		},
		{
			name: "docker image with empty layers", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { m["layers"] = []any{} })
			},
		},
		{
			name: "layers null is empty", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { m["layers"] = nil })
			},
		},
		{
			name: "unknown fields allowed", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) {
					m["futureField"] = map[string]any{"x": 1}
					layer(m, 0)["futureDescriptorField"] = true
				})
			},
		},
		{
			name: "layers missing in docker schema2", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { delete(m, "layers") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "invalid manifest: layers is missing",
		},
		{
			name: "layers missing in oci", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact-nolayers.json", func(m map[string]any) { delete(m, "layers") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "layers is missing",
		},
		{
			name: "bad digest length", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) { layer(m, 2)["digest"] = "sha256:abc" })
			},
			wantErr: digest.ErrDigestInvalidLength, errContains: `invalid manifest: layers[2]: digest "sha256:abc": invalid checksum digest length`,
		},
		{
			name: "upper-case digest", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) {
					layer(m, 0)["digest"] = strings.ToUpper(sha256Empty[:7]) + strings.ToUpper(sha256Empty[7:])
				})
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "layers[0]: digest",
		},
		{
			name: "unsupported digest algorithm", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) { layer(m, 1)["digest"] = "md5:d41d8cd98f00b204e9800998ecf8427e" })
			},
			wantErr: digest.ErrDigestUnsupported, errContains: "layers[1]: digest",
		},
		{
			name: "digest missing", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) { delete(layer(m, 1), "digest") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "layers[1]: digest is missing",
		},
		{
			name: "negative size", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { layer(m, 0)["size"] = -1 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "invalid manifest: layers[0]: size -1 is negative",
		},
		{
			name: "fractional size", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { layer(m, 0)["size"] = 1.5 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "size",
		},
		{
			name: "layer mediaType missing", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { delete(layer(m, 1), "mediaType") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "layers[1]: mediaType is missing",
		},
		{
			name: "layer mediaType malformed", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { layer(m, 1)["mediaType"] = "tar.gz" })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: `layers[1]: mediaType "tar.gz" is not a media type`,
		},
		{
			name: "wrong schemaVersion", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) { m["schemaVersion"] = 3 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "invalid manifest: schemaVersion is 3, want 2",
		},
		{
			name: "schemaVersion missing", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-manifest.json", func(m map[string]any) { delete(m, "schemaVersion") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "schemaVersion is missing",
		},
		{
			name: "mediaType contradicts content-type", contentType: MediaTypeDockerManifest,
			body:    func(t *testing.T) []byte { return fixture(t, "oci-manifest.json") },
			wantErr: errdef.ErrInvalidManifest, errContains: "contradicts content-type",
		},
		{
			name: "an index", contentType: MediaTypeOCIIndex,
			body:    func(t *testing.T) []byte { return fixture(t, "oci-index-attestations.json") },
			wantErr: errdef.ErrInvalidManifest, errContains: "is an index, not an image manifest",
		},
		{
			name: "schema1", contentType: MediaTypeDockerSchema1Signed,
			body:    func(t *testing.T) []byte { return fixture(t, "schema1-signed.json") },
			wantErr: errdef.ErrUnsupported, errContains: "schema 1",
		},
		{
			name: "config missing", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { delete(m, "config") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "config is missing",
		},
		{
			name: "config invalid", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { m["config"] = map[string]any{} })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "config: mediaType is missing",
		},
		{
			name: "config not an object", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-v2.json", func(m map[string]any) { m["config"] = "sha256:abc" })
			},
			wantErr: errdef.ErrInvalidManifest,
		},
		{
			name: "relative url", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-foreign.json", func(m map[string]any) { layer(m, 0)["urls"] = []any{"/v2/blobs/x"} })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: `layers[0]: urls[0]: "/v2/blobs/x" is not an absolute http or https url`,
		},
		{
			name: "ftp url", contentType: MediaTypeDockerManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-foreign.json", func(m map[string]any) {
					layer(m, 0)["urls"] = []any{"https://mcr.microsoft.com/a", "ftp://example.com/layer"}
				})
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "urls[1]",
		},
		{
			name: "embedded data does not match digest", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact.json", func(m map[string]any) { m["config"].(map[string]any)["data"] = "W10=" })
			},
			wantErr: errdef.ErrDigestMismatch, errContains: "config: data digest",
		},
		{
			name: "embedded data of the wrong size", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact.json", func(m map[string]any) { m["config"].(map[string]any)["data"] = "e30K" })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "config: data holds 3 bytes, size says 2",
		},
		{
			name: "empty config without artifactType", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact.json", func(m map[string]any) { delete(m, "artifactType") })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "artifactType is missing",
		},
		{
			name: "bad artifactType", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact.json", func(m map[string]any) { m["artifactType"] = "sbom" })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: `artifactType "sbom" is not a media type`,
		},
		{
			name: "bad subject", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-artifact.json", func(m map[string]any) { m["subject"].(map[string]any)["size"] = -5 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "subject: size -5 is negative",
		},
		{
			name: "trailing garbage", contentType: MediaTypeOCIManifest,
			body:    func(t *testing.T) []byte { return append(fixture(t, "oci-manifest.json"), "}"...) },
			wantErr: errdef.ErrInvalidManifest, errContains: "malformed json",
		},
		{
			name: "exactly MaxManifestSize", contentType: MediaTypeOCIManifest,
			body: func(t *testing.T) []byte { return padTo(t, fixture(t, "oci-manifest.json"), MaxManifestSize) },
		},
		{
			name: "MaxManifestSize+1", contentType: MediaTypeOCIManifest,
			body:    func(t *testing.T) []byte { return padTo(t, fixture(t, "oci-manifest.json"), MaxManifestSize+1) },
			wantErr: errdef.ErrSizeExceedsLimit, errContains: "manifest of 4194305 bytes is larger than the 4194304 byte limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest(tt.contentType, tt.body(t))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseManifest() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParseManifest() error = %q, want it to contain %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseManifest() error = %v", err)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

// padTo pads a JSON body with an annotation so that it is exactly n bytes long.
func padTo(t *testing.T, body []byte, n int) []byte {
	t.Helper()
	body = bytes.TrimSpace(body)
	prefix := append(body[:len(body)-1:len(body)-1], `,"padding":"`...)
	fill := n - len(prefix) - len(`"}`)
	if fill < 0 {
		t.Fatalf("body of %d bytes cannot be padded to %d", len(body), n)
	}
	out := append(prefix, bytes.Repeat([]byte("x"), fill)...)
	out = append(out, `"}`...)
	if len(out) != n {
		t.Fatalf("padded to %d bytes, want %d", len(out), n)
	}
	return out
}

func TestParseIndex(t *testing.T) {
	entry := func(m map[string]any, i int) map[string]any { return m["manifests"].([]any)[i].(map[string]any) }
	tests := []struct {
		name        string
		contentType string
		body        func(t *testing.T) []byte
		wantErr     error
		errContains string
		wantLen     int
	}{
		{name: "oci index with attestations", contentType: MediaTypeOCIIndex, wantLen: 16,
			body: func(t *testing.T) []byte { return fixture(t, "oci-index-attestations.json") }},
		{name: "docker manifest list", contentType: MediaTypeDockerManifestList, wantLen: 10,
			body: func(t *testing.T) []byte { return fixture(t, "docker-manifest-list.json") }},
		{name: "referrers with null manifests", contentType: MediaTypeOCIIndex, wantLen: 0,
			body: func(t *testing.T) []byte { return fixture(t, "oci-index-referrers-null.json") }},
		{name: "index without mediaType, generic content-type", contentType: "application/json", wantLen: 0,
			body: func(t *testing.T) []byte { return []byte(`{"schemaVersion":2,"manifests":[]}`) }},
		{name: "manifests missing", contentType: MediaTypeOCIIndex,
			body: func(t *testing.T) []byte {
				return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`)
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "manifests is missing"},
		{name: "wrong schemaVersion", contentType: MediaTypeDockerManifestList,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-list.json", func(m map[string]any) { m["schemaVersion"] = 1 })
			},
			wantErr: errdef.ErrUnsupported, errContains: "schema 1"},
		{name: "schemaVersion 0", contentType: MediaTypeDockerManifestList,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-list.json", func(m map[string]any) { m["schemaVersion"] = 0 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "schemaVersion is 0, want 2"},
		{name: "bad entry digest", contentType: MediaTypeDockerManifestList,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-list.json", func(m map[string]any) { entry(m, 3)["digest"] = "sha256:zz" })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: `manifests[3]: digest "sha256:zz"`},
		{name: "platform without os", contentType: MediaTypeDockerManifestList,
			body: func(t *testing.T) []byte {
				return mutate(t, "docker-manifest-list.json", func(m map[string]any) {
					delete(entry(m, 1)["platform"].(map[string]any), "os")
				})
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "manifests[1]: platform: os is missing"},
		{name: "platform architecture with a slash", contentType: MediaTypeOCIIndex,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-index-attestations.json", func(m map[string]any) {
					entry(m, 0)["platform"].(map[string]any)["architecture"] = "arm/v7"
				})
			},
			wantErr: errdef.ErrInvalidManifest, errContains: `manifests[0]: platform: architecture "arm/v7" holds a character outside [A-Za-z0-9._-]`},
		{name: "negative entry size", contentType: MediaTypeOCIIndex,
			body: func(t *testing.T) []byte {
				return mutate(t, "oci-index-attestations.json", func(m map[string]any) { entry(m, 9)["size"] = -1 })
			},
			wantErr: errdef.ErrInvalidManifest, errContains: "manifests[9]: size -1 is negative"},
		{name: "an image manifest", contentType: MediaTypeDockerManifest,
			body:    func(t *testing.T) []byte { return fixture(t, "docker-manifest-v2.json") },
			wantErr: errdef.ErrInvalidManifest, errContains: "is an image manifest, not an index"},
		{name: "too large", contentType: MediaTypeOCIIndex,
			body: func(t *testing.T) []byte {
				return padTo(t, fixture(t, "oci-index-attestations.json"), MaxManifestSize+1)
			},
			wantErr: errdef.ErrSizeExceedsLimit},
		{name: "exactly the limit", contentType: MediaTypeOCIIndex, wantLen: 16,
			body: func(t *testing.T) []byte { return padTo(t, fixture(t, "oci-index-attestations.json"), MaxManifestSize) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := ParseIndex(tt.contentType, tt.body(t))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseIndex() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParseIndex() error = %q, want it to contain %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIndex() error = %v", err)
			}
			if len(idx.Manifests) != tt.wantLen {
				t.Errorf("ParseIndex() has %d manifests, want %d", len(idx.Manifests), tt.wantLen)
			}
		})
	}
}

func TestParseImageConfig(t *testing.T) {
	edit := func(name string, f func(m map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return mutate(t, name, f) }
	}
	tests := []struct {
		name        string
		body        func(t *testing.T) []byte
		wantErr     error
		errContains string
		want        Platform
	}{
		{name: "oci config", body: func(t *testing.T) []byte { return fixture(t, "oci-config.json") },
			want: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{name: "docker config", body: func(t *testing.T) []byte { return fixture(t, "docker-config.json") },
			want: Platform{OS: "linux", Architecture: "amd64"}},
		{name: "rootfs absent", body: edit("oci-config.json", func(m map[string]any) { delete(m, "rootfs") }),
			want: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{name: "architecture missing", body: edit("oci-config.json", func(m map[string]any) { delete(m, "architecture") }),
			wantErr: errdef.ErrInvalidManifest, errContains: "invalid manifest: image config: architecture is missing"},
		{name: "os missing", body: edit("docker-config.json", func(m map[string]any) { m["os"] = "" }),
			wantErr: errdef.ErrInvalidManifest, errContains: "image config: os is missing"},
		{name: "rootfs type", body: edit("oci-config.json", func(m map[string]any) { m["rootfs"].(map[string]any)["type"] = "layer" }),
			wantErr: errdef.ErrInvalidManifest, errContains: `rootfs.type is "layer", want "layers"`},
		{name: "rootfs type missing", body: edit("oci-config.json", func(m map[string]any) { delete(m["rootfs"].(map[string]any), "type") }),
			wantErr: errdef.ErrInvalidManifest, errContains: `rootfs.type is ""`},
		{name: "bad diff_id", body: edit("oci-config.json", func(m map[string]any) {
			m["rootfs"].(map[string]any)["diff_ids"] = []any{sha256Empty, "sha256:1234"}
		}),
			wantErr: digest.ErrDigestInvalidLength, errContains: `rootfs.diff_ids[1]: digest "sha256:1234"`},
		{name: "bad created", body: edit("oci-config.json", func(m map[string]any) { m["created"] = "yesterday" }),
			wantErr: errdef.ErrInvalidManifest},
		{name: "not an object", body: func(t *testing.T) []byte { return []byte(`"linux"`) },
			wantErr: errdef.ErrInvalidManifest, errContains: "not a json object"},
		{name: "duplicate os", body: func(t *testing.T) []byte { return []byte(`{"architecture":"amd64","os":"linux","os":"windows"}`) },
			wantErr: errdef.ErrInvalidManifest, errContains: `duplicate key "os"`},
		{name: "too large", body: func(t *testing.T) []byte { return padTo(t, fixture(t, "oci-config.json"), MaxManifestSize+1) },
			wantErr: errdef.ErrSizeExceedsLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := ParseImageConfig(tt.body(t))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseImageConfig() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParseImageConfig() error = %q, want it to contain %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseImageConfig() error = %v", err)
			}
			if FormatPlatform(img.Platform) != FormatPlatform(tt.want) {
				t.Errorf("ParseImageConfig() platform = %s, want %s", FormatPlatform(img.Platform), FormatPlatform(tt.want))
			}
		})
	}
}

func TestValidateDescriptor(t *testing.T) {
	valid := func() Descriptor {
		return Descriptor{MediaType: MediaTypeOCILayerGzip, Digest: sha256Empty, Size: 0}
	}
	with := func(f func(d *Descriptor)) Descriptor {
		d := valid()
		f(&d)
		return d
	}
	tests := []struct {
		name        string
		d           Descriptor
		wantErr     error
		errContains string
	}{
		{name: "valid", d: valid()},
		{name: "sha512", d: with(func(d *Descriptor) { d.Digest = digest.SHA512.FromString("x") })},
		{name: "sha384", d: with(func(d *Descriptor) { d.Digest = digest.SHA384.FromString("x") })},
		{name: "urls", d: with(func(d *Descriptor) { d.URLs = []string{"https://example.com/a", "HTTP://example.com:8080/b?c"} })},
		{name: "embedded data", d: Descriptor{MediaType: MediaTypeOCIEmpty, Digest: digest.FromString("{}"), Size: 2, Data: []byte("{}")}},
		{name: "platform", d: with(func(d *Descriptor) {
			d.Platform = &Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6893", OSFeatures: []string{"win32k"}}
		})},
		{name: "mediaType missing", d: with(func(d *Descriptor) { d.MediaType = "" }),
			wantErr: errdef.ErrInvalidManifest, errContains: "invalid manifest: mediaType is missing"},
		{name: "mediaType with parameters", d: with(func(d *Descriptor) { d.MediaType = "application/json; charset=utf-8" }),
			wantErr: errdef.ErrInvalidManifest, errContains: "is not a media type"},
		{name: "digest missing", d: with(func(d *Descriptor) { d.Digest = "" }),
			wantErr: errdef.ErrInvalidManifest, errContains: "digest is missing"},
		{name: "digest without algorithm", d: with(func(d *Descriptor) { d.Digest = digest.Digest(sha256Empty[7:]) }),
			wantErr: digest.ErrDigestInvalidFormat},
		{name: "digest too long", d: with(func(d *Descriptor) { d.Digest += "0" }),
			wantErr: digest.ErrDigestInvalidLength},
		{name: "digest with g", d: with(func(d *Descriptor) { d.Digest = digest.Digest(sha256Empty[:len(sha256Empty)-1] + "g") }),
			wantErr: digest.ErrDigestInvalidFormat},
		{name: "negative size", d: with(func(d *Descriptor) { d.Size = -1 }),
			wantErr: errdef.ErrInvalidManifest, errContains: "size -1 is negative"},
		{name: "relative url", d: with(func(d *Descriptor) { d.URLs = []string{"blobs/x"} }),
			wantErr: errdef.ErrInvalidManifest, errContains: "urls[0]"},
		{name: "url without host", d: with(func(d *Descriptor) { d.URLs = []string{"https:///x"} }),
			wantErr: errdef.ErrInvalidManifest, errContains: "has no host"},
		{name: "unparsable url", d: with(func(d *Descriptor) { d.URLs = []string{"https://exa mple.com/%zz"} }),
			wantErr: errdef.ErrInvalidManifest, errContains: "is not a url"},
		{name: "bad artifactType", d: with(func(d *Descriptor) { d.ArtifactType = "sbom" }),
			wantErr: errdef.ErrInvalidManifest, errContains: "artifactType"},
		{name: "platform without architecture", d: with(func(d *Descriptor) { d.Platform = &Platform{OS: "linux"} }),
			wantErr: errdef.ErrInvalidManifest, errContains: "platform: architecture is missing"},
		{name: "platform variant with space", d: with(func(d *Descriptor) { d.Platform = &Platform{OS: "linux", Architecture: "arm", Variant: "v7 "} }),
			wantErr: errdef.ErrInvalidManifest, errContains: "variant"},
		{name: "empty os feature", d: with(func(d *Descriptor) {
			d.Platform = &Platform{OS: "windows", Architecture: "amd64", OSFeatures: []string{""}}
		}),
			wantErr: errdef.ErrInvalidManifest, errContains: "os.features[0]"},
		{name: "data mismatch", d: Descriptor{MediaType: MediaTypeOCIEmpty, Digest: digest.FromString("{}"), Size: 2, Data: []byte("[]")},
			wantErr: errdef.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDescriptor(tt.d)
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("ValidateDescriptor(%+v) = %v, want nil", tt.d, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, errdef.ErrInvalidManifest) {
				t.Fatalf("ValidateDescriptor(%+v) = %v, want %v and %v", tt.d, err, tt.wantErr, errdef.ErrInvalidManifest)
			}
			if !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("ValidateDescriptor(%+v) = %q, want it to contain %q", tt.d, err, tt.errContains)
			}
		})
	}
}

func TestValidateDescriptorDoesNotModify(t *testing.T) {
	d := Descriptor{MediaType: MediaTypeOCILayer, Digest: sha256Empty, URLs: []string{}, Annotations: map[string]string{}}
	if err := ValidateDescriptor(d); err != nil {
		t.Fatal(err)
	}
	if d.URLs == nil || d.Annotations == nil {
		t.Errorf("ValidateDescriptor changed its argument: %+v", d)
	}
}
