//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package layout

import (
	"errors"
	"io/fs"
	"os"
)

// tryLockFile reports whether f is locked. Where flock(2) is not available the lock is
// the existence of the file itself, created by openLockFile with O_EXCL, so holding the
// open file is holding the lock.
func tryLockFile(f *os.File) (bool, error) { return f != nil, nil }

// openLockFile creates the lock file with O_EXCL. It returns (nil, nil) when the file
// exists, meaning another writer holds the lock. A process that dies while holding it
// leaves the file behind: remove it by hand (nothing else stays locked that way).
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil
	}
	return f, err
}

// exclusiveCreate reports whether locks are lock files created with O_EXCL (true) or
// flock(2) on a file that may already exist (false).
const exclusiveCreate = true
