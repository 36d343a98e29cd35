package main

import (
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/fleet/wire"
)

func doc(t *testing.T, topic string, v any, retained bool) msg {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return msg{topic: topic, payload: b, retained: retained, at: time.Now()}
}

// TestOrderBySessSeq: the view keeps the newest document by (sess, seq),
// whatever the arrival order; a will ranks last in its session.
func TestOrderBySessSeq(t *testing.T) {
	v := newFleetView("capbox")
	st := func(sess, seq int64, mode string) msg {
		return doc(t, "capbox/b1/state", wire.State{Header: wire.Header{V: 1, Sess: sess, Seq: seq}, Mode: mode}, false)
	}
	for _, m := range []msg{st(3, 5, "new"), st(3, 4, "older"), st(2, 99, "old session"), st(3, 5, "dup")} {
		v.apply(m)
	}
	if got := v.boxes["b1"].State.Mode; got != "new" {
		t.Errorf("state = %q", got)
	}
	v.apply(st(4, 1, "next session"))
	if got := v.boxes["b1"].State.Mode; got != "next session" {
		t.Errorf("state = %q", got)
	}

	status := func(s wire.Status) msg { s.V = 1; return doc(t, "capbox/b1/status", s, false) }
	v.apply(status(wire.Status{Online: true, Sess: 4, Seq: 1}))
	v.apply(status(wire.Status{Online: false, State: wire.StatusLost, Sess: 4})) // the will
	v.apply(status(wire.Status{Online: true, Sess: 4, Seq: 30}))                 // a birth of that session, late
	if v.boxes["b1"].online() {
		t.Error("a late birth of the same session overrode its will")
	}
	v.apply(status(wire.Status{Online: true, Sess: 5, Seq: 1}))
	v.apply(status(wire.Status{Online: false, State: wire.StatusLost, Sess: 3})) // a stale will
	if !v.boxes["b1"].online() || v.boxes["b1"].Status.Sess != 5 {
		t.Errorf("status = %+v", v.boxes["b1"].Status)
	}
	// Junk and other prefixes change nothing.
	for _, m := range []msg{{topic: "capbox/b1/state", payload: []byte("{")}, {topic: "other/b1/state", payload: []byte("{}")},
		{topic: "capbox/B1/state", payload: []byte(`{"v":1}`)}, {topic: "capbox/b1/state", payload: []byte(`{"v":2,"sess":9,"seq":9}`)}} {
		if _, _, changed := v.apply(m); changed {
			t.Errorf("%s %s changed the view", m.topic, m.payload)
		}
	}
}

// TestStaleAfterThreeIntervals runs on a fake clock: a box is stale once
// its telemetry is three intervals old, and fresh again with the next one.
func TestStaleAfterThreeIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newFleetView("capbox")
		v.apply(doc(t, "capbox/b1/status", wire.Status{V: 1, Online: true, State: "ready", Sess: 1, Seq: 1, TS: time.Now().UnixMilli()}, false))
		tel := func(seq int64) msg {
			return doc(t, "capbox/b1/telemetry", wire.Telemetry{Header: wire.Header{V: 1, Sess: 1, Seq: seq, TS: time.Now().UnixMilli()}, IntervalS: 10}, false)
		}
		v.apply(tel(2))
		b := v.boxes["b1"]
		time.Sleep(29 * time.Second)
		if b.stale(time.Now()) {
			t.Error("stale after 29 s at a 10 s interval")
		}
		time.Sleep(2 * time.Second)
		if !b.stale(time.Now()) {
			t.Error("not stale after 31 s at a 10 s interval")
		}
		v.apply(tel(3))
		if b.stale(time.Now()) {
			t.Error("still stale after fresh telemetry")
		}
		// Offline boxes are never "stale": they are offline.
		v.apply(doc(t, "capbox/b1/status", wire.Status{V: 1, Online: false, State: "lost", Sess: 1}, false))
		time.Sleep(time.Hour)
		if b.stale(time.Now()) {
			t.Error("an offline box is stale")
		}
		// A retained sample is judged by its own timestamp.
		v2 := newFleetView("capbox")
		v2.apply(doc(t, "capbox/b2/status", wire.Status{V: 1, Online: true, Sess: 1, Seq: 1}, true))
		v2.apply(doc(t, "capbox/b2/telemetry", wire.Telemetry{Header: wire.Header{V: 1, Sess: 1, Seq: 2, TS: time.Now().Add(-time.Minute).UnixMilli()}, IntervalS: 10}, true))
		if !v2.boxes["b2"].stale(time.Now()) {
			t.Error("a minute-old retained sample is not stale")
		}
	})
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{3 * time.Second: "3s ago", 5 * time.Minute: "5m ago", 3 * time.Hour: "3h ago",
		72 * time.Hour: "3d ago", -time.Minute: "clock ahead", -time.Second: "0s ago"} {
		if got := age(d); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
}

// FuzzViewApply: whatever a box (or anyone with write access) publishes,
// the fleet view neither panics nor lets an older document win.
func FuzzViewApply(f *testing.F) {
	f.Add("state", []byte(`{"v":1,"sess":1,"seq":2,"mode":"streaming","outputs":{"a":"up"}}`))
	f.Add("status", []byte(`{"v":1,"online":false,"state":"lost","sess":3}`))
	f.Add("telemetry", []byte(`{"v":1,"sess":1,"seq":3,"sys":{"temps_c":{"x":1e308}},"interval_s":-5}`))
	f.Add("evt/x", []byte(`{"v":1,"ts":-1}`))
	f.Fuzz(func(t *testing.T, suffix string, payload []byte) {
		v := newFleetView("capbox")
		v.apply(msg{topic: "capbox/b1/state", payload: []byte(`{"v":1,"sess":5,"seq":5,"mode":"keep"}`)})
		v.apply(msg{topic: "capbox/b1/" + suffix, payload: payload, at: time.Now()})
		b := v.boxes["b1"]
		if b.State.Sess < 5 || (b.State.Sess == 5 && b.State.Seq < 5) {
			t.Fatalf("older state won: %+v", b.State.Header)
		}
		now := time.Now()
		_ = b.stale(now)
		_ = b.row(now).cells(now)
		_ = describe(b, suffix, payload)
	})
}
