package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestSkopeo has skopeo read what Dir and Tar write: the directory as oci:, the tar as
// oci-archive: and as docker-archive: (which reads manifest.json).
func TestSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	amd := newTestImage(t, "amd", "linux", "amd64", true)
	arm := newTestImage(t, "arm", "linux", "arm64", true)
	idx := newTestIndex(t, amd, arm)
	blobs := append(append(amd.blobs(), arm.blobs()...), idx)
	tmp := t.TempDir()

	d := openDir(t, filepath.Join(tmp, "layout"))
	archive := filepath.Join(tmp, "image.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	tw := NewTar(f, nil)
	for _, dst := range []destination{d, tw} {
		for _, b := range blobs {
			writeBlob(t, dst, b)
		}
		if err := dst.Tag(t.Context(), mustParse(t, "example.com/test/app:v1"), amd.manifest.desc); err != nil {
			t.Fatal(err)
		}
		if err := dst.Tag(t.Context(), mustParse(t, "example.com/test/app:multi"), idx.desc); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// A tar of one image, which skopeo reads without being given a name.
	single := filepath.Join(tmp, "single.tar")
	sf, err := os.Create(single)
	if err != nil {
		t.Fatal(err)
	}
	stw := NewTar(sf, nil)
	for _, b := range amd.blobs() {
		writeBlob(t, stw, b)
	}
	if err := stw.Tag(t.Context(), mustParse(t, "app:v1"), amd.manifest.desc); err != nil {
		t.Fatal(err)
	}
	if err := stw.Close(); err != nil {
		t.Fatal(err)
	}
	sf.Close()

	tests := []struct {
		name  string
		args  []string
		image testImage
	}{
		{"oci dir", []string{"oci:" + d.Path() + ":v1"}, amd},
		{"oci dir index", []string{"--override-arch", "arm64", "oci:" + d.Path() + ":multi"}, arm},
		{"oci-archive", []string{"oci-archive:" + archive + ":v1"}, amd},
		{"oci-archive index", []string{"--override-arch", "arm64", "oci-archive:" + archive + ":multi"}, arm},
		{"oci-archive single", []string{"oci-archive:" + single}, amd},
		{"docker-archive single", []string{"docker-archive:" + single}, amd},
		{"docker-archive by name", []string{"docker-archive:" + archive + ":example.com/test/app:v1"}, amd},
		{"docker-archive index image", []string{"docker-archive:" + archive + ":example.com/test/app:multi"}, amd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"--insecure-policy", "copy"}, tt.args...)
			args = append(args, "dir:"+out)
			cmd := exec.CommandContext(t.Context(), skopeo, args...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("skopeo %q: %v\n%s", args, err, b)
			}
			// skopeo's dir: stores each blob under its hex: the layers as they are for
			// oci:, decompressed (named by diff_id) for docker-archive:.
			files := listFiles(t, out)
			for i, l := range tt.image.layers {
				if !slices.Contains(files, l.desc.Digest.Encoded()) && !slices.Contains(files, tt.image.diffIDs[i].Encoded()) {
					t.Errorf("skopeo output %q lacks layer %s (diff_id %s)", files, l.desc.Digest, tt.image.diffIDs[i])
				}
			}
		})
	}
}
