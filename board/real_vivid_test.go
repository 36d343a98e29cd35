package board

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestRealVivid runs the real ioctl path (no fakes) against vivid with
// one HDMI input, as loaded in the virtual capture box. It needs root,
// vivid and v4l2-ctl, so it runs only when CAPBOX_VIVID_DEVICE names the
// node, e.g. inside the QEMU guest:
//
//	go test -c -o .cache/board-real/board.test ./board
//	.cache/e2e/bin/e2e-vm -script board/testdata/real-vivid.sh
func TestRealVivid(t *testing.T) {
	dev := os.Getenv("CAPBOX_VIVID_DEVICE")
	if dev == "" {
		t.Skip("CAPBOX_VIVID_DEVICE not set: run in the virtual capture box (board/testdata/real-vivid.sh)")
	}
	ctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("v4l2-ctl", append([]string{"-d", dev}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("v4l2-ctl %v: %v\n%s", args, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Detection through real ioctls.
	start := time.Now()
	d, err := Detect(ctx, Options{})
	t.Logf("live detection took %v (%d inputs, %d encoders), err %v", time.Since(start), len(d.VideoInputs), len(d.Encoders), err)
	var in *VideoInput
	for i := range d.VideoInputs {
		if d.VideoInputs[i].Device == dev {
			in = &d.VideoInputs[i]
		}
	}
	if in == nil || !in.Probed || !in.DVTimings || !in.EDID || in.Kind != KindVirtual {
		t.Fatalf("vivid input: %+v", in)
	}

	// EDID: load the default, read it back.
	if err := SetEDID(dev, DefaultEDID()); err != nil {
		t.Fatalf("SetEDID: %v", err)
	}
	got, err := ReadEDID(dev)
	if err != nil || len(got) != 256 || !bytes.Equal(got[:128], DefaultEDID()[:128]) {
		t.Fatalf("ReadEDID: %d bytes, %v", len(got), err)
	}
	// vivid rewrites the HDMI physical address to its CEC adapter's
	// (vivid_vid_cap_g_edid, v4l2_set_edid_phys_addr); the rest is ours.
	gi, gerr := ParseEDID(got)
	wi, _ := ParseEDID(DefaultEDID())
	t.Logf("EDID read back: physical address %s (set %s)", gi.PhysicalAddress, wi.PhysicalAddress)
	gi.PhysicalAddress, wi.PhysicalAddress = "", ""
	if gerr != nil || fmt.Sprint(gi) != fmt.Sprint(wi) {
		t.Fatalf("EDID read back differs: %+v (%v)", gi, gerr)
	}

	// Signal watcher against vivid's simulated states
	// (vivid control dv_timings_signal_mode, VIRTUAL-BOX.md).
	w := NewSignalWatcher(dev, nil)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		wcancel()
		if err := <-done; err != nil {
			t.Errorf("watcher Run: %v", err)
		}
	}()
	expect := func(want SignalState) SignalEvent {
		t.Helper()
		t0 := time.Now()
		for {
			select {
			case ev := <-w.Events():
				t.Logf("event after %v: %s %dx%d@%v gone=%v err=%v", time.Since(t0).Round(time.Millisecond), ev.Signal.State, ev.Signal.Width, ev.Signal.Height, ev.Signal.FPSExact, ev.Gone, ev.Err)
				if ev.Signal.State == want {
					return ev
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s within 5 s", want)
			}
		}
	}
	expect(SignalLocked)
	ctl("-c", "dv_timings_signal_mode=1")
	expect(SignalNone)
	ctl("-c", "dv_timings_signal_mode=2")
	expect(SignalNoLock)
	ctl("-c", "dv_timings_signal_mode=3")
	expect(SignalOutOfRange)
	ctl("-c", "dv_timings_signal_mode=0")
	expect(SignalLocked)
	// Clearing the EDID drops hot-plug: no signal; loading it brings it back.
	if err := SetEDID(dev, nil); err != nil {
		t.Fatalf("clear EDID: %v", err)
	}
	expect(SignalNone)
	if err := SetEDID(dev, DefaultEDID()); err != nil {
		t.Fatal(err)
	}
	expect(SignalLocked)

	// Unbind vivid: the node vanishes (remove uevents, ENODEV); bind it
	// again: it comes back and the watcher finds it.
	hp := NewHotplug(nil, WithDebounce(300*time.Millisecond))
	hctx, hcancel := context.WithCancel(ctx)
	hdone := make(chan error, 1)
	go func() { hdone <- hp.Run(hctx) }()
	defer func() {
		hcancel()
		if err := <-hdone; err != nil {
			t.Errorf("hotplug Run: %v", err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := os.WriteFile("/sys/bus/platform/drivers/vivid/unbind", []byte("vivid.0"), 0); err != nil {
		t.Fatalf("unbind: %v", err)
	}
	ev := expect(SignalNone)
	if !ev.Gone {
		t.Errorf("unbind: not reported gone: %+v", ev)
	}
	waitHotplug := func(action string) {
		t.Helper()
		for {
			select {
			case e := <-hp.Events():
				t.Logf("hotplug %s %s %s", e.Action, e.Subsystem, e.Device)
				if e.Action == action && e.Subsystem == "video4linux" {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s video4linux uevent", action)
			}
		}
	}
	waitHotplug("remove")
	if err := os.WriteFile("/sys/bus/platform/drivers/vivid/bind", []byte("vivid.0"), 0); err != nil {
		t.Fatalf("bind: %v", err)
	}
	waitHotplug("add")
	// A fresh vivid has no EDID: load it as the agent does after a hotplug.
	time.Sleep(300 * time.Millisecond)
	if err := SetEDID(dev, DefaultEDID()); err != nil {
		t.Fatalf("SetEDID after rebind: %v", err)
	}
	ev = expect(SignalLocked)
	if ev.Gone {
		t.Errorf("back but gone: %+v", ev)
	}
}
