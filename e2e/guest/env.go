package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// env is what every scenario shares: paths and the devices found at setup.
type env struct {
	log      *slog.Logger
	repo     string
	arch     string
	modroot  string // holds lib/modules/<uname -r>, for modprobe -d
	capboxd  string
	results  string // the host's share
	artifact string // logs and files worth keeping, under results

	vivid   string // the vivid HDMI capture node, /dev/videoN
	vicodec string // the vicodec encoder node
}

// stopGrace is how long capboxd may take to stop after SIGTERM: it drains its encoders and
// outputs and tears its pipelines down, each with a bound. The emulated aarch64 CPU is several
// times slower than the amd64 guest's, and an x264 encode that has fallen behind keeps a
// capture's streaming thread busy for seconds per call there.
func (e *env) stopGrace() time.Duration {
	if e.arch == "arm64" {
		return 45 * time.Second
	}
	return 15 * time.Second
}

// slow scales a bound for this guest's CPU. The emulated aarch64 CPU runs GStreamer and
// capboxd several times slower than the amd64 guest (an x264 frame, a pipeline's teardown, a
// bus message's trip to the fleet), so there a bound is three times what it is on amd64.
func (e *env) slow(d time.Duration) time.Duration {
	if e.arch == "arm64" {
		return 3 * d
	}
	return d
}

// live is the 1.5 s bound for reporting a signal change, on this guest's CPU.
func (e *env) live() time.Duration { return e.slow(liveLimit) }

// vividParams give one HDMI input (input_types: 2 bits per input, 3 = HDMI) on one capture
// node, so vivid looks like an HDMI-to-CSI bridge (vivid.rst, "Module options").
var vividParams = []string{"n_devs=1", "node_types=0x1", "num_inputs=1", "input_types=0x3"}

// modprobe loads a module with its parameters from the prepared module tree.
func (e *env) modprobe(ctx context.Context, name string, params ...string) error {
	args := append([]string{"-d", e.modroot, name}, params...)
	out, err := exec.CommandContext(ctx, "modprobe", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("modprobe %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

func (e *env) rmmod(ctx context.Context, name string) error {
	out, err := exec.CommandContext(ctx, "rmmod", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rmmod %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// findNodes maps /sys/class/video4linux names to device nodes: vivid's capture node is named
// "vivid-000-vid-cap", vicodec's encoder "stateful-encoder" (6.1) (drivers/media/test-drivers).
func findNodes() (map[string]string, error) {
	ents, err := os.ReadDir("/sys/class/video4linux")
	if err != nil {
		return nil, err
	}
	nodes := map[string]string{}
	for _, en := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/class/video4linux", en.Name(), "name"))
		if err != nil {
			continue
		}
		nodes[strings.TrimSpace(string(b))] = "/dev/" + en.Name()
	}
	return nodes, nil
}

// udevSettle waits for udevd to finish the queued events.
func udevSettle(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "udevadm", "settle", "--timeout=20").CombinedOutput()
	if err != nil {
		return fmt.Errorf("udevadm settle: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// setup loads vivid and vicodec the way a box has its drivers, waits for udev, and finds
// the nodes. Every other scenario needs it.
func setup(ctx context.Context, t *T) {
	e := t.e
	start := time.Now()
	if err := e.modprobe(ctx, "vivid", vividParams...); err != nil {
		t.Fatalf("%v", err)
	}
	t.Timing("modprobe_vivid", time.Since(start))
	start = time.Now()
	if err := e.modprobe(ctx, "vicodec"); err != nil {
		t.Fatalf("%v", err)
	}
	t.Timing("modprobe_vicodec", time.Since(start))
	start = time.Now()
	if err := udevSettle(ctx); err != nil {
		t.Errorf("%v", err)
	}
	t.Timing("udev_settle", time.Since(start))
	nodes, err := findNodes()
	if err != nil {
		t.Fatalf("no video4linux class: %v", err)
	}
	e.vivid, e.vicodec = nodes["vivid-000-vid-cap"], nodes["stateful-encoder"]
	t.Fact("nodes", "%v", nodes)
	if e.vivid == "" || e.vicodec == "" {
		t.Fatalf("vivid capture or vicodec encoder node missing: %v", nodes)
	}
	// Warm GStreamer's registry once for this device set (only the v4l2 plugin is rescanned).
	start = time.Now()
	out, err := exec.CommandContext(ctx, "gst-inspect-1.0", "v4l2fwhtenc").CombinedOutput()
	if err != nil {
		t.Errorf("gst-inspect-1.0 v4l2fwhtenc: %v: %s", err, lastLines(out, 5))
	}
	t.Timing("gst_registry_update", time.Since(start))
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// gstPlaying is what gst-launch-1.0 prints once a live pipeline runs.
const gstPlaying = "New clock:"
