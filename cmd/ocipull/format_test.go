package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
)

func TestOutputFormat(t *testing.T) {
	items := []tagItem{{Name: "v1", Repository: "r", Reference: "r:v1"}, {Name: "v2", Repository: "r", Reference: "r:v2"}}
	tests := []struct {
		format string
		want   string
	}{
		{"", "v1\nv2\n"},
		{"json", `["v1","v2"]` + "\n"},
		{" json ", `["v1","v2"]` + "\n"},
		{"{{.}}", "v1\nv2\n"},
		{"{{.Reference}}", "r:v1\nr:v2\n"},
		{"{{upper .Name}}\n", "V1\nV2\n"},
		{"{{json .}}", "\"v1\"\n\"v2\"\n"},
	}
	for _, tt := range tests {
		f, err := parseFormat(tt.format)
		if err != nil {
			t.Fatalf("parseFormat(%q): %v", tt.format, err)
		}
		var b bytes.Buffer
		l := newListWriter(&b, f)
		for _, it := range items {
			if err := l.item(it.Name, it); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.close(); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("--format %q printed %q, want %q", tt.format, b.String(), tt.want)
		}
	}

	// An empty list is still one JSON array.
	f, _ := parseFormat("json")
	var b bytes.Buffer
	l := newListWriter(&b, f)
	if err := l.close(); err != nil || b.String() != "[]\n" {
		t.Errorf("empty json list: %q, %v", b.String(), err)
	}
}

func TestOutputFormatErrors(t *testing.T) {
	var ue usageError
	if _, err := parseFormat("{{.Digest"); !errors.As(err, &ue) || err.Error() != `--format: unclosed action (line 1)` {
		t.Errorf("bad template: %v", err)
	}
	f, err := parseFormat("{{.Nope}}")
	if err != nil {
		t.Fatal(err)
	}
	err = f.write(&bytes.Buffer{}, tagItem{Name: "v1"})
	if !errors.As(err, &ue) || err.Error() != "--format: <.Nope>: can't evaluate field Nope in type main.tagItem (line 1, column 2)" {
		t.Errorf("a missing field: %v, want a usage error", err)
	}
}

func TestPullStatsSummary(t *testing.T) {
	d := func(n int64) ocistream.ProgressEvent {
		return ocistream.ProgressEvent{Kind: ocistream.BlobQueued, Descriptor: ocitypes.Descriptor{Size: n}}
	}
	tests := []struct {
		events []ocistream.ProgressEvent
		want   string
	}{
		{[]ocistream.ProgressEvent{d(1), d(2), {Kind: ocistream.BlobStarted}}, ""},
		{[]ocistream.ProgressEvent{d(1), d(2), d(3), {Kind: ocistream.BlobSkipped}, {Kind: ocistream.BlobSkipped}}, "3 blobs, 2 skipped (already present)"},
		{[]ocistream.ProgressEvent{d(1), d(50 << 20), {Kind: ocistream.BlobSkipped}, {Kind: ocistream.BlobStarted, Offset: 40 << 20}}, "2 blobs, 1 skipped (already present), 1 resumed from 40.0 MiB"},
	}
	for _, tt := range tests {
		s := &pullStats{next: nopProgress{}}
		for _, e := range tt.events {
			s.event(e)
		}
		if got := s.summary(); got != tt.want {
			t.Errorf("summary = %q, want %q", got, tt.want)
		}
	}
}
