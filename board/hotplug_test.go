package board

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeUevents is a uevent socket fed by the test.
type fakeUevents struct {
	msgs   chan []byte
	closed chan struct{}
}

func newFakeUevents() *fakeUevents {
	return &fakeUevents{msgs: make(chan []byte, 64), closed: make(chan struct{})}
}

func (f *fakeUevents) Read(p []byte) (int, error) {
	select {
	case m, ok := <-f.msgs:
		if !ok {
			return 0, io.ErrUnexpectedEOF
		}
		return copy(p, m), nil
	case <-f.closed:
		return 0, errors.New("closed")
	}
}

func (f *fakeUevents) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

// uevent builds a kernel message as lib/kobject_uevent.c sends it.
func uevent(action, devpath, subsystem, devname string) []byte {
	s := action + "@" + devpath + "\x00ACTION=" + action + "\x00DEVPATH=" + devpath + "\x00SUBSYSTEM=" + subsystem + "\x00"
	if devname != "" {
		s += "DEVNAME=" + devname + "\x00"
	}
	return []byte(s + "SEQNUM=1234\x00")
}

const ms2109 = "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.2"

func runHotplug(t *testing.T, src *fakeUevents) (*Hotplug, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	h := NewHotplug(nil, withUeventSource(func() (ueventSource, error) { return src, nil }))
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	return h, func() error { cancel(); return <-done }
}

func TestHotplugDebouncesABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUevents()
		h, stop := runHotplug(t, src)
		start := time.Now()
		// A USB dongle arrives: usb device and interfaces (ignored), a
		// video node, its metadata node, a media node, a sound card and its PCM.
		src.msgs <- uevent("add", ms2109, "usb", "bus/usb/001/005")
		src.msgs <- uevent("add", ms2109+"/1-1.2:1.0/video4linux/video0", "video4linux", "video0")
		time.Sleep(100 * time.Millisecond)
		src.msgs <- uevent("add", ms2109+"/1-1.2:1.0/video4linux/video1", "video4linux", "video1")
		src.msgs <- uevent("add", ms2109+"/1-1.2:1.0/media0", "media", "media0")
		src.msgs <- []byte("libudev\x00\xfe\xed\xca\xfe garbage")
		time.Sleep(300 * time.Millisecond)
		src.msgs <- uevent("add", ms2109+"/1-1.2:1.2/sound/card1", "sound", "")
		src.msgs <- uevent("add", ms2109+"/1-1.2:1.2/sound/card1/pcmC1D0c", "sound", "snd/pcmC1D0c")
		synctest.Wait()
		if len(h.Events()) != 0 {
			t.Fatal("delivered before the bus was quiet")
		}
		var got []string
		arrived := []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
		for i := range 5 {
			ev := <-h.Events()
			got = append(got, ev.Action+" "+ev.Subsystem+" "+ev.Device)
			if d := ev.At.Sub(start); d != arrived[i] {
				t.Errorf("event %d stamped %v after start, want its arrival %v", i, d, arrived[i])
			}
		}
		if elapsed := time.Since(start); elapsed != 900*time.Millisecond {
			t.Errorf("burst delivered after %v, want 400 ms + 500 ms debounce", elapsed)
		}
		want := []string{"add video4linux /dev/video0", "add video4linux /dev/video1", "add media /dev/media0", "add sound ", "add sound /dev/snd/pcmC1D0c"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("got %q\nwant %q", got, want)
		}
		if err := stop(); err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	})
}

func TestHotplugReplugKeepsLastAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUevents()
		h, stop := runHotplug(t, src)
		defer stop()
		vid := ms2109 + "/1-1.2:1.0/video4linux/video0"
		src.msgs <- uevent("remove", vid, "video4linux", "video0")
		time.Sleep(200 * time.Millisecond)
		src.msgs <- uevent("add", vid, "video4linux", "video0")
		ev := <-h.Events()
		if ev.Action != "add" || ev.Device != "/dev/video0" {
			t.Fatalf("%+v", ev)
		}
		time.Sleep(2 * time.Second)
		if len(h.Events()) != 0 {
			t.Error("more than one event for one device in one burst")
		}
		// A later, separate remove is its own burst.
		src.msgs <- uevent("remove", vid, "video4linux", "video0")
		if ev := <-h.Events(); ev.Action != "remove" {
			t.Fatalf("%+v", ev)
		}
	})
}

func TestHotplugReadErrorEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUevents()
		_, stop := runHotplug(t, src)
		close(src.msgs)
		synctest.Wait()
		if err := stop(); err == nil {
			t.Error("a dead socket must end Run with an error")
		}
	})
}

// TestHotplugRealSocket opens the real netlink socket: it must work
// without udev and without privileges beyond what the test runs with.
func TestHotplugRealSocket(t *testing.T) {
	src, err := openUeventSocket()
	if err != nil {
		t.Fatalf("NETLINK_KOBJECT_UEVENT: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Read(make([]byte, maxUevent))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	src.Close()
	select {
	case <-done: // Close woke the blocked read (or an event arrived)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

func TestParseUevent(t *testing.T) {
	u, err := ParseUevent(uevent("add", "/devices/platform/vivid.0/video4linux/video0", "video4linux", "video0"))
	if err != nil || u.Action != "add" || u.Subsystem != "video4linux" || u.DevName != "video0" || u.Seqnum != "1234" {
		t.Fatalf("%+v %v", u, err)
	}
	for name, m := range map[string]string{
		"empty":         "",
		"no at":         "add\x00SUBSYSTEM=x\x00",
		"empty devpath": "add@\x00SUBSYSTEM=x\x00",
		"no subsystem":  "add@/devices/x\x00ACTION=add\x00",
		"mismatch":      "add@/devices/x\x00ACTION=remove\x00SUBSYSTEM=x\x00",
		"libudev":       "libudev\x00\xfe\xed\xca\xfe",
	} {
		if _, err := ParseUevent([]byte(m)); !errors.Is(err, ErrNotUevent) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add(uevent("add", "/devices/platform/vivid.0/video4linux/video0", "video4linux", "video0"))
	f.Add(uevent("remove", ms2109+"/1-1.2:1.2/sound/card1/pcmC1D0c", "sound", "snd/pcmC1D0c"))
	f.Add([]byte("change@/devices/x\x00SUBSYSTEM=media\x00DEVNAME=../../etc/passwd\x00"))
	f.Add([]byte("libudev\x00\xfe\xed\xca\xfe"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		u, err := ParseUevent(msg)
		if err != nil {
			if !errors.Is(err, ErrNotUevent) {
				t.Fatalf("error not ErrNotUevent: %v", err)
			}
			return
		}
		if u.Action == "" || u.DevPath == "" || u.Subsystem == "" {
			t.Fatalf("accepted incomplete uevent %+v", u)
		}
	})
}
