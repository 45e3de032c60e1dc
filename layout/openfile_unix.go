//go:build unix

package layout

import (
	"io/fs"
	"syscall"
)

// openNoFollow makes open(2) fail on a symbolic link as the last component, and
// return at once on a FIFO instead of waiting for its other end.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// linkCount returns the number of hard links of a file, 1 when unknown.
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
