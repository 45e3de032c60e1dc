//go:build !unix

package main

import "os"

// lockTemp does nothing: without flock, temporary files are not told apart.
func lockTemp(*os.File) {}

// removeStaleTemps does nothing here: a killed run's .NAME.*.partial stays until
// removed by hand.
func removeStaleTemps(string, string) {}
