//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package layout

import (
	"errors"
	"os"
	"syscall"
)

// tryLockFile takes an exclusive flock(2) on f without blocking. It reports false when
// another open file (of this process or another) holds the lock. The kernel releases the
// lock when the holder closes the file or dies, so a crash leaves nothing stale behind.
func tryLockFile(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

// openLockFile opens (creating it if needed) the file whose flock serves as the lock;
// anything but a regular file there (a symbolic link, a FIFO) is refused.
func openLockFile(path string) (*os.File, error) {
	return openRegular(path, os.O_RDWR|os.O_CREATE, 0o644, false)
}

// exclusiveCreate reports whether locks are lock files created with O_EXCL (true) or
// flock(2) on a file that may already exist (false).
const exclusiveCreate = false
