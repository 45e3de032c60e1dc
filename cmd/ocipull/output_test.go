package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/vbauerster/mpb/v8"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

func TestPullOutput(t *testing.T) {
	tests := []struct {
		ref, output string
		wantKind    outputKind
		wantDest    string
	}{
		{"alpine:3.20", "", toDir, "alpine"},
		{"ghcr.io/owner/team/app@sha256:" + strings.Repeat("a", 64), "", toDir, "app"},
		{"localhost:5000/a/b:v1", "out/dir", toDir, "out/dir"},
		{"alpine", "alpine.tar", toTarFile, "alpine.tar"},
		{"alpine", "images/ALPINE.TAR", toTarFile, "images/ALPINE.TAR"},
		{"alpine", "-", toStdout, "stdout"},
		{"alpine", "alpine.tar.gz", toTarGzFile, "alpine.tar.gz"},
		{"alpine", "alpine.TGZ", toTarGzFile, "alpine.TGZ"},
		{"alpine", "alpine.tar.zst", -1, ""},
		{"alpine", "alpine.xz", -1, ""},
	}
	for _, tt := range tests {
		r, err := ref.Parse(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		kind, dest, err := pullOutput(r, tt.output)
		if tt.wantKind == -1 {
			if err == nil {
				t.Errorf("pullOutput(%q, %q) = %v, %q; want an error", tt.ref, tt.output, kind, dest)
			}
			continue
		}
		if err != nil || kind != tt.wantKind || dest != tt.wantDest {
			t.Errorf("pullOutput(%q, %q) = %v, %q; want %v, %q", tt.ref, tt.output, kind, dest, tt.wantKind, tt.wantDest)
		}
	}
}

func TestRegistryArg(t *testing.T) {
	tests := []struct {
		in        string
		wantHost  string
		wantPlain bool
		wantErr   bool
	}{
		{"ghcr.io", "ghcr.io", false, false},
		{"localhost:5000", "localhost:5000", false, false},
		{"https://ghcr.io/", "ghcr.io", false, false},
		{"http://localhost:5000", "localhost:5000", true, false},
		{"[::1]:5000", "[::1]:5000", false, false},
		{"docker.io", "docker.io", false, false},
		{"", "", false, true},
		{"http://", "", false, true},
		{"ghcr.io/owner", "", false, true},
		{"user@ghcr.io", "", false, true},
		{"a b", "", false, true},
	}
	for _, tt := range tests {
		host, plain, err := registryArg(tt.in)
		if host != tt.wantHost || plain != tt.wantPlain || (err != nil) != tt.wantErr {
			t.Errorf("registryArg(%q) = %q, %v, %v; want %q, %v, error %v", tt.in, host, plain, err, tt.wantHost, tt.wantPlain, tt.wantErr)
		}
	}
}

func FuzzRegistryArg(f *testing.F) {
	for _, s := range []string{"ghcr.io", "http://localhost:5000/", "https://", "[::1]:5000", "a/b", "", "http://http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, _, err := registryArg(s)
		if err != nil {
			if host != "" {
				t.Errorf("registryArg(%q) = %q with error %v", s, host, err)
			}
			return
		}
		if host == "" || strings.ContainsAny(host, "/@ \t") {
			t.Errorf("registryArg(%q) = %q, not a host", s, host)
		}
		if again, plain, err := registryArg(host); err != nil || again != host || plain {
			t.Errorf("registryArg(%q) = %q, %v, %v; want %q unchanged", host, again, plain, err, host)
		}
	})
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "out.tar")

	failed := errors.New("network broke")
	err := writeFileAtomic(name, func(w io.Writer) error {
		io.WriteString(w, "half an archive")
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("writeFileAtomic with a failing writer = %v, want %v", err, failed)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed write left %v in the directory", entries)
	}

	if err := writeFileAtomic(name, func(w io.Writer) error {
		_, err := io.WriteString(w, "a whole archive")
		return err
	}); err != nil {
		t.Fatalf("writeFileAtomic: %v", err)
	}
	got, err := os.ReadFile(name)
	if err != nil || string(got) != "a whole archive" {
		t.Errorf("file holds %q, %v; want %q", got, err, "a whole archive")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v, want only out.tar", entries)
	}

	// A failure keeps the previous file as it was.
	writeFileAtomic(name, func(io.Writer) error { return failed })
	if got, _ := os.ReadFile(name); string(got) != "a whole archive" {
		t.Errorf("after a failed rewrite the file holds %q", got)
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{12_900_000, "12.3 MiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 62, "4.0 EiB"},
	} {
		if got := formatSize(tt.n); got != tt.want {
			t.Errorf("formatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestShortDigest(t *testing.T) {
	d := digest.Digest("sha256:" + strings.Repeat("0123456789abcdef", 4))
	if got, want := shortDigest(d), "sha256:0123456789ab"; got != want {
		t.Errorf("shortDigest(%s) = %q, want %q", d, got, want)
	}
	if got := shortDigest("bogus"); got != "bogus" {
		t.Errorf("shortDigest(bogus) = %q", got)
	}
}

// events is one blob's life: started, two progress steps, done; then one skipped and
// one failed blob.
func events() []ocistream.ProgressEvent {
	a := ocitypes.Descriptor{Digest: digest.FromString("a"), Size: 3 << 20}
	b := ocitypes.Descriptor{Digest: digest.FromString("b"), Size: 2048}
	c := ocitypes.Descriptor{Digest: digest.FromString("c"), Size: 0}
	return []ocistream.ProgressEvent{
		{Kind: ocistream.BlobStarted, Descriptor: a, Offset: 1 << 20},
		{Kind: ocistream.BlobProgress, Descriptor: a, Offset: 2 << 20},
		{Kind: ocistream.BlobSkipped, Descriptor: b, Offset: b.Size},
		{Kind: ocistream.BlobStarted, Descriptor: c},
		{Kind: ocistream.BlobProgress, Descriptor: a, Offset: 3 << 20},
		{Kind: ocistream.BlobDone, Descriptor: a, Offset: a.Size},
		{Kind: ocistream.BlobFailed, Descriptor: c, Err: errors.New("connection reset")},
	}
}

func TestLineProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &lineProgress{w: &buf}
	for _, e := range events() {
		p.event(e)
	}
	p.finish()
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	want := "resumed " + a.String() + " at 1.0 MiB of 3.0 MiB\n" +
		"skipped " + b.String() + " 2.0 KiB (already present)\n" +
		"started " + c.String() + " 0 B\n" +
		"done    " + a.String() + " 3.0 MiB\n" +
		"failed  " + c.String() + ": connection reset\n"
	if buf.String() != want {
		t.Errorf("line progress printed:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestBarProgressFinishes(t *testing.T) {
	// Bars drawn to a buffer: every event is taken, and finish returns although
	// one blob never completed.
	var buf bytes.Buffer
	p := newBarProgress(&buf, mpb.WithAutoRefresh())
	for _, d := range []ocitypes.Descriptor{{Digest: digest.FromString("a"), Size: 3 << 20}, {Digest: digest.FromString("b"), Size: 2048}, {Digest: digest.FromString("c")}} {
		p.event(ocistream.ProgressEvent{Kind: ocistream.BlobQueued, Descriptor: d})
	}
	for _, e := range events() {
		p.event(e)
	}
	p.event(ocistream.ProgressEvent{Kind: ocistream.BlobStarted, Descriptor: ocitypes.Descriptor{Digest: digest.FromString("d"), Size: 10}})
	p.finish()
	for _, want := range []string{shortDigest(digest.FromString("a")) + " (resumed from 1.0 MiB)", "3.0 MiB / 3.0 MiB", "already present", "failed", "total", "3.0 MiB / 3.0 MiB"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("bars %q do not show %q", buf.String(), want)
		}
	}
}
