//go:build !linux

package main

import "os"

// createUnnamed reports that unnamed files are not available here.
func createUnnamed(string) (*os.File, bool) { return nil, false }

// linkUnnamed is never called where createUnnamed fails.
func linkUnnamed(*os.File, string, string) error { return os.ErrInvalid }
