package layout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"
)

// fileLock is an exclusive lock between goroutines and processes, held on a lock file
// next to what it protects. The lock file is removed on release.
type fileLock struct {
	f    *os.File
	path string
}

// acquireLock takes the lock at path, waiting for its holder (polling with a growing
// delay, at most 100ms) until ctx is done.
func acquireLock(ctx context.Context, path string) (*fileLock, error) {
	delay := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := openLockFile(path)
		if err != nil {
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		if f != nil {
			ok, err := tryLockFile(f)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
			if ok {
				if exclusiveCreate || linkedAt(f, path) {
					return &fileLock{f: f, path: path}, nil
				}
				// The holder removed the lock file between our open and our lock: the
				// lock we got is on an orphan inode. Start over on the current file.
				f.Close()
				continue
			}
			f.Close()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// linkedAt reports whether the open file f is still the file at path.
func linkedAt(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// release removes the lock file and unlocks it. With flock the file is removed while
// still locked, so that a waiter that opened it meanwhile notices and starts over.
func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var rmErr, closeErr error
	if exclusiveCreate {
		closeErr = l.f.Close()
		rmErr = os.Remove(l.path)
	} else {
		rmErr = os.Remove(l.path)
		closeErr = l.f.Close()
	}
	l.f = nil
	if errors.Is(rmErr, fs.ErrNotExist) {
		rmErr = nil
	}
	return errors.Join(rmErr, closeErr)
}

// syncDir flushes a directory's entries (a rename into it) to stable storage. Systems
// where a directory cannot be opened for syncing skip it.
func syncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
