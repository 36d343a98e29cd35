package fleet

import (
	"errors"
	"fmt"
	"testing"

	"capbox/agent/fleet/wire"
)

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
