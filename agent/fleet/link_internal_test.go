package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
)

// doneToken is an acknowledgement that is already complete.
type doneToken struct {
	ch  chan struct{}
	err error
}

func (t doneToken) Done() <-chan struct{} { return t.ch }
func (t doneToken) Error() error          { return t.err }

func completed(err error) token {
	ch := make(chan struct{})
	close(ch)
	return doneToken{ch: ch, err: err}
}

type pub struct {
	topic    string
	payload  []byte
	qos      byte
	retained bool
	at       time.Time
}

// fakeConn records what the link publishes; with dropOnBirth it behaves
// like mochi refusing a publish: it closes the connection.
type fakeConn struct {
	b           *fakeBroker
	done        chan struct{}
	once        sync.Once
	dropOnBirth bool
}

func (c *fakeConn) Publish(topic string, qos byte, retained bool, payload []byte) token {
	if c.dropOnBirth && strings.HasSuffix(topic, "/status") {
		c.Close(0)
		return completed(ErrConnectionLost)
	}
	select {
	case <-c.done:
		return completed(ErrConnectionLost)
	default:
	}
	c.b.mu.Lock()
	c.b.pubs = append(c.b.pubs, pub{topic, append([]byte(nil), payload...), qos, retained, time.Now()})
	c.b.mu.Unlock()
	return completed(nil)
}

func (c *fakeConn) Subscribe(context.Context, map[string]byte) error { return nil }
func (c *fakeConn) Done() <-chan struct{}                            { return c.done }
func (c *fakeConn) Err() error                                       { return ErrConnectionLost }
func (c *fakeConn) Close(time.Duration)                              { c.once.Do(func() { close(c.done) }) }

// fakeBroker hands out fakeConns; down makes dials fail.
type fakeBroker struct {
	mu          sync.Mutex
	down        bool
	dropOnBirth bool
	dials       []time.Time
	pubs        []pub
	conn        *fakeConn
}

func (b *fakeBroker) dial(ctx context.Context, p dialParams) (conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dials = append(b.dials, time.Now())
	if b.down {
		return nil, errors.New("connection refused")
	}
	b.conn = &fakeConn{b: b, done: make(chan struct{}), dropOnBirth: b.dropOnBirth}
	return b.conn, nil
}

func (b *fakeBroker) set(f func(b *fakeBroker)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *fakeBroker) published(suffix string) []pub {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []pub
	for _, p := range b.pubs {
		if strings.HasSuffix(p.topic, "/"+suffix) {
			out = append(out, p)
		}
	}
	return out
}

// stubBox is a minimal Box for loop tests.
type stubBox struct {
	mu      sync.Mutex
	state   wire.State
	changed chan struct{}
	events  chan wire.Event
}

func newStubBox() *stubBox {
	return &stubBox{state: wire.State{Mode: wire.ModeStreaming, Outputs: map[string]string{"a": wire.OutputUp}},
		changed: make(chan struct{}, 1), events: make(chan wire.Event, 8)}
}

func (b *stubBox) Meta() wire.Meta { return wire.Meta{Agent: "t"} }
func (b *stubBox) State() wire.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.state
	s.Outputs = map[string]string{"a": b.state.Outputs["a"]}
	return s
}
func (b *stubBox) Telemetry() wire.Telemetry     { return wire.Telemetry{UptimeS: 1} }
func (b *stubBox) StateChanged() <-chan struct{} { return b.changed }
func (b *stubBox) Events() <-chan wire.Event     { return b.events }
func (b *stubBox) setOutput(v string) {
	b.mu.Lock()
	b.state.Outputs["a"] = v
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}
func (b *stubBox) Command(context.Context, string, wire.Args) (Result, error) { return Result{}, nil }
func (b *stubBox) ApplyConfig(context.Context, int64, json.RawMessage) (string, []config.FieldError) {
	return "", nil
}

func newTestLink(t *testing.T, fb *fakeBroker, box Box) *Link {
	t.Helper()
	cfg := config.Default().Fleet
	cfg.Broker = "mqtt://127.0.0.1:1883"
	l, err := New(cfg, "box-1", box, slog.New(slog.DiscardHandler), WithStateDir(t.TempDir()), withDialer(fb.dial))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReconnectJitter: with the broker down, attempts come at jittered,
// growing intervals within [1 s, min(60 s, 2^(n+1) s)], never faster.
func TestReconnectJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fakeBroker{down: true}
		l := newTestLink(t, fb, newStubBox())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(30 * time.Minute)
		cancel()
		<-done
		fb.mu.Lock()
		dials := fb.dials
		fb.mu.Unlock()
		if len(dials) < 30 || len(dials) > 1800 {
			t.Fatalf("%d attempts in 30 min", len(dials))
		}
		distinct := map[time.Duration]bool{}
		for i := 1; i < len(dials); i++ {
			gap := dials[i].Sub(dials[i-1])
			hi := min(reconnectMax, reconnectMin<<min(i, 10))
			if gap < reconnectMin || gap > hi {
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
		fb := &fakeBroker{dropOnBirth: true}
		l := newTestLink(t, fb, newStubBox())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		fb.mu.Lock()
		n := len(fb.dials)
		fb.mu.Unlock()
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
		fb := &fakeBroker{}
		box := newStubBox()
		l := newTestLink(t, fb, box)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(100 * time.Millisecond)
		for i := range 50 {
			box.setOutput(fmt.Sprint("v", i))
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		cancel()
		<-done
		states := fb.published("state")
		if len(states) < 5 || len(states) > 7 {
			t.Errorf("%d states for 5 s of changes every 100 ms, want ~6", len(states))
		}
		for i := 1; i < len(states); i++ {
			if gap := states[i].at.Sub(states[i-1].at); gap < time.Second {
				t.Errorf("states %d,%d %s apart (%s)", i-1, i, gap, states[i].payload)
			}
		}
		var last wire.State
		if err := json.Unmarshal(states[len(states)-1].payload, &last); err != nil || last.Outputs["a"] != "v49" {
			t.Errorf("last state %s", states[len(states)-1].payload)
		}
		var prev wire.Header
		for _, s := range states {
			var h wire.Header
			_ = json.Unmarshal(s.payload, &h)
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
		fb := &fakeBroker{}
		box := newStubBox()
		l := newTestLink(t, fb, box)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		time.Sleep(25 * time.Second) // 2 telemetry samples
		if n := len(fb.published("telemetry")); n != 2 {
			t.Errorf("%d telemetry samples in 25 s at 10 s", n)
		}
		fb.set(func(b *fakeBroker) { b.down = true; b.conn.Close(0) })
		synctest.Wait()
		for i := range 5 {
			box.events <- wire.Event{Type: wire.EvtOutputDown, Msg: fmt.Sprint("e", i)}
		}
		time.Sleep(90 * time.Second)
		if n := len(fb.published("telemetry")); n != 2 {
			t.Errorf("telemetry sent while offline: %d", n)
		}
		fb.set(func(b *fakeBroker) { b.down = false })
		time.Sleep(70 * time.Second) // the next attempt is within 60 s
		cancel()
		<-done
		evs := fb.published("evt/output_down")
		if len(evs) != 5 {
			t.Fatalf("%d queued events delivered, want 5", len(evs))
		}
		for i, p := range evs {
			var e wire.Event
			_ = json.Unmarshal(p.payload, &e)
			if e.Msg != fmt.Sprint("e", i) || e.Sess != 2 {
				t.Errorf("event %d = %+v", i, e)
			}
		}
		if n := len(fb.published("telemetry")); n < 3 {
			t.Errorf("telemetry did not resume: %d", n)
		}
	})
}

func TestOutboxBounds(t *testing.T) {
	var o outbox
	for i := range 300 {
		o.push(&outMsg{suffix: "evt/x", body: &wire.Event{Msg: fmt.Sprint(i)}})
	}
	for range 3 {
		o.push(&outMsg{suffix: wire.TopicState, latest: true, body: &wire.State{}})
	}
	if o.len() != maxQueuedEvents+1 || o.dropped != 300-maxQueuedEvents {
		t.Fatalf("len %d dropped %d", o.len(), o.dropped)
	}
	if first := o.pop(); first.body.(*wire.Event).Msg != fmt.Sprint(300-maxQueuedEvents) {
		t.Errorf("oldest kept = %s", first.body.(*wire.Event).Msg)
	}
	// A requeued state is dropped when a newer one waits.
	o.requeue(&outMsg{suffix: wire.TopicState, latest: true, body: &wire.State{Mode: "old"}})
	n := 0
	for m := o.pop(); m != nil; m = o.pop() {
		if m.suffix == wire.TopicState {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d states queued, want 1", n)
	}
}

func TestDedupBounds(t *testing.T) {
	d := newDedup()
	for i := range maxRememberedIDs + 10 {
		if d.seen("ping", fmt.Sprint(i)) != nil {
			t.Fatal("new id reported as seen")
		}
		d.done("ping", fmt.Sprint(i), wire.CmdResponse{Status: wire.ResOK})
	}
	if d.order.Len() != maxRememberedIDs {
		t.Errorf("remembers %d ids", d.order.Len())
	}
	if d.seen("ping", "0") != nil {
		t.Error("oldest id still remembered")
	}
	if r := d.seen("ping", fmt.Sprint(maxRememberedIDs+9)); r == nil || r.pending || r.res.Status != wire.ResOK {
		t.Errorf("recent id: %+v", r)
	}
	big := wire.CmdResponse{Status: wire.ResOK, Result: make([]byte, 12<<10)}
	for i := range 200 {
		id := fmt.Sprint("s", i)
		d.seen("snapshot", id)
		d.done("snapshot", id, big)
	}
	if d.bytes > maxRememberedBytes {
		t.Errorf("%d bytes remembered", d.bytes)
	}
}

func TestCheckOutgoing(t *testing.T) {
	tp := wire.Topics{Prefix: "capbox", ID: "box-1"}
	ok := []string{"status", "meta", "state", "telemetry", "evt/signal_lost", "cmd/res/ping", "config/reported", "ota/status"}
	for _, s := range ok {
		if err := tp.CheckOutgoing(tp.T(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	bad := []string{"capbox/box-2/status", "capbox/box-1/cmd/req/ping", "capbox/box-1/config/desired", "capbox/box-1/ota/job",
		"capbox/box-1/evt/#", "capbox/box-1/evt/a/b", "capbox/box-1/#", "other/box-1/status", "capbox/box-1", "capbox/box-1/evt/"}
	for _, s := range bad {
		if err := tp.CheckOutgoing(s); !errors.Is(err, wire.ErrForeignTopic) {
			t.Errorf("%s allowed", s)
		}
	}
}
