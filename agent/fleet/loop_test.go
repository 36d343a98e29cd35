package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
)

// The link's loop on testing/synctest's clock, against a broker the test
// breaks at will (fleet.FakeBroker).

func newTestLink(t *testing.T, fb *fleet.FakeBroker, box fleet.Box) *fleet.Link {
	t.Helper()
	cfg := config.Default().Fleet
	cfg.Broker = "mqtt://127.0.0.1:1883"
	l, err := fleet.New(cfg, "box-1", box, slog.New(slog.DiscardHandler), fleet.WithStateDir(t.TempDir()), fleet.WithBroker(fb))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReconnectJitter: with the broker down, attempts come at jittered,
// growing intervals within [1 s, min(60 s, 2^(n+1) s)], never faster.
func TestReconnectJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fleet.FakeBroker{}
		fb.SetDown(true)
		l := newTestLink(t, fb, fleettest.New())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(30 * time.Minute)
		cancel()
		<-done
		dials := fb.Dials()
		if len(dials) < 30 || len(dials) > 1800 {
			t.Fatalf("%d attempts in 30 min", len(dials))
		}
		distinct := map[time.Duration]bool{}
		for i := 1; i < len(dials); i++ {
			gap := dials[i].Sub(dials[i-1])
			hi := min(fleet.ReconnectMax, fleet.ReconnectMin<<min(i, 10))
			if gap < fleet.ReconnectMin || gap > hi {
				t.Errorf("gap %d = %s, want within [1s, %s]", i, gap, hi)
			}
			distinct[gap] = true
		}
		if len(distinct) < len(dials)/2 {
			t.Errorf("only %d distinct gaps in %d attempts: no jitter", len(distinct), len(dials))
		}
	})
}

// TestRefusedBirthBacksOff: a broker that drops the box at every birth
// (mochi on an ACL refusal) sees growing delays, not a loop.
func TestRefusedBirthBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fleet.FakeBroker{}
		fb.SetDropOnBirth(true)
		l := newTestLink(t, fb, fleettest.New())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		n := len(fb.Dials())
		// Mean delay reaches ~30 s after 6 attempts: at most ~30 in 10 min.
		if n < 5 || n > 40 {
			t.Errorf("%d connections in 10 min against a refusing broker", n)
		}
	})
}

// TestStateRateLimit: state follows changes at most once a second, and the
// last change always goes out.
func TestStateRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fleet.FakeBroker{}
		box := fleettest.New()
		l := newTestLink(t, fb, box)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(100 * time.Millisecond)
		for i := range 50 {
			box.SetState(func(s *wire.State) { s.Outputs["a"] = fmt.Sprint("v", i) })
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		cancel()
		<-done
		states := fb.Published("state")
		if len(states) < 5 || len(states) > 7 {
			t.Errorf("%d states for 5 s of changes every 100 ms, want ~6", len(states))
		}
		for i := 1; i < len(states); i++ {
			if gap := states[i].At.Sub(states[i-1].At); gap < time.Second {
				t.Errorf("states %d,%d %s apart (%s)", i-1, i, gap, states[i].Payload)
			}
		}
		var last wire.State
		if err := json.Unmarshal(states[len(states)-1].Payload, &last); err != nil || last.Outputs["a"] != "v49" {
			t.Errorf("last state %s", states[len(states)-1].Payload)
		}
		var prev wire.Header
		for _, s := range states {
			var h wire.Header
			_ = json.Unmarshal(s.Payload, &h)
			if !prev.Before(h) {
				t.Errorf("state %+v not after %+v", h, prev)
			}
			prev = h
		}
	})
}

// TestOfflineQueue: while the broker is away telemetry is not kept, events
// are, and they go out on reconnect in order under the new session.
func TestOfflineQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fleet.FakeBroker{}
		box := fleettest.New()
		l := newTestLink(t, fb, box)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(25 * time.Second) // 2 telemetry samples
		if n := len(fb.Published("telemetry")); n != 2 {
			t.Errorf("%d telemetry samples in 25 s at 10 s", n)
		}
		fb.SetDown(true)
		fb.Cut()
		synctest.Wait()
		for i := range 5 {
			box.Emit(wire.Event{Type: wire.EvtOutputDown, Msg: fmt.Sprint("e", i)})
		}
		time.Sleep(90 * time.Second)
		if n := len(fb.Published("telemetry")); n != 2 {
			t.Errorf("telemetry sent while offline: %d", n)
		}
		fb.SetDown(false)
		time.Sleep(70 * time.Second) // the next attempt is within 60 s
		cancel()
		<-done
		evs := fb.Published("evt/output_down")
		if len(evs) != 5 {
			t.Fatalf("%d queued events delivered, want 5", len(evs))
		}
		for i, p := range evs {
			var e wire.Event
			_ = json.Unmarshal(p.Payload, &e)
			if e.Msg != fmt.Sprint("e", i) || e.Sess != 2 {
				t.Errorf("event %d = %+v", i, e)
			}
		}
		if n := len(fb.Published("telemetry")); n < 3 {
			t.Errorf("telemetry did not resume: %d", n)
		}
	})
}

// heldBox is fleettest's box whose Meta, which the loop calls, can be
// held: it keeps the loop busy for as long as the test wants.
type heldBox struct {
	*fleettest.Box
	hold    atomic.Bool
	release chan struct{}
}

func (b *heldBox) Meta() wire.Meta {
	if b.hold.Load() {
		<-b.release
	}
	return b.Box.Meta()
}

// TestInboundBounded: paho's callback never waits on a busy loop; while
// the loop is held, 64 requests wait and the rest are dropped, and every
// one that waited is answered once the loop is free.
func TestInboundBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fleet.FakeBroker{}
		box := &heldBox{Box: fleettest.New(), release: make(chan struct{})}
		l := newTestLink(t, fb, box)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		synctest.Wait() // connected and idle

		box.hold.Store(true)
		fb.Deliver("capbox/box-1/cmd/req/restart_output", []byte(`{"v":1,"id":"held","args":{"name":"primary"}}`))
		synctest.Wait() // the loop is inside Meta
		for i := range 100 {
			fb.Deliver("capbox/box-1/cmd/req/ping", fmt.Appendf(nil, `{"v":1,"id":"p-%d"}`, i))
		}
		box.hold.Store(false)
		close(box.release)
		time.Sleep(time.Second)
		cancel()
		<-done

		pongs := map[string]bool{}
		for _, p := range fb.Published("cmd/res/ping") {
			var r wire.CmdResponse
			if err := json.Unmarshal(p.Payload, &r); err != nil || r.Status != wire.ResOK {
				t.Errorf("ping answer %s", p.Payload)
			}
			pongs[r.ID] = true
		}
		if len(pongs) != 64 {
			t.Errorf("%d pings answered, want the 64 that fit the inbound queue", len(pongs))
		}
		for i := range 64 {
			if !pongs[fmt.Sprint("p-", i)] {
				t.Errorf("p-%d (waiting in the queue) was not answered", i)
			}
		}
		if n := len(fb.Published("cmd/res/restart_output")); n != 1 {
			t.Errorf("the held request got %d answers, want 1", n)
		}
	})
}
