package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// createUnnamed opens an unnamed file in dir (O_TMPFILE): it has no name until
// linkUnnamed gives it one, so a killed process leaves nothing. ok is false where the
// file system does not support it.
func createUnnamed(dir string) (f *os.File, ok bool) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, false
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), true
}

// linkUnnamed gives the unnamed file f the name base in dir, replacing any file of
// that name: it is linked under a hidden temporary name, then renamed. A kill between
// the two leaves that temporary, which the next run removes (it is not locked).
func linkUnnamed(f *os.File, dir, base string) error {
	var b [8]byte
	rand.Read(b[:])
	tmp := filepath.Join(dir, tempPrefix(base)+hex.EncodeToString(b[:])+tempSuffix)
	proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: tmp, Err: err}
	}
	if err := os.Rename(tmp, filepath.Join(dir, base)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
