package layout

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk now,
// without waiting (sync_file_range with SYNC_FILE_RANGE_WRITE). The final fsync of a
// blob then finds most of its pages already written, so the disk works while the
// download goes on instead of after it. Errors are ignored: fsync reports them.
func startWriteback(f *os.File, off, n int64) {
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, 0x2 /* SYNC_FILE_RANGE_WRITE */)
}
