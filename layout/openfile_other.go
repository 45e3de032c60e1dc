//go:build !unix

package layout

import "io/fs"

// openNoFollow is nothing where open has no such flags: the lstat before the open and
// the fstat after it refuse what is not a regular file.
const openNoFollow = 0

// linkCount returns 1: the number of hard links is not known here.
func linkCount(fs.FileInfo) uint64 { return 1 }
