// Package text shortens untrusted text for messages: a hostile registry body, header or
// file name must not make an error line megabytes long or cut a character in two.
package text

import (
	"strings"
	"unicode/utf8"
)

// Clip returns s cut to at most n bytes, at a rune boundary, with "..." appended when
// it was longer. It allocates only when it cuts.
func Clip[T ~string | ~[]byte](s T, n int) string {
	v := string(s[:min(len(s), n+1)])
	if len(v) <= n {
		return v
	}
	v = v[:n]
	for len(v) > 0 && !utf8.RuneStart(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	if len(v) > 0 && !utf8.FullRuneInString(v[len(v)-1:]) {
		v = v[:len(v)-1]
	}
	return v + "..."
}

// OneLine folds every run of white space in s (newlines included) to one space and
// clips the result to n bytes, as [Clip] does.
func OneLine(s string, n int) string {
	return Clip(strings.Join(strings.Fields(s), " "), n)
}
