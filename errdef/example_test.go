package errdef_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/layout"
)

// A program that only reads and writes layouts matches the module's errors without
// importing the registry client.
func Example() {
	dir, err := os.MkdirTemp("", "errdef-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// A directory that holds something but no oci-layout file is not a layout.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644); err != nil {
		panic(err)
	}
	_, err = layout.OpenDir(dir, nil)
	fmt.Println(errors.Is(err, errdef.ErrInvalidLayout))
	// Output: true
}
