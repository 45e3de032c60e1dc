//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockTemp holds an exclusive flock on a temporary file while it is written, telling
// removeStaleTemps of other runs that it is in use. The kernel drops the lock when
// the process dies.
func lockTemp(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// removeStaleTemps removes the temporary files of base in dir (.base.*.partial) that
// no live writer holds locked: those of runs that were killed. Errors are ignored.
func removeStaleTemps(dir, base string) {
	names, _ := filepath.Glob(filepath.Join(dir, globEscape(tempPrefix(base))+"*"+tempSuffix))
	for _, name := range names {
		f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err == nil && fi.Mode().IsRegular() && syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.Remove(name)
		}
		f.Close()
	}
}
