package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/fleet/wire"
)

// fakeSystemd is a unixgram socket standing in for systemd's notify socket.
type fakeSystemd struct {
	conn *net.UnixConn
}

func listen(t *testing.T, addr string) *fakeSystemd {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return &fakeSystemd{conn: conn}
}

// next reads one datagram, or fails after 5 s.
func (f *fakeSystemd) next(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

// none asserts nothing arrives within d.
func (f *fakeSystemd) none(t *testing.T, d time.Duration) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = f.conn.SetReadDeadline(time.Now().Add(d))
	if n, err := f.conn.Read(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func TestNotifierDatagrams(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@capbox-notify-test-%d", os.Getpid()), // abstract, as systemd uses
	} {
		t.Run(strings.TrimPrefix(filepath.Base(addr), "@"), func(t *testing.T) {
			sd := listen(t, addr)
			n := New()
			n.monotonic = func() time.Duration { return 12345678901 * time.Microsecond }
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			moods := map[string]wire.Mood{"capture": wire.MoodHungry, "output:yt": wire.MoodSad, "encoder": wire.MoodHappy, "recorder": wire.MoodSleeping}
			steps := []struct {
				do   func() error
				want string
			}{
				{n.Ready, "READY=1"},
				{func() error { return n.Status(StatusText(wire.ModeDegraded, moods)) },
					"STATUS=degraded; sad: output:yt failed, retrying; capture waiting for input"},
				{n.Reloading, "RELOADING=1\nMONOTONIC_USEC=12345678901"},
				{n.Ready, "READY=1"},
				{n.Watchdog, "WATCHDOG=1"},
				// A part name cannot smuggle another assignment in.
				{func() error { return n.Status("ok\nREADY=1") }, "STATUS=ok READY=1"},
				{n.Stopping, "STOPPING=1"},
			}
			for i, s := range steps {
				if err := s.do(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := sd.next(t); got != s.want {
					t.Fatalf("step %d: %q want %q", i, got, s.want)
				}
			}
			// The same status twice is sent once.
			if err := n.Status("ok\nREADY=1"); err != nil {
				t.Fatal(err)
			}
			sd.none(t, 100*time.Millisecond)
		})
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	for _, f := range []func() error{n.Ready, n.Reloading, n.Stopping, n.Watchdog, func() error { return n.Status("x") }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNotifierSocketGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := New().Ready(); err == nil || !strings.Contains(err.Error(), "sd_notify READY=1") {
		t.Fatalf("want a named error, got %v", err)
	}
}

func TestStatusText(t *testing.T) {
	for _, c := range []struct {
		mode  string
		moods map[string]wire.Mood
		want  string
	}{
		{"streaming", map[string]wire.Mood{"capture": "happy", "encoder": "happy", "output:live": "happy", "recorder": "happy"}, "streaming; happy: all 4 parts working"},
		{"idle", map[string]wire.Mood{"capture": "happy"}, "idle; happy: 1 part working"},
		{"", nil, "happy: all 0 parts working"},
		{"starting", map[string]wire.Mood{"capture": "waking", "output:a": "lost", "output:b": "sad", "recorder": "sleeping"},
			"starting; lost: output:a not responding; output:b failed, retrying; capture starting"},
		{"no_signal", map[string]wire.Mood{"capture": "hungry", "thermal": "hungry", "encoder": "happy"},
			"no_signal; hungry: capture waiting for input; thermal waiting for input"},
	} {
		if got := StatusText(c.mode, c.moods); got != c.want {
			t.Errorf("%v %v:\n got %q\nwant %q", c.mode, c.moods, got, c.want)
		}
	}
}

func TestOneLineTruncates(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	got := oneLine(long)
	if len(got) > 203 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("%d bytes: %q", len(got), got)
	}
	for _, r := range strings.TrimSuffix(got, "...") {
		if r != 'é' {
			t.Fatalf("cut inside a character: %q", got)
		}
	}
}

// pings records watchdog pings on the bubble's clock.
type pings struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
}

func (p *pings) Watchdog() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, time.Since(p.start))
	return nil
}

func (p *pings) got() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.at...)
}

func TestWatchdogPingsOnlyOnProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pings{start: time.Now()}
		w := newWatchdog(p, 30*time.Second, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()

		// The supervisor's loop goes round every second, off the ticks.
		progress := func(from, to time.Duration) {
			for now := time.Since(p.start); now < from; now = time.Since(p.start) {
				time.Sleep(from - now)
			}
			for time.Since(p.start) < to {
				time.Sleep(time.Second)
				w.Progress()
			}
		}
		time.Sleep(500 * time.Millisecond)
		progress(0, 60*time.Second) // healthy for a minute
		progress(2*time.Minute, 160*time.Second)
		synctest.Wait()
		time.Sleep(10 * time.Second) // past the 165 s tick
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		sec := func(s ...int) []time.Duration {
			out := make([]time.Duration, len(s))
			for i, v := range s {
				out[i] = time.Duration(v) * time.Second
			}
			return out
		}
		// Pings at half the interval while progressing (the last progress
		// of the first minute is at 60.5 s, so the 75 s tick still pings);
		// none in the stall up to 121 s (the 90, 105 and 120 s ticks), so
		// systemd would restart the agent at 105 s; then again up to 160 s.
		want := sec(15, 30, 45, 60, 75, 135, 150, 165)
		if got := p.got(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pings at %v, want %v", got, want)
		}
	})
}

func TestWatchdogFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"30000000", "", 30 * time.Second, false},
		{"30000000", fmt.Sprint(os.Getpid()), 30 * time.Second, false},
		{"30000000", "1", 0, false}, // meant for another process
		{"", "", 0, false},
		{"thirty", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		w, err := NewWatchdog(New(), nil)
		if (err != nil) != c.err {
			t.Fatalf("%+v: err %v", c, err)
		}
		if err == nil && (w.Interval() != c.want || w.Enabled() != (c.want > 0)) {
			t.Fatalf("%+v: interval %v", c, w.Interval())
		}
	}
}

func TestWatchdogDisabledReturns(t *testing.T) {
	w := newWatchdog(&pings{}, 0, nil)
	w.Progress()
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestWatchdogOverSocket is the whole path: progress, a tick, a datagram.
func TestWatchdogOverSocket(t *testing.T) {
	sd := listen(t, filepath.Join(t.TempDir(), "notify"))
	w := newWatchdog(New(), 200*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	w.Progress()
	if got := sd.next(t); got != "WATCHDOG=1" {
		t.Fatalf("%q", got)
	}
	sd.none(t, 400*time.Millisecond) // no progress, no ping
}
