package unpack

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{
		"a", "./a/b/", "/etc/passwd", "../x", "a/../../b", "a/./b//c", ".", "./", "..", "a/..",
		".wh..wh..opq", "a/.wh.b", "a\x00b", strings.Repeat("d/", 300), "a/b/../c", "//a", "...",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := cleanName(name, DefaultMaxNameLength, DefaultMaxPathDepth)
		if err != nil {
			return
		}
		if got != "." && !filepath.IsLocal(got) {
			t.Fatalf("cleanName(%q) = %q, not local", name, got)
		}
		if strings.HasPrefix(got, "/") || strings.Contains("/"+got+"/", "/../") {
			t.Fatalf("cleanName(%q) = %q", name, got)
		}
		if strings.Count(got, "/")+1 > DefaultMaxPathDepth {
			t.Fatalf("cleanName(%q) = %q: too deep", name, got)
		}
		again, err := cleanName(got, DefaultMaxNameLength, DefaultMaxPathDepth)
		if err != nil || again != got {
			t.Fatalf("cleanName(%q) = %q, then %q, %v", name, got, again, err)
		}
	})
}

// FuzzContainment plants a link and writes an entry (a file, a directory, a hard
// link or a whiteout) in a second layer: whatever the names, nothing may appear
// or change beside the destination.
func FuzzContainment(f *testing.F) {
	seeds := []struct {
		link, target, name string
		typ                byte
	}{
		{"evil", "..", "evil/x", tar.TypeReg},
		{"evil", "/", "evil/x", tar.TypeReg},
		{"a/b", "../../..", "a/b/c/d", tar.TypeDir},
		{"l", "../outside", "l/secret", tar.TypeLink},
		{"l", "../outside", "stolen", tar.TypeLink},
		{"l", "..", "l/outside/.wh.secret", tar.TypeReg},
		{"l", "../outside", "l/.wh..wh..opq", tar.TypeReg},
		{"x", "x", "x/y", tar.TypeReg},
		{"../l", "/", "l/x", tar.TypeSymlink},
	}
	for _, s := range seeds {
		f.Add(s.link, s.target, s.name, s.typ)
	}
	f.Fuzz(func(t *testing.T, link, target, name string, typ byte) {
		if link == "" || target == "" || name == "" || strings.ContainsRune(link+target+name, 0) {
			return
		}
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(outside, "secret"), "secret")
		before := tree(t, base)

		entry := fileE(name, "payload", 0o644)
		switch typ % 4 {
		case 1:
			entry = dirE(name, 0o755)
		case 2:
			entry = linkE(name, "l/secret")
			entry.Linkname = target + "/secret"
		case 3:
			entry = symE(name, target)
		}
		l1, err1 := tarOf(symE(link, target))
		l2, err2 := tarOf(entry)
		if err1 != nil || err2 != nil {
			return // names archive/tar will not encode
		}
		src, _ := testImage(t, nil, testLayer{tar: l1}, testLayer{tar: l2})
		dir := filepath.Join(base, "rootfs")
		Image(t.Context(), src, dir, nil)
		os.RemoveAll(dir)
		if d := diffTrees(tree(t, base), before); d != "" {
			t.Fatalf("link %q -> %q, entry %q (type %c): changed beside the destination:\n%s", link, target, name, entry.Typeflag, d)
		}
	})
}
