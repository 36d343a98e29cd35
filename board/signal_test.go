package board

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

// next waits (in the bubble) for the watcher's next event.
func next(t *testing.T, w *SignalWatcher) SignalEvent {
	t.Helper()
	select {
	case ev := <-w.Events():
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
	}
	return SignalEvent{}
}

func noEvent(t *testing.T, w *SignalWatcher, d time.Duration) {
	t.Helper()
	select {
	case ev := <-w.Events():
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

func startWatcher(t *testing.T, hw *fakeHW, dev string, opts ...WatcherOption) (*SignalWatcher, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewSignalWatcher(dev, nil, append([]WatcherOption{withOpener(hw.open)}, opts...)...)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return w, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	}
}

func TestWatcherPollsSignalLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		hw.add("/dev/video0", vividHDMI())
		w, stop := startWatcher(t, hw, "/dev/video0")
		defer stop()
		start := time.Now()

		ev := next(t, w)
		if ev.Signal.State != SignalLocked || ev.Signal.Width != 1280 || ev.Signal.FPS != 60 || ev.Err != nil {
			t.Fatalf("first event %+v", ev)
		}
		// vivid dv_timings_signal_mode=1: ENOLINK, frames keep flowing,
		// no source-change event reaches this node: only the poll sees it.
		time.Sleep(3500 * time.Millisecond)
		hw.set("/dev/video0", func(d *fakeDev) { d.timingsErr, d.framesFlowing = unix.ENOLINK, true })
		ev = next(t, w)
		if ev.Signal.State != SignalNone || !errors.Is(ev.Err, ErrNoCable) || ev.Gone {
			t.Fatalf("after ENOLINK: %+v", ev)
		}
		if lag := time.Since(start) - 3500*time.Millisecond; lag > time.Second {
			t.Errorf("poll noticed the loss after %v, want within 1 s", lag)
		}
		noEvent(t, w, 5*time.Second) // steady state: no repeats
	})
}

func TestWatcherSourceChangeEventIsImmediate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		d := hw.add("/dev/video0", vividHDMI())
		w, stop := startWatcher(t, hw, "/dev/video0", WithPollInterval(time.Hour))
		defer stop()
		next(t, w)
		synctest.Wait()
		hw.set("/dev/video0", func(d *fakeDev) {
			if !d.subscribed {
				t.Error("watcher did not subscribe to V4L2_EVENT_SOURCE_CHANGE")
			}
			d.timings = timing1080p60
		})
		at := time.Now()
		d.events <- Event{Type: eventSourceChange, Changes: srcChResolution}
		ev := next(t, w)
		if ev.Signal.Width != 1920 || ev.Signal.FPS != 60 || !ev.At.Equal(at) {
			t.Fatalf("format change %+v at %v, want 1920x1080 at %v", ev, ev.At, at)
		}
	})
}

func TestWatcherStates(t *testing.T) {
	for _, c := range []struct {
		errno unix.Errno
		state SignalState
		err   error
	}{
		{unix.ENOLCK, SignalNoLock, ErrNoSync},
		{unix.ERANGE, SignalOutOfRange, ErrOutOfRange},
		{unix.EIO, SignalUnknown, ErrIO},
	} {
		synctest.Test(t, func(t *testing.T) {
			hw := newFakeHW()
			hw.add("/dev/video0", vividHDMI()).timingsErr = c.errno
			w, stop := startWatcher(t, hw, "/dev/video0")
			defer stop()
			ev := next(t, w)
			if ev.Signal.State != c.state || !errors.Is(ev.Err, c.err) {
				t.Errorf("%v: %+v, want %s", c.errno, ev, c.state)
			}
			hw.set("/dev/video0", func(d *fakeDev) { d.timingsErr, d.timings = nil, timing1080p5994 })
			ev = next(t, w)
			if ev.Signal.State != SignalLocked || ev.Signal.FPS != 60 || ev.Signal.FPSExact != 59.94 {
				t.Errorf("recovered: %+v", ev.Signal)
			}
		})
	}
}

func TestWatcherStatusOverridesStaleTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		d := hw.add("/dev/video0", vividHDMI())
		d.inputs[0].Status = inStNoPower // the receiver still returns its last timing
		w, stop := startWatcher(t, hw, "/dev/video0")
		defer stop()
		if ev := next(t, w); ev.Signal.State != SignalNone || !errors.Is(ev.Err, ErrNoCable) {
			t.Fatalf("%+v", ev)
		}
	})
}

func TestWatcherUVCHasNoDVTimings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		hw.add("/dev/video0", uvcDongle())
		w, stop := startWatcher(t, hw, "/dev/video0")
		defer stop()
		if ev := next(t, w); ev.Signal.State != SignalUnknown || ev.Err != nil {
			t.Fatalf("UVC: %+v, want unknown without error", ev)
		}
	})
}

func TestWatcherSurvivesVanishingDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		hw.add("/dev/video0", vividHDMI())
		stable := "/dev/v4l/by-path/platform-vivid.0-video-index0"
		where := "/dev/video0"
		resolve := func(s string) (string, error) {
			if s != stable {
				t.Errorf("resolve(%q)", s)
			}
			hw.mu.Lock()
			defer hw.mu.Unlock()
			return where, nil
		}
		w, stop := startWatcher(t, hw, "/dev/video0", WithStablePath(stable), withResolver(resolve))
		defer stop()
		next(t, w)

		// vivid "disconnect": open handles fail with ENODEV, node removed.
		hw.remove("/dev/video0")
		ev := next(t, w)
		if !ev.Gone || ev.Signal.State != SignalNone || !errors.Is(ev.Err, ErrGone) || !errors.Is(ev.Err, unix.ENODEV) {
			t.Fatalf("vanish: %+v", ev)
		}
		// While it is away, reopening fails with ENOENT every second:
		// still gone, no flood of events.
		noEvent(t, w, 10*time.Second)
		if last, _ := w.Last(); !last.Gone {
			t.Fatalf("absent: %+v", last)
		}
		hw.mu.Lock()
		opens := hw.opens
		hw.mu.Unlock()
		if opens < 10 {
			t.Errorf("%d opens in 10 s: the watcher stopped looking for the device", opens)
		}

		// Replugged as another node: found through the stable path.
		hw.mu.Lock()
		where = "/dev/video3"
		hw.mu.Unlock()
		back := vividHDMI()
		back.timings = timing1080p30
		hw.add("/dev/video3", back)
		ev = next(t, w)
		if ev.Gone || ev.Device != "/dev/video3" || ev.Signal.State != SignalLocked || ev.Signal.FPS != 30 {
			t.Fatalf("back: %+v", ev)
		}
		if last, ok := w.Last(); !ok || last.Device != "/dev/video3" {
			t.Errorf("Last %+v", last)
		}
	})
}

func TestWatcherKeepsNewestWhenReaderIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw := newFakeHW()
		hw.add("/dev/video0", vividHDMI())
		w, stop := startWatcher(t, hw, "/dev/video0", WithPollInterval(100*time.Millisecond))
		defer stop()
		// Nobody reads for 20 changes; the channel holds 8.
		for i := range 20 {
			time.Sleep(200 * time.Millisecond)
			hw.set("/dev/video0", func(d *fakeDev) {
				if i%2 == 0 {
					d.timingsErr = unix.ENOLINK
				} else {
					d.timingsErr = nil
				}
			})
		}
		time.Sleep(time.Second)
		var last SignalEvent
		for len(w.Events()) > 0 {
			last = <-w.Events()
		}
		if last.Signal.State != SignalLocked {
			t.Errorf("newest state lost: %+v", last)
		}
	})
}
