package unpack

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpecialEntries covers what depends on privileges and the file system:
// FIFOs, device nodes, ownership, set-id bits and extended attributes. What cannot
// be reproduced here must be reported in Result.Warnings, not fail.
func TestSpecialEntries(t *testing.T) {
	owned := fileE("owned", "o", 0o4755)
	owned.Uid, owned.Gid = 1234, 5678
	xattr := fileE("xattr", "x", 0o644)
	xattr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "value"}
	xdir := dirE("xdir/", 0o755)
	xdir.PAXRecords = map[string]string{"SCHILY.xattr.user.dir": "dvalue"}
	layer := layerTar(t,
		&tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600, ModTime: testTime},
		&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime},
		owned, xattr, xdir,
	)
	dir, res, err := unpackLayers(t, nil, layer)
	if err != nil {
		t.Fatal(err)
	}
	warned := func(what string) bool {
		for _, w := range res.Warnings {
			if strings.Contains(w, what) {
				return true
			}
		}
		return false
	}
	t.Logf("warnings: %q", res.Warnings)

	if fi, err := os.Lstat(filepath.Join(dir, "fifo")); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("fifo: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "dev/null")); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&fs.ModeCharDevice == 0 || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
			t.Errorf("dev/null: %v rdev %d:%d", fi.Mode(), unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	} else if !warned("device nodes") {
		t.Errorf("dev/null neither created (%v) nor warned about", err)
	}

	fi, err := os.Lstat(filepath.Join(dir, "owned"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if os.Geteuid() == 0 {
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("owned by %d:%d, want 1234:5678", st.Uid, st.Gid)
		}
		if fi.Mode()&fs.ModeSetuid == 0 {
			t.Errorf("owned lost its setuid bit: %v", fi.Mode())
		}
	} else if !warned("ownership") {
		t.Error("ownership not applied and not warned about")
	}

	for name, attr := range map[string]string{"xattr": "user.test", "xdir": "user.dir"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dir, name), attr, buf)
		switch {
		case err == nil:
			if want := map[string]string{"user.test": "value", "user.dir": "dvalue"}[attr]; string(buf[:n]) != want {
				t.Errorf("%s %s = %q, want %q", name, attr, buf[:n], want)
			}
		case !warned(attr):
			t.Errorf("%s: xattr %s neither set (%v) nor warned about", name, attr, err)
		}
	}
}
