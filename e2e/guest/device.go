package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// vividHDMIInput: the kernel side of scenario 1. vivid's node is a capture device whose one
// input is an HDMI receiver (DV timings) locked at 1280x720p60; vicodec's node is an M2M
// device; udev gave the capture node a stable /dev/v4l/by-path link.
func vividHDMIInput(ctx context.Context, t *T) {
	e := t.e
	fd, err := openDev(e.vivid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer unix.Close(fd)
	c, err := queryCap(fd)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if c.Driver != "vivid" || c.DeviceCaps&capVideoCapture == 0 || c.DeviceCaps&capStreaming == 0 {
		t.Errorf("%s: driver %q device caps %#x, want vivid with capture+streaming", e.vivid, c.Driver, c.DeviceCaps)
	}
	in, err := currentInput(fd)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if in.Caps&inCapDVTimings == 0 || !strings.HasPrefix(in.Name, "HDMI") {
		t.Errorf("input %q caps %#x: not an HDMI receiver with DV timings", in.Name, in.Caps)
	}
	if in.Status&(inStNoSignal|inStNoHLock) != 0 {
		t.Errorf("input status %#x: no signal at start", in.Status)
	}
	d, err := queryDVTimings(fd)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Fact("timings", "%s", d)
	if d.Width != 1280 || d.Height != 720 || d.Interlaced || math.Abs(d.FPS-60) > 0.1 {
		t.Errorf("timings %s, want 1280x720p60", d)
	}

	efd, err := openDev(e.vicodec)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer unix.Close(efd)
	ec, err := queryCap(efd)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if ec.Driver != "vicodec" || ec.DeviceCaps&(capVideoM2M|capVideoM2MMplane) == 0 {
		t.Errorf("%s: driver %q device caps %#x, want a vicodec M2M device", e.vicodec, ec.Driver, ec.DeviceCaps)
	}

	links, _ := filepath.Glob("/dev/v4l/by-path/*")
	found := ""
	for _, l := range links {
		if target, err := filepath.EvalSymlinks(l); err == nil && target == e.vivid {
			found = l
		}
	}
	if found == "" {
		t.Errorf("no /dev/v4l/by-path link to %s (udevd running? links: %v)", e.vivid, links)
	} else {
		t.Fact("stable_path", "%s", found)
	}
	if _, err := os.Stat("/run/udev/control"); err != nil {
		t.Errorf("udevd is not running: %v", err)
	}
}
