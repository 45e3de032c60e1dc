package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ocistream/ocistream/errdef"
)

// NotRegularError reports a file of a layout that is not a regular file where one
// was expected: a symbolic link, a FIFO, a device, a socket or a directory, or a
// partial download with more than one hard link. Such a file is never opened for
// writing, nor read (a FIFO would block, a symbolic link could lead outside the
// layout). It matches errdef.ErrInvalidLayout.
type NotRegularError struct {
	// Path is the file, as the layout's path joined with its name.
	Path string
	// What says what it is: "a symbolic link", "a FIFO", "a file with 2 hard links".
	What string
	// Dir is set when a directory was expected (.ingest, blobs/<alg>).
	Dir bool
}

// Error says which file is refused and why.
func (e *NotRegularError) Error() string {
	want := "a regular file"
	if e.Dir {
		want = "a directory"
	}
	return fmt.Sprintf("%s is %s, not %s: refused", e.Path, e.What, want)
}

// Is reports whether target is errdef.ErrInvalidLayout.
func (e *NotRegularError) Is(target error) bool { return target == errdef.ErrInvalidLayout }

// describeMode names a file type in words.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case !m.IsRegular():
		return "a special file (" + m.Type().String() + ")"
	}
	return "a regular file"
}

// checkRegular refuses a file that is not regular, or, with single, that has more
// than one hard link.
func checkRegular(path string, fi fs.FileInfo, single bool) error {
	if !fi.Mode().IsRegular() {
		return &NotRegularError{Path: path, What: describeMode(fi.Mode())}
	}
	if n := linkCount(fi); single && n > 1 {
		return &NotRegularError{Path: path, What: fmt.Sprintf("a file with %d hard links", n)}
	}
	return nil
}

// openRegular opens the file at path with flag (os.O_RDWR, os.O_CREATE...), refusing
// with a *NotRegularError anything but a regular file, and with single a file with
// more than one hard link. The last component of path is never followed when it is a
// symbolic link, and opening never blocks (a FIFO): the type is checked with lstat
// before the open, which itself does not follow links and does not block where the
// system can tell it so, and with fstat after it. It costs an lstat, an open and an
// fstat.
func openRegular(path string, flag int, perm os.FileMode, single bool) (*os.File, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if err := checkRegular(path, fi, single); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
	default:
		return nil, err
	}
	f, err := os.OpenFile(path, flag|openNoFollow, perm)
	if err != nil {
		// Replaced by a symbolic link since the lstat: say so.
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, &NotRegularError{Path: path, What: describeMode(fi.Mode())}
		}
		return nil, err
	}
	fi, err = f.Stat()
	if err == nil {
		err = checkRegular(path, fi, single)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readRegular reads at most limit bytes of the regular file at path (see openRegular).
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path, os.O_RDONLY, 0, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// ensureDir creates the directory path if it does not exist, and refuses with a
// *NotRegularError a path that is anything but a directory: a symbolic link to a
// directory elsewhere, for one. Its parent must exist.
func ensureDir(path string) error {
	err := os.Mkdir(path, 0o755)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &NotRegularError{Path: path, What: describeMode(fi.Mode()), Dir: true}
	}
	return nil
}
