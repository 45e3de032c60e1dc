//go:build !linux

package unpack

import (
	"errors"
	"time"
)

// errSyncUnsupported is what fsync of a directory answers where it is not
// supported.
var errSyncUnsupported = errors.ErrUnsupported

func exchange(a, b string) error { return errors.ErrUnsupported }

func mknodAt(dirfd int, base string, typ byte, perm uint32, major, minor int64) error {
	return errors.ErrUnsupported
}

func lutimesAt(dirfd int, base string, atime, mtime time.Time) error { return nil }

func fsetxattr(fd int, name string, value []byte) error { return errors.ErrUnsupported }

func refused(err error) bool { return errors.Is(err, errors.ErrUnsupported) }
