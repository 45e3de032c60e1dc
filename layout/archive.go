package layout

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ocistream/ocistream/errdef"
	"github.com/opencontainers/go-digest"
)

// maxArchiveEntries bounds the number of entries an archive's index may hold, so that
// a hostile tar of millions of empty entries cannot exhaust memory.
const maxArchiveEntries = 1 << 20

// blockSize is the size of a tar block.
const blockSize = 512

// OpenArchive opens an OCI layout tar read-only: what `ocipull pull -o x.tar` and
// skopeo's oci-archive: transport write (docker's manifest.json and repositories files
// are allowed beside the layout). The tar is scanned once, reading its headers only, to
// index where each entry lies; entries are then read in place from the file, never
// copied. It is refused (the error wraps errdef.ErrInvalidLayout) when it is not a
// layout (no oci-layout or index.json, or either is invalid), holds an entry outside
// the layout's names (../ or absolute names, files outside blobs/, blob names that are
// not digests), an entry that is not a regular file or a directory (symlinks, hard
// links, devices), the same name twice, or an entry that runs past the end of the file
// (a truncated tar). Memory is proportional to the number of entries. It holds the file
// open until Close.
func OpenArchive(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open archive %s: %w: not a regular file", path, errdef.ErrInvalidLayout)
	}
	s, err := scanArchive(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	}
	r := &Reader{path: path, store: s}
	if err := r.load(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// archiveStore is a layout tar: the file and where each regular entry lies in it.
type archiveStore struct {
	f       *os.File
	entries map[string]archiveEntry
}

// archiveEntry is the place of a regular file's bytes in the tar.
type archiveEntry struct {
	offset int64
	hdr    *tar.Header
}

// scanArchive reads the headers of the tar in f, of the given size, and indexes its
// regular entries by name.
func scanArchive(f *os.File, size int64) (*archiveStore, error) {
	sr := io.NewSectionReader(f, 0, size)
	tr := tar.NewReader(sr)
	s := &archiveStore{f: f, entries: make(map[string]archiveEntry)}
	dirs := make(map[string]bool)
	var end int64 // of the last entry, padding included
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// Go's reader accepts a tar cut at an entry boundary; a layout tar must end
			// with its two zero blocks.
			if size-end < 2*blockSize {
				return nil, fmt.Errorf("%w: no end-of-archive marker (truncated?)", errdef.ErrInvalidLayout)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read tar: %v", errdef.ErrInvalidLayout, err)
		}
		name, err := archiveName(hdr)
		if err != nil {
			return nil, err
		}
		if s.entries[name].hdr != nil || dirs[name] {
			return nil, fmt.Errorf("%w: entry %q appears twice", errdef.ErrInvalidLayout, hdr.Name)
		}
		if len(s.entries)+len(dirs) >= maxArchiveEntries {
			return nil, fmt.Errorf("%w: more than %d entries", errdef.ErrInvalidLayout, maxArchiveEntries)
		}
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		end = off
		if hdr.Typeflag == tar.TypeDir {
			dirs[name] = true
			continue
		}
		if hdr.Size < 0 || hdr.Size > size-off {
			return nil, fmt.Errorf("%w: entry %q of %d bytes runs past the end of the file (truncated?)", errdef.ErrInvalidLayout, hdr.Name, hdr.Size)
		}
		end = off + (hdr.Size+blockSize-1)/blockSize*blockSize
		s.entries[name] = archiveEntry{offset: off, hdr: hdr}
	}
	return s, nil
}

// archiveName checks a tar header and returns the entry's name, cleaned of a leading
// "./" and, for a directory, of its trailing "/".
func archiveName(hdr *tar.Header) (string, error) {
	name := strings.TrimPrefix(hdr.Name, "./")
	bad := func(why string) error {
		return fmt.Errorf("%w: entry %q %s", errdef.ErrInvalidLayout, hdr.Name, why)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
	case tar.TypeDir:
		name = strings.TrimSuffix(name, "/")
	default:
		return "", bad(fmt.Sprintf("is not a regular file (tar type %q)", hdr.Typeflag))
	}
	if name == "" || !fs.ValidPath(name) || strings.Contains(name, `\`) {
		return "", bad("is not a valid name inside a layout")
	}
	dir := hdr.Typeflag == tar.TypeDir
	switch parts := strings.Split(name, "/"); {
	case len(parts) == 1 && dir:
		if name != blobsDir {
			return "", bad("is outside blobs/")
		}
	case len(parts) == 1:
		switch name {
		case layoutFile, indexFile, dockerManifestFile, dockerRepositoriesFile:
		default:
			return "", bad("is outside blobs/")
		}
	case parts[0] != blobsDir:
		return "", bad("is outside blobs/")
	case len(parts) == 2 && dir:
		if !digest.Algorithm(parts[1]).Available() {
			return "", bad("names no known digest algorithm")
		}
	case len(parts) == 3 && !dir:
		if digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2]).Validate() != nil {
			return "", bad("is not named by a valid digest")
		}
	default:
		return "", bad("is not a blob")
	}
	return name, nil
}

// open returns the bytes of the regular entry name, read in place from the tar.
func (s *archiveStore) open(name string) (Entry, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &archiveFile{SectionReader: io.NewSectionReader(s.f, e.offset, e.hdr.Size), hdr: e.hdr}, nil
}

func (s *archiveStore) close() error { return s.f.Close() }

// archiveFile is an open entry of a layout tar.
type archiveFile struct {
	*io.SectionReader
	hdr *tar.Header
}

// Stat reports the entry's tar header as a file.
func (a *archiveFile) Stat() (fs.FileInfo, error) { return a.hdr.FileInfo(), nil }

// Close does nothing: the tar stays open until the Reader is closed.
func (a *archiveFile) Close() error { return nil }
