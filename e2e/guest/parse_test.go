package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// fwhtFrame builds one frame as vicodec writes it: the 44-byte header, then size bytes.
func fwhtFrame(w, h, size int) []byte {
	hdr := make([]byte, fwhtHeaderSize)
	copy(hdr, fwhtMagic)
	binary.BigEndian.PutUint32(hdr[8:], 3) // FWHT_VERSION in 6.1
	binary.BigEndian.PutUint32(hdr[12:], uint32(w))
	binary.BigEndian.PutUint32(hdr[16:], uint32(h))
	binary.BigEndian.PutUint32(hdr[40:], uint32(size))
	return append(hdr, bytes.Repeat([]byte{0x5a}, size)...)
}

func TestFWHTFrames(t *testing.T) {
	var b []byte
	for _, size := range []int{1000, 17, 0, 4096} {
		b = append(b, fwhtFrame(1280, 720, size)...)
	}
	n, w, h, err := fwhtFrames(b)
	if n != 4 || w != 1280 || h != 720 || err != nil {
		t.Fatalf("4 frames: got %d %dx%d %v", n, w, h, err)
	}
	// A frame being written is not counted, and is no error.
	if n, _, _, err := fwhtFrames(append(b, fwhtFrame(1280, 720, 500)[:100]...)); n != 4 || err != nil {
		t.Errorf("with a partial frame: %d %v", n, err)
	}
	// Anything else where a header belongs is.
	bad := append(append([]byte{}, b...), bytes.Repeat([]byte{1}, 64)...)
	if n, _, _, err := fwhtFrames(bad); n != 4 || err == nil {
		t.Errorf("garbage after 4 frames: %d %v", n, err)
	}
}

func TestIsSlate(t *testing.T) {
	for _, c := range []struct {
		rgb  [3]int
		want bool
	}{
		{[3]int{0x20, 0x28, 0x30}, true},
		{[3]int{0x24, 0x25, 0x36}, true},
		{[3]int{191, 191, 191}, false}, // vivid's 75% white bar
		{[3]int{128, 127, 129}, false}, // noise, averaged
		{[3]int{0x20, 0x28, 0x60}, false},
	} {
		if got := isSlate(c.rgb); got != c.want {
			t.Errorf("isSlate(%v) = %v", c.rgb, got)
		}
	}
}

func TestProcCPU(t *testing.T) {
	u0, _, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn user time until the kernel has counted at least two ticks of it.
	x := 0
	for i := 0; i < 200; i++ {
		for j := 0; j < 1_000_000; j++ {
			x += j ^ i
		}
		if u, _, _ := procCPU(os.Getpid()); u-u0 >= 20*time.Millisecond {
			return
		}
	}
	u1, _, _ := procCPU(os.Getpid())
	t.Errorf("user time %v -> %v after a busy loop (%d)", u0, u1, x)
}

func TestCtrlVar(t *testing.T) {
	// Names as vivid registers them (vivid-ctrls.c) and as v4l2-ctl -c spells them.
	for name, want := range map[string]string{
		"DV Timings Signal Mode":       "dv_timings_signal_mode",
		"Disconnect":                   "disconnect",
		"Inject Fatal Streaming Error": "inject_fatal_streaming_error",
		"DV Timings":                   "dv_timings",
		"Fill Percentage of Frame":     "fill_percentage_of_frame",
		"  Odd -- Name (x2) ":          "odd_name_x2",
	} {
		if got := ctrlVar(name); got != want {
			t.Errorf("ctrlVar(%q) = %q, want %q", name, got, want)
		}
	}
}
