package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzShellWords: any line splits without panicking, and words quoted the
// way pipelines quotes them split back to themselves.
func FuzzShellWords(f *testing.F) {
	f.Add(`gst-launch-1.0 -e  clockoverlay 'text="capbox test pattern"' ! 'video/x-h264,profile=(string)high'`)
	f.Add(`a "b \" c" d\ e 'f'"g"`)
	f.Add(`'`)
	f.Fuzz(func(t *testing.T, line string) {
		words, err := shellWords(line)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := shellWords(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-split of %q: %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, words) {
			t.Fatalf("words %q came back as %q", words, again)
		}
	})
}

// FuzzMeter: any byte stream is counted without panicking, and never more
// bytes than were fed.
func FuzzMeter(f *testing.F) {
	f.Add(publish("capbox/room-1/telemetry", 0, []byte(`{"uptime_s":5}`)), 3)
	f.Add([]byte{0xC0, 0x00, 0xD0, 0x00}, 1)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 2)
	f.Add([]byte{0x32, 0x03, 0x00, 0x09, 'a'}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		tl := newTally()
		m := &meter{dir: "up", t: tl}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		m.feed(data[:cut])
		m.feed(data[cut:])
		got, _ := tl.snapshot()
		var total int64
		for _, v := range got {
			total += v
		}
		if total > int64(len(data)) {
			t.Fatalf("counted %d bytes of %d", total, len(data))
		}
	})
}

// FuzzParseTimeV: any report parses or errs without panicking.
func FuzzParseTimeV(f *testing.F) {
	for _, p := range []string{"testdata/time-v.txt", "testdata/time-v-killed.txt"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Elapsed (wall clock) time (h:mm:ss or m:ss): 1:2:3:4\n")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseTimeV(strings.NewReader(s))
		if err == nil && (u.MaxRSSKiB < 0 && !strings.Contains(s, "-")) {
			t.Fatalf("negative RSS from %q", s)
		}
		_ = parseTimeVSignal(s)
	})
}
