//go:build !linux

package main

import (
	"errors"
	"os"
)

// readPasswordNoEcho is not available here: the password comes from --password-stdin.
func readPasswordNoEcho(*os.File) (string, error) {
	return "", errors.New("cannot turn off echo on this system: pass the password with --password-stdin")
}
