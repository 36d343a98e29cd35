package sdnotify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzOneLine: a status is always a single assignment of bounded size, and
// valid UTF-8 stays valid when cut.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"ok", "a\nREADY=1", strings.Repeat("€", 100), "\x00\x7f\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s)
		if strings.ContainsAny(got, "\n\r\x00") || len(got) > 203 {
			t.Fatalf("%q -> %q", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cut inside a character: %q -> %q", s, got)
		}
	})
}
