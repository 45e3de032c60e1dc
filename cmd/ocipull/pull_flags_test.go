package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"8MiB", 8 << 20, true},
		{"8M", 8 << 20, true},
		{"512kib", 512 << 10, true},
		{"1 GiB", 1 << 30, true},
		{"16B", 16, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"8 parsecs", 0, false},
		{"-1", 0, false},
		{"9999999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
