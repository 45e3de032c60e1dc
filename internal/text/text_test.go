package text

import "testing"

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 5, ""},
		{"short", 5, "short"},
		{"longer", 5, "longe..."},
		{"héllo", 2, "h..."}, // é is two bytes: never cut in half
		{"日本語", 4, "日..."},
	} {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if got := Clip([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("Clip([]byte(%q), %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("a\n  b\tc\r\n", 10); got != "a b c" {
		t.Errorf("OneLine = %q", got)
	}
	if got := OneLine("a b c d e f", 5); got != "a b c..." {
		t.Errorf("OneLine = %q", got)
	}
}

func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "abc", "héllo", "日本語", "\xff\xfe"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<10 {
			return
		}
		got := Clip(s, n)
		if len(s) <= n && got != s {
			t.Fatalf("Clip(%q, %d) = %q, changed a short string", s, n, got)
		}
		if len(got) > n+3 {
			t.Fatalf("Clip(%q, %d) = %q, too long", s, n, got)
		}
	})
}
