package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v4l2Event matches a kernel uevent for a video4linux node.
func v4l2Event(action string) func(uevent) bool {
	return func(ev uevent) bool {
		return ev.Action == action && ev.Env["SUBSYSTEM"] == "video4linux" && strings.HasPrefix(ev.Env["DEVNAME"], "video")
	}
}

// byPathTo returns the /dev/v4l/by-path link that resolves to node, or "".
func byPathTo(node string) string {
	links, _ := filepath.Glob("/dev/v4l/by-path/*")
	for _, l := range links {
		if t, err := filepath.EvalSymlinks(l); err == nil && t == node {
			return l
		}
	}
	return ""
}

// reloadVivid removes and re-adds vivid, measuring the uevents and udev links of both halves;
// the node is found again (its number can change) and must be locked at 720p60.
func reloadVivid(ctx context.Context, t *T, ul *ueventListener) {
	e := t.e
	start := time.Now()
	if err := e.rmmod(ctx, "vivid"); err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := waitFor(ctx, 3*time.Second, func() (bool, error) {
		_, ok := ul.find(start, v4l2Event("remove"))
		return ok, errors.New("no remove uevent for a video4linux node")
	}); err != nil {
		t.Errorf("unplug: %v", err)
	}
	t.Timing("remove_uevent", time.Since(start))
	if _, err := waitFor(ctx, 5*time.Second, func() (bool, error) {
		l := byPathTo(e.vivid)
		return l == "", fmt.Errorf("udev left %s", l)
	}); err != nil {
		t.Errorf("unplug: %v", err)
	}
	start = time.Now()
	if err := e.modprobe(ctx, "vivid", vividParams...); err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := waitFor(ctx, 5*time.Second, func() (bool, error) {
		_, ok := ul.find(start, v4l2Event("add"))
		return ok, errors.New("no add uevent for a video4linux node")
	}); err != nil {
		t.Errorf("replug: %v", err)
	}
	t.Timing("add_uevent", time.Since(start))
	if err := udevSettle(ctx); err != nil {
		t.Errorf("%v", err)
	}
	nodes, err := findNodes()
	if err != nil || nodes["vivid-000-vid-cap"] == "" {
		t.Fatalf("vivid node not back after modprobe: %v %v", nodes, err)
	}
	e.vivid = nodes["vivid-000-vid-cap"]
	if byPathTo(e.vivid) == "" {
		t.Errorf("replug: no /dev/v4l/by-path link to %s", e.vivid)
	}
	t.Timing("replug_link", time.Since(start))
	fd, err := openDev(e.vivid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer unix.Close(fd)
	if ok, err := locked720(fd); !ok {
		t.Errorf("after replug: %v", err)
	}
}

// hotplugUevents: scenario 6 at the kernel level. rmmod/modprobe of vivid is a real unplug and
// replug: remove/add uevents, udev links gone and back. While a capture holds the node open the
// module cannot go (the open handle pins it), which is why unplug-while-open is proven with
// vivid's disconnect control below.
func hotplugUevents(ctx context.Context, t *T) {
	e := t.e
	ul, err := listenUevents()
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer ul.Close()

	p := startLogged(ctx, t, "hotplug-busy-capture", nil, "gst-launch-1.0", "v4l2src", "device="+e.vivid, "!", "fakesink")
	waitCapturing(ctx, t, p, e.vivid, gstPlaying)
	if err := e.rmmod(ctx, "vivid"); err == nil {
		t.Errorf("rmmod vivid succeeded while a capture held the node open")
		_ = e.modprobe(ctx, "vivid", vividParams...)
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("rmmod vivid while capturing: %v, want 'in use'", err)
	}
	p.stop(unix.SIGINT, 5*time.Second)

	reloadVivid(ctx, t, ul)
}

// disconnectENODEV: scenario 6, unplug while open. vivid's disconnect control unregisters the
// nodes under a running capture: the open handle's ioctls fail with ENODEV and GStreamer stops
// with an error. A reload brings the input back.
func disconnectENODEV(ctx context.Context, t *T) {
	e := t.e
	ul, err := listenUevents()
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer ul.Close()
	p := startLogged(ctx, t, "disconnect-capture", nil, "gst-launch-1.0", "v4l2src", "device="+e.vivid, "!", "fakesink")
	fd, err := openDev(e.vivid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	waitCapturing(ctx, t, p, e.vivid, gstPlaying)
	start := time.Now()
	if err := setCtrl(ctx, e.vivid, "disconnect=1"); err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := waitFor(ctx, 1500*time.Millisecond, func() (bool, error) {
		_, err := queryDVTimings(fd)
		return errors.Is(err, unix.ENODEV), fmt.Errorf("QUERY_DV_TIMINGS on the open handle: %s, want ENODEV", errnoName(err))
	}); err != nil {
		t.Errorf("%v", err)
	}
	t.Timing("enodev_seen", time.Since(start))
	unix.Close(fd)
	if _, err := waitFor(ctx, 10*time.Second, func() (bool, error) { return p.exited(), errors.New("gst-launch still running") }); err != nil {
		t.Errorf("capture did not stop on the disconnect: %v", err)
	} else {
		t.Timing("gst_stopped", time.Since(start))
		if p.err == nil {
			t.Errorf("gst-launch exited cleanly after the device vanished")
		}
	}
	p.stop(unix.SIGKILL, time.Second)
	reloadVivid(ctx, t, ul)
}

// fatalStreamingEIO: scenario 6, a fatal streaming error. vivid's inject_fatal_streaming_error
// fails the queue: GStreamer's v4l2src stops with "Could not read from resource" (1.22 reports
// the poll error as EINVAL, not the errno behind it); on our own capture loop the kernel
// answers VIDIOC_DQBUF or VIDIOC_QBUF with EIO; a new capture on the same node works again
// without a reload.
func fatalStreamingEIO(ctx context.Context, t *T) {
	e := t.e
	inject := func(name string, p *bgProc, marker string) string {
		waitCapturing(ctx, t, p, e.vivid, marker)
		start := time.Now()
		if err := setCtrl(ctx, e.vivid, "inject_fatal_streaming_error=1"); err != nil {
			t.Fatalf("%v", err)
		}
		if _, err := waitFor(ctx, 10*time.Second, func() (bool, error) { return p.exited(), errors.New("still running") }); err != nil {
			t.Fatalf("%s did not stop on the fatal error: %v", name, err)
		}
		t.Timing(name+"_stopped", time.Since(start))
		return p.buf.String()
	}

	p := startLogged(ctx, t, "fatal-error-gst", nil, "gst-launch-1.0", "v4l2src", "device="+e.vivid, "!", "fakesink")
	out := inject("gst", p, gstPlaying)
	if p.err == nil {
		t.Errorf("gst-launch exited cleanly after a fatal streaming error")
	}
	if !strings.Contains(out, "Could not read from resource") {
		t.Errorf("GStreamer did not report the read failure: %s", lastLines([]byte(out), 4))
	}

	// The kernel's answer, on our own capture loop: the queue fails with EIO.
	started, wait, err := streamUntilError(e.vivid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("own capture loop got no frames")
	}
	start := time.Now()
	if err := setCtrl(ctx, e.vivid, "inject_fatal_streaming_error=1"); err != nil {
		t.Fatalf("%v", err)
	}
	frames, err := wait(5 * time.Second)
	t.Timing("eio_seen", time.Since(start))
	if !errors.Is(err, unix.EIO) {
		t.Errorf("capture after the injected error: %v after %d frames, want EIO", err, frames)
	} else {
		t.Fact("failing_ioctl", "%s", strings.SplitN(err.Error(), ":", 2)[0])
	}

	start = time.Now()
	r := runLogged(ctx, t, "fatal-error-recapture", nil, "gst-launch-1.0", "v4l2src", "device="+e.vivid, "num-buffers=10", "!", "fakesink")
	if r.exitCode != 0 {
		t.Errorf("capture after the fatal error: exit %d: %s", r.exitCode, lastLines([]byte(r.out), 3))
	}
	t.Timing("recapture", time.Since(start))
}
