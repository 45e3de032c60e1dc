package unpack

import (
	"archive/tar"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errSyncUnsupported is what fsync of a directory answers on file systems that do
// not support it.
var errSyncUnsupported = syscall.EINVAL

// exchange swaps the directories a and b atomically (renameat2 RENAME_EXCHANGE,
// Linux 3.15).
func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// mknodAt creates the device node or FIFO base (tar type flag typ) in the
// directory dirfd.
func mknodAt(dirfd int, base string, typ byte, perm uint32, major, minor int64) error {
	mode := perm
	switch typ {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	return unix.Mknodat(dirfd, base, mode, int(unix.Mkdev(uint32(major), uint32(minor))))
}

// lutimesAt sets the times of base in the directory dirfd, not following a link.
func lutimesAt(dirfd int, base string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// fsetxattr sets the extended attribute name of the open file fd.
func fsetxattr(fd int, name string, value []byte) error {
	return unix.Fsetxattr(fd, name, value, 0)
}

// refused reports whether err is a file system or permission refusal that the
// unpack notes and skips (an extended attribute or device node it may not create),
// rather than a failure.
func refused(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}
