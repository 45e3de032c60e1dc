package ocitypes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ocistream/ocistream/internal/text"
)

// keySet maps the top-level keys of a JSON object that name fields of the image-spec
// types to their raw values. Keys are folded the way encoding/json matches object keys to
// struct fields (Unicode simple case folding), so that lookups agree with what
// [json.Unmarshal] decodes.
type keySet map[string][]byte

// has reports whether the object has the field name.
func (k keySet) has(name string) bool {
	_, ok := k[foldKey(name)]
	return ok
}

// raw returns the raw JSON value of the field name, nil when absent.
func (k keySet) raw(name string) []byte {
	return k[foldKey(name)]
}

// checkObject verifies that body is exactly one JSON object: well-formed, followed by
// nothing but white space, and with no object (at any depth) holding the same key twice,
// nor two keys that encoding/json would decode into the same struct field ("mediaType"
// and "MediaType"). That closes the ambiguity where two parsers read the same bytes
// differently. Keys that differ only in case are allowed when they are not field names
// of the image-spec types (annotation or label keys, say), since maps keep them apart.
// It returns the top-level fields with their raw values. The cost is a validation pass
// and a scan over body, allocating only for keys with escapes or non-ASCII characters
// and for objects with more than a few keys.
func checkObject(body []byte) (keySet, error) {
	if first := firstByte(body); first != '{' {
		if first == 0 {
			return nil, errors.New("empty body")
		}
		return nil, fmt.Errorf("body is not a json object (starts with %q)", first)
	}
	if !json.Valid(body) {
		// Unmarshal reports where the syntax breaks; Valid only that it does.
		err := json.Unmarshal(body, new(struct{}))
		if err == nil {
			err = errors.New("invalid json")
		}
		return nil, fmt.Errorf("malformed json: %w", err)
	}
	sc := scanner{body: body, known: fieldNames(), top: keySet{}}
	sc.skipSpace()
	if err := sc.object(true); err != nil {
		return nil, err
	}
	return sc.top, nil
}

// scanner walks a body that json.Valid accepted, checking object keys.
type scanner struct {
	body  []byte
	pos   int
	known map[string]string
	buf   []byte
	top   keySet // the fields of the top-level object
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.body) {
		switch s.body[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value() error {
	switch s.body[s.pos] {
	case '{':
		return s.object(false)
	case '[':
		return s.array()
	case '"':
		s.str()
	default:
		for s.pos < len(s.body) && !strings.ContainsRune(",}] \t\r\n", rune(s.body[s.pos])) {
			s.pos++
		}
	}
	return nil
}

func (s *scanner) array() error {
	s.pos++ // [
	s.skipSpace()
	if s.body[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(); err != nil {
			return err
		}
		s.skipSpace()
		c := s.body[s.pos]
		s.pos++
		if c == ']' {
			return nil
		}
	}
}

// str skips a string and returns its contents without the quotes, and whether it holds
// escapes or non-ASCII bytes (and so must be decoded to compare).
func (s *scanner) str() (raw []byte, complex bool) {
	start := s.pos + 1
	for i := start; i < len(s.body); i++ {
		switch c := s.body[i]; {
		case c == '\\':
			complex = true
			i++
		case c == '"':
			s.pos = i + 1
			return s.body[start:i], complex
		case c >= utf8.RuneSelf:
			complex = true
		}
	}
	s.pos = len(s.body)
	return s.body[start:], complex
}

// object checks the keys of one object and of the objects inside it. For the top-level
// object it records each field's raw value in s.top.
func (s *scanner) object(top bool) error {
	s.pos++ // {
	var (
		exactArr  [16][]byte
		exact     = exactArr[:0]
		exactMap  map[string]struct{}
		fieldsArr [8]string
		fields    = fieldsArr[:0]
	)
	for {
		s.skipSpace()
		if s.body[s.pos] == '}' {
			s.pos++
			return nil
		}
		raw, complex := s.str()
		key := raw
		if complex {
			var k string
			if err := json.Unmarshal(s.body[s.pos-len(raw)-2:s.pos], &k); err != nil {
				return fmt.Errorf("malformed json: %w", err)
			}
			key = []byte(k)
		}
		// Exact duplicates.
		if exactMap == nil && len(exact) < len(exactArr) {
			for _, k := range exact {
				if bytes.Equal(k, key) {
					return fmt.Errorf("duplicate key %q in json object", key)
				}
			}
			exact = append(exact, key)
		} else {
			if exactMap == nil {
				exactMap = make(map[string]struct{}, 2*len(exact))
				for _, k := range exact {
					exactMap[string(k)] = struct{}{}
				}
			}
			if _, dup := exactMap[string(key)]; dup {
				return fmt.Errorf("duplicate key %q in json object", key)
			}
			exactMap[string(key)] = struct{}{}
		}
		// Keys that encoding/json would put into the same field.
		name, isField := s.field(key)
		if isField {
			if slices.Contains(fields, name) {
				return fmt.Errorf("duplicate key %q in json object (keys are matched regardless of case)", key)
			}
			fields = append(fields, name)
		}
		s.skipSpace()
		s.pos++ // :
		s.skipSpace()
		start := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if top && isField {
			s.top[name] = s.body[start:s.pos]
		}
		s.skipSpace()
		if s.body[s.pos] == ',' {
			s.pos++
		}
	}
}

// field returns the folded field name key stands for, if it is one.
func (s *scanner) field(key []byte) (string, bool) {
	ascii := true
	s.buf = s.buf[:0]
	for _, c := range key {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		s.buf = append(s.buf, c)
	}
	if ascii {
		name, ok := s.known[string(s.buf)]
		return name, ok
	}
	name, ok := s.known[foldKey(string(key))]
	return name, ok
}

// fieldNames returns the folded JSON names of every field of the image-spec types the
// parsers decode into, found by reflection once.
var fieldNames = sync.OnceValue(func() map[string]string {
	names := map[string]string{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			folded := foldKey(name)
			names[folded] = folded
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Manifest]())
	walk(reflect.TypeFor[Index]())
	walk(reflect.TypeFor[Image]())
	return names
})

// firstByte returns the first byte of b that is not JSON white space, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// foldKey maps s to a canonical representative of its case-folding class: two keys
// have the same foldKey exactly when encoding/json treats them as the same field name.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest member of an ASCII letter's folding orbit is its upper case.
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}

// clipLen is the longest value quoted whole in an error message.
const clipLen = 100

// clip returns v as a string for an error message, cut to clipLen bytes, so that a
// hostile body cannot make an error message megabytes long.
func clip[T ~string | ~[]byte](v T) string { return text.Clip(v, clipLen) }
