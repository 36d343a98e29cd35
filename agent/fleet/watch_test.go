package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"capbox/agent/fleet"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
)

// viewBox is a simulated box that also offers previews and meters.
type viewBox struct {
	*fleettest.Box
	previews atomic.Int64
	slow     atomic.Bool
	level    atomic.Int64 // the meter's reading counter
}

func (b *viewBox) Preview(ctx context.Context) ([]byte, error) {
	if b.slow.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b.previews.Add(1)
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 320, 180)), nil)
	return buf.Bytes(), nil
}

func (b *viewBox) Meter() ([]wire.MeterChannel, time.Time, bool) {
	// A new reading every call, as a level element measuring often would.
	n := b.level.Add(1)
	return []wire.MeterChannel{{PeakDBFS: -20 - float64(n%3), RMSDBFS: -23}}, time.Now(), true
}

func startViewLink(t *testing.T, e *env, id string, box fleet.Box) {
	t.Helper()
	l, err := fleet.New(e.fleetCfg(id), id, box, slog.New(slog.NewTextHandler(io.Discard, nil)), fleet.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func watchBody(id, what string, interval, expiry time.Duration) string {
	b, _ := json.Marshal(wire.CmdRequest{V: 1, ID: id, Args: wire.WatchArgs(what, interval, expiry)})
	return string(b)
}

// TestWatchLeases: a box publishes previews and meters exactly while a
// lease holds, answers watch at once even while a preview is slow, and a
// box without previews says so.
func TestWatchLeases(t *testing.T) {
	e := startMochi(t)
	o := e.observe()
	box := &viewBox{Box: newBox()}
	startViewLink(t, e, "room-10", box)
	m := o.waitFor(0, 10*time.Second, "meta", topicIs("capbox/room-10/meta"))
	var meta wire.Meta
	if json.Unmarshal(m.payload, &meta) != nil || !slices.Contains(meta.Commands, wire.CmdWatch) {
		t.Fatalf("meta does not list watch: %s", m.payload)
	}
	time.Sleep(time.Second)
	count := func(topic string, from int) int {
		n := 0
		for _, m := range o.all()[from:] {
			if m.topic == topic {
				n++
			}
		}
		return n
	}
	if count("capbox/room-10/preview", 0)+count("capbox/room-10/meter", 0) != 0 {
		t.Fatal("previews or meters without a lease")
	}

	from := o.mark()
	res := o.command("room-10", wire.CmdWatch, watchBody("w-1", wire.WatchPreview, time.Second, 3*time.Second))
	var got wire.WatchResult
	if res.Status != wire.ResOK || json.Unmarshal(res.Result, &got) != nil || got.IntervalMS != 1000 || got.ExpiresInMS != 3000 {
		t.Fatalf("watch answer %+v %s", res, res.Result)
	}
	o.command("room-10", wire.CmdWatch, watchBody("w-2", wire.WatchMeter, 100*time.Millisecond, 3*time.Second))
	p := o.waitFor(from, 5*time.Second, "a preview", topicIs("capbox/room-10/preview"))
	if err := wire.CheckPreview(p.payload); err != nil || p.retained {
		t.Fatalf("preview: %v retained=%v", err, p.retained)
	}
	mt := o.waitFor(from, 5*time.Second, "a meter", topicIs("capbox/room-10/meter"))
	if r, err := wire.DecodeMeter(mt.payload); err != nil || r.Sess < 1 || r.Channels[0].RMSDBFS != -23 {
		t.Fatalf("meter %s: %v", mt.payload, err)
	}
	time.Sleep(2 * time.Second)
	previews, meters := count("capbox/room-10/preview", from), count("capbox/room-10/meter", from)
	if previews < 2 || previews > 5 || meters < 10 {
		t.Errorf("in ~2.5 s: %d previews (want about 3, one a second), %d meters (want about 25)", previews, meters)
	}
	// No renewal: both stop within the lease (3 s from the request).
	time.Sleep(1500 * time.Millisecond)
	after := o.mark()
	time.Sleep(1500 * time.Millisecond)
	if n := count("capbox/room-10/preview", after) + count("capbox/room-10/meter", after); n != 0 {
		t.Errorf("%d previews and meters after the lease lapsed", n)
	}

	// A preview that hangs holds nothing else up: ping is answered.
	box.slow.Store(true)
	o.command("room-10", wire.CmdWatch, watchBody("w-3", wire.WatchPreview, time.Second, 10*time.Second))
	t0 := time.Now()
	if r := o.command("room-10", wire.CmdPing, `{"v":1,"id":"p-1"}`); r.Status != wire.ResOK || time.Since(t0) > 3*time.Second {
		t.Errorf("ping while a preview hangs: %+v after %s", r, time.Since(t0))
	}
	if r := o.command("room-10", wire.CmdWatch, `{"v":1,"id":"w-4","args":{"what":"preview","interval":"100ms","expiry":"15s"}}`); r.Code != wire.CodeBadArgs {
		t.Errorf("a preview every 100 ms: %+v", r)
	}
	// The same id twice is two renewals, not a duplicate.
	if r := o.command("room-10", wire.CmdWatch, watchBody("w-3", wire.WatchPreview, time.Second, 10*time.Second)); r.Status != wire.ResOK {
		t.Errorf("a renewal with the same id: %+v", r)
	}

	// A box without previews answers unsupported and does not list watch.
	startViewLink(t, e, "room-11", newBox())
	m = o.waitFor(0, 10*time.Second, "meta of room-11", topicIs("capbox/room-11/meta"))
	if json.Unmarshal(m.payload, &meta) != nil || slices.Contains(meta.Commands, wire.CmdWatch) {
		t.Errorf("room-11 lists watch: %s", m.payload)
	}
	if r := o.command("room-11", wire.CmdWatch, watchBody("w-5", wire.WatchPreview, time.Second, 10*time.Second)); r.Status != wire.ResUnsupported {
		t.Errorf("watch on a box without previews: %+v", r)
	}
}
