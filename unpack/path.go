package unpack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// errEscape marks a name or link that would reach outside the root filesystem.
var errEscape = errors.New("escapes the root filesystem")

// cleanName turns the name of a tar entry, a hard link target or a whiteout into a
// path relative to the root: "./usr/bin/" becomes "usr/bin", "." is the root itself.
// It refuses an absolute name, a ".." component anywhere, a NUL byte, and a name
// longer than maxLen bytes or deeper than maxDepth components.
func cleanName(name string, maxLen, maxDepth int) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case len(name) > maxLen:
		return "", fmt.Errorf("name of %d bytes is longer than the %d byte limit", len(name), maxLen)
	case strings.IndexByte(name, 0) >= 0:
		return "", errors.New("name holds a NUL byte")
	case name[0] == '/':
		return "", fmt.Errorf("absolute name %q: %w", name, errEscape)
	}
	depth := 0
	for c := range strings.SplitSeq(name, "/") {
		switch c {
		case "..":
			return "", fmt.Errorf("name %q has a .. component: %w", name, errEscape)
		case "", ".":
		default:
			depth++
		}
	}
	if depth > maxDepth {
		return "", fmt.Errorf("name %q is %d components deep, more than the %d limit", name, depth, maxDepth)
	}
	return path.Clean(name), nil
}

// maxSymlinks is how many symbolic links one resolution follows, as Linux does
// (MAXSYMLINKS, 40).
const maxSymlinks = 40

// resolveDir returns the real location, relative to the root, of the directory dir
// (a cleaned relative path or "."), following the symbolic links on the way as if
// the root were "/": an absolute link target starts again from the root, a relative
// one from the link's directory. A link that climbs above the root with ".." is
// refused (errEscape), which no image needs and every breakout tries. Missing
// directories are created (mode 0755) when create is set, and make it fail with
// fs.ErrNotExist otherwise. A component that exists but is not a directory fails
// with an error wrapping syscall.ENOTDIR.
//
// The result contains no symbolic link, so an os.Root call on it acts on the
// expected file; and should anything change under it, os.Root still refuses to
// leave the root. It costs one lstat per component not already known.
func (u *unpacker) resolveDir(dir string, create bool) (string, error) {
	if dir == "." {
		return ".", nil
	}
	if r, ok := u.dirCache[dir]; ok {
		return r, nil
	}
	todo := strings.Split(dir, "/")
	var done []string // resolved components, a real directory path
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", fmt.Errorf("%s: a symbolic link climbs above the root: %w", dir, errEscape)
			}
			done = done[:len(done)-1]
			continue
		}
		p := path.Join(append(done, c)...)
		fi, err := u.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return "", err
			}
			if err := u.root.Mkdir(p, 0o755); err != nil {
				return "", err
			}
			u.implicit++
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			links++
			if links > maxSymlinks {
				return "", fmt.Errorf("%s: too many levels of symbolic links", dir)
			}
			target, err := u.root.Readlink(p)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				done = done[:0]
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		case !fi.IsDir():
			return "", &fs.PathError{Op: "resolve", Path: p, Err: syscall.ENOTDIR}
		}
		done = append(done, c)
	}
	r := path.Join(done...)
	if r == "" {
		r = "."
	}
	u.dirCache[dir] = r
	return r, nil
}

// resolve returns the real location of name (a cleaned relative path): its
// directory resolved by resolveDir, its last component as written (not followed).
func (u *unpacker) resolve(name string, create bool) (string, error) {
	if name == "." {
		return ".", nil
	}
	dir, base := path.Split(name)
	if dir == "" {
		return base, nil
	}
	d, err := u.resolveDir(strings.TrimSuffix(dir, "/"), create)
	if err != nil {
		return "", err
	}
	if d == "." {
		return base, nil
	}
	return d + "/" + base, nil
}

// forget drops what the directory cache knows, after anything that may have
// changed which paths are directories or links.
func (u *unpacker) forget() {
	if len(u.dirCache) > 0 {
		clear(u.dirCache)
	}
}

// lexists reports whether p exists (without following a final link) and what it is.
func lexists(r *os.Root, p string) (fs.FileInfo, bool, error) {
	fi, err := r.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return fi, true, nil
}
