package layout

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSourceSkopeo reads, as a Source, what skopeo writes with oci: and oci-archive:
// (names given by ref.name only), and checks every blob of the image.
func TestSourceSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	f := newReaderFixture(t)
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "skopeo.tar")
	dir := filepath.Join(tmp, "skopeo-dir")
	for _, dst := range []string{"oci-archive:" + archive + ":two", "oci:" + dir + ":two"} {
		cmd := exec.CommandContext(t.Context(), skopeo, "--insecure-policy", "copy", "oci:"+f.dir+":2", dst)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy to %s: %v\n%s", dst, err, b)
		}
	}
	for kind, open := range map[string]func(string) (*Source, error){
		"oci-archive": func(ref string) (*Source, error) { return OpenArchiveSource(archive, ref) },
		"oci":         func(ref string) (*Source, error) { return OpenSource(dir, ref) },
	} {
		t.Run(kind, func(t *testing.T) {
			for _, refName := range []string{"two", ""} {
				s, err := open(refName)
				if err != nil {
					t.Fatalf("open %q: %v", refName, err)
				}
				root, err := s.Resolve(t.Context())
				if err != nil || root.Digest != f.two.manifest.desc.Digest {
					t.Errorf("Resolve = %s, %v; want %s", root.Digest, err, f.two.manifest.desc.Digest)
				}
				if im := s.Image(); im.Tag != "two" || im.Name != "" {
					t.Errorf("image named %q (%q), want tag two and no full name", im.Tag, im.Name)
				}
				for _, b := range f.two.blobs() {
					rc, err := s.Fetch(t.Context(), b.desc)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, b.data) {
						t.Errorf("blob %s: %d bytes, %v", b.desc.Digest, len(got), err)
					}
				}
				s.Close()
			}
		})
	}
}
