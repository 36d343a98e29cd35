package upload

import (
	"context"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The limiter lets through what its rate says, and a rate change takes
// effect in the middle of a transfer.
func TestLimiterRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(1 << 20)
		start := time.Now()
		r := &limitedReader{ctx: context.Background(), r: strings.NewReader(strings.Repeat("x", 3<<20)), l: l, left: 3 << 20}
		if n, err := io.Copy(io.Discard, r); err != nil || n != 3<<20 {
			t.Fatal(n, err)
		}
		// 3 MiB at 1 MiB/s, less the first bucket.
		if d := time.Since(start); d < 2800*time.Millisecond || d > 3100*time.Millisecond {
			t.Errorf("3 MiB at 1 MiB/s took %v", d)
		}
		l.setRate(0)
		done := make(chan struct{})
		go func() {
			r := &limitedReader{ctx: context.Background(), r: strings.NewReader(strings.Repeat("x", 1<<20)), l: l, left: 1 << 20}
			_, _ = io.Copy(io.Discard, r)
			close(done)
		}()
		time.Sleep(10 * time.Second)
		select {
		case <-done:
			t.Fatal("a paused limiter let 1 MiB through")
		default:
		}
		l.setRate(math.Inf(1))
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("unlimited, and still held back")
		}
	})
}

type stepUplink struct {
	mu sync.Mutex
	s  []LinkSample
}

func (u *stepUplink) LiveLinks() []LinkSample {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s
}

func (u *stepUplink) set(s ...LinkSample) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.s = s
}

// The yield: a rising round trip halves the rate, loss pauses it, and a
// quiet uplink brings it back up to the cap, never above.
func TestYieldFollowsTheLiveOutputs(t *testing.T) {
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	y := newYielder(8000, now) // 1 MB/s
	link := LinkSample{Output: "primary", RTT: 20 * time.Millisecond, SendBuffer: 60 * time.Millisecond}
	var sent int64
	step := func(d time.Duration, mut func(*LinkSample), throughput float64) float64 {
		var r float64
		for t := time.Duration(0); t < d; t += yieldTick {
			now = now.Add(yieldTick)
			link.SentPackets += 250
			if mut != nil {
				mut(&link)
			}
			sent += int64(throughput * yieldTick.Seconds())
			r = y.tick(now, []LinkSample{link}, sent)
		}
		return r
	}
	if r := step(5*time.Second, nil, 1e6); r != 1e6 {
		t.Errorf("quiet uplink: rate %v, want the cap 1e6", r)
	}
	r := step(yieldTick, func(l *LinkSample) { l.RTT = 90 * time.Millisecond }, 1e6)
	if r > 0.55e6 || r < 0.45e6 || !y.tight {
		t.Errorf("round trip up 70 ms: rate %v, want about half", r)
	}
	if r := step(yieldTick, func(l *LinkSample) { l.LostPackets += 50 }, 0.5e6); r != 0 {
		t.Errorf("17%% loss: rate %v, want a pause", r)
	}
	link.RTT = 20 * time.Millisecond
	if r := step(time.Second, nil, 0); r != 0 {
		t.Errorf("held for 2 s after the loss, got %v", r)
	}
	r = step(2*time.Second, nil, 0)
	if r <= 0 || r >= 1e6 {
		t.Errorf("recovering: rate %v, want growing from the floor", r)
	}
	if r := step(30*time.Second, nil, 1e6); r != 1e6 {
		t.Errorf("after 30 quiet seconds: rate %v, want the cap", r)
	}
	// A send buffer that fills is tight too.
	if r := step(yieldTick, func(l *LinkSample) { l.SendBuffer = 400 * time.Millisecond }, 1e6); r >= 1e6 {
		t.Errorf("send buffer at 400 ms: rate %v", r)
	}
	// With no cap the uploads run unlimited once all is quiet.
	y = newYielder(0, now)
	link = LinkSample{Output: "primary", RTT: 20 * time.Millisecond}
	step(time.Second, nil, 5e6)
	if r := step(yieldTick, func(l *LinkSample) { l.RTT = 200 * time.Millisecond }, 5e6); r > 2.6e6 {
		t.Errorf("no cap, tight: rate %v, want half of what went", r)
	}
	if r := step(25*time.Second, func(l *LinkSample) { l.RTT = 20 * time.Millisecond }, 1e6); !math.IsInf(r, 1) {
		t.Errorf("no cap, quiet for 25 s: rate %v, want unlimited", r)
	}
}

// The running uploader reads its Uplink and shows the yield in Backlog.
func TestUploaderYieldsInBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := &stepUplink{s: []LinkSample{{Output: "primary", RTT: 20 * time.Millisecond, SentPackets: 1}}}
		u, err := New(testUploadConfig(2000), Deps{Dir: t.TempDir(), Device: "room1", Uplink: link})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- u.Run(ctx) }()
		time.Sleep(time.Second)
		if b := u.Backlog(); b.RateKbps != 2000 || b.Yielding {
			t.Errorf("quiet: %+v", b)
		}
		link.set(LinkSample{Output: "primary", RTT: 300 * time.Millisecond, SentPackets: 1000, LostPackets: 100})
		time.Sleep(time.Second)
		if b := u.Backlog(); b.RateKbps != 0 || !b.Yielding {
			t.Errorf("tight: %+v", b)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
