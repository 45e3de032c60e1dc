package main

import (
	"os"
	"syscall"
)

const (
	syncFileRangeWaitBefore = 1
	syncFileRangeWrite      = 2
	syncFileRangeWaitAfter  = 4
)

// startWriteback asks the kernel to start writing bytes [off, off+n) of f to disk
// without waiting; with wait it first waits for the writeback of the window before it
// (the same length, ending at off), which bounds the dirty pages a download leaves.
func startWriteback(f *os.File, off, n int64, wait bool) error {
	if err := syncFileRange(f, off, n, syncFileRangeWrite); err != nil {
		return err
	}
	if wait && off > 0 {
		prev := max(0, off-n)
		return syncFileRange(f, prev, off-prev, syncFileRangeWaitBefore|syncFileRangeWrite|syncFileRangeWaitAfter)
	}
	return nil
}

func syncFileRange(f *os.File, off, n int64, flags int) error {
	_, _, e := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), uintptr(flags), 0, 0)
	if e != 0 {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: e}
	}
	return nil
}

// preallocate reserves size bytes for f (fallocate with FALLOC_FL_KEEP_SIZE, so the
// file's length still grows only as bytes are written).
func preallocate(f *os.File, size int64) error {
	const fallocKeepSize = 1
	if err := syscall.Fallocate(int(f.Fd()), fallocKeepSize, 0, size); err != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}
