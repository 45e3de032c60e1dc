package layout

import (
	"fmt"
	"syscall"
)

// checkFreeSpace fails, with an error wrapping syscall.ENOSPC, when the file system of
// dir has less than need bytes available to this user. It costs one statfs.
func checkFreeSpace(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // the platform cannot tell: the write will say
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if need > 0 && uint64(need) > free {
		return fmt.Errorf("%d more bytes needed, %d available on the file system of %s: %w", need, free, dir, syscall.ENOSPC)
	}
	return nil
}
