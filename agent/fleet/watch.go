package fleet

import (
	"context"
	"encoding/json"
	"time"

	"capbox/agent/fleet/wire"
)

// Viewable is what a box offers to watch leases (PROTOCOL.md "Version 1.1:
// previews and meters on demand"). A Box that implements it answers watch
// and lists it in meta; one that does not answers "unsupported".
type Viewable interface {
	// Preview is a JPEG of the picture on air, at most wire.MaxPreviewJPEG
	// bytes and wire.MaxPreviewSide pixels a side, made without disturbing
	// the running pipeline. It runs off the link's loop and must return
	// when ctx is done.
	Preview(ctx context.Context) ([]byte, error)
	// Meter is the audio level per channel as last measured, and the
	// time of that measure; false without audio. It must return quickly.
	Meter() ([]wire.MeterChannel, time.Time, bool)
}

// previewTimeout bounds one preview's making; a preview that takes longer
// is skipped, the next one is tried at the next interval.
const previewTimeout = 5 * time.Second

// watching is the link's side of the leases: what is held, when each kind
// is due, and whether a preview is being made.
type watching struct {
	leases    wire.Leases
	next      map[string]time.Time
	meterAt   time.Time // the level last sent
	timer     *time.Timer
	previewOn bool
}

// onWatch takes or renews a lease and answers at once. A repeated watch is
// a renewal like any other, so it skips the duplicate memory: a viewer
// renewing every few seconds would otherwise push the answers of real
// commands out of it.
func (l *Link) onWatch(ctx context.Context, req wire.CmdRequest) {
	answer := func(res wire.CmdResponse) {
		res.ID = req.ID
		l.respond(wire.CmdWatch, res)
	}
	if req.Exp > 0 && time.Now().UnixMilli() > req.Exp {
		answer(wire.CmdResponse{Status: wire.ResExpired, Code: wire.CodeExpired, Msg: "request expired before it arrived"})
		return
	}
	if _, ok := l.box.(Viewable); !ok {
		answer(wire.CmdResponse{Status: wire.ResUnsupported, Code: wire.CodeUnsupported, Msg: "this box has no previews or meters"})
		return
	}
	r, err := wire.DecodeWatch(req.Args)
	if err != nil {
		answer(wire.CmdResponse{Status: wire.ResError, Code: wire.CodeBadArgs, Msg: err.Error()})
		return
	}
	now := time.Now()
	if l.watch.next == nil {
		l.watch.next = map[string]time.Time{}
	}
	if _, _, held := l.watch.leases.Active(r.What, now); !held {
		l.watch.next[r.What] = now // the first one right away
		l.log.Info("watched", "what", r.What, "interval", r.Interval, "expiry", r.Expiry)
	}
	res, _ := json.Marshal(l.watch.leases.Renew(r, now))
	answer(wire.CmdResponse{Status: wire.ResOK, Result: res})
	l.publishWatched(ctx, now)
}

// publishWatched sends what the leases ask for now and sets the timer for
// the next one. With no lease left the timer stays stopped: nothing more
// is sent until a viewer asks again.
func (l *Link) publishWatched(ctx context.Context, now time.Time) {
	v, ok := l.box.(Viewable)
	if !ok {
		return
	}
	var next time.Time
	for _, what := range l.watch.leases.Kinds(now) {
		interval, _, _ := l.watch.leases.Active(what, now)
		if !now.Before(l.watch.next[what]) {
			l.watch.next[what] = now.Add(interval)
			switch what {
			case wire.WatchMeter:
				l.sendMeter(v)
			case wire.WatchPreview:
				l.makePreview(ctx, v)
			}
		}
		if at := l.watch.next[what]; next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !next.IsZero() {
		l.watch.timer.Reset(time.Until(next))
	}
}

// sendMeter publishes the newest level, once: a level the box has not
// measured again since is not sent again.
func (l *Link) sendMeter(v Viewable) {
	ch, at, ok := v.Meter()
	if !ok || len(ch) == 0 || !at.After(l.watch.meterAt) {
		return
	}
	l.watch.meterAt = at
	if len(ch) > wire.MaxMeterChannels {
		ch = ch[:wire.MaxMeterChannels]
	}
	m := &wire.Meter{Channels: make([]wire.MeterChannel, len(ch))}
	for i, c := range ch {
		m.Channels[i] = wire.MeterChannel{PeakDBFS: wire.ClampDBFS(c.PeakDBFS), RMSDBFS: wire.ClampDBFS(c.RMSDBFS)}
	}
	// QoS 0, never queued: a reading taken offline is worth nothing later.
	if err := l.sendNow(&outMsg{suffix: wire.TopicMeter, body: m}); err != nil {
		l.log.Warn("meter not sent", "err", err)
	}
}

// makePreview has the box make a preview off the loop; one at a time, so
// a slow decoder skips previews rather than piling them up.
func (l *Link) makePreview(ctx context.Context, v Viewable) {
	if l.watch.previewOn || l.mqtt.conn == nil {
		return
	}
	l.watch.previewOn = true
	l.mail.workers.Add(1)
	go func() {
		defer l.mail.workers.Done()
		pctx, cancel := context.WithTimeout(ctx, previewTimeout)
		jpeg, err := v.Preview(pctx)
		cancel()
		l.mail.work.Post(func() {
			l.watch.previewOn = false
			_, _, held := l.watch.leases.Active(wire.WatchPreview, time.Now())
			switch {
			case !held:
				// Made too slowly: the lease lapsed meanwhile.
			case err != nil:
				l.log.Debug("no preview", "err", err)
			case wire.CheckPreview(jpeg) != nil:
				l.log.Warn("preview not sent", "err", wire.CheckPreview(jpeg))
			default:
				l.sendPreview(jpeg)
			}
		})
	}()
}

// sendPreview publishes the JPEG itself (the one payload that is not
// JSON), QoS 0, not retained; it has no header and carries nothing of the
// config, so it is not searched for secrets.
func (l *Link) sendPreview(jpeg []byte) {
	if l.mqtt.conn == nil {
		return
	}
	topic := l.topics.T(wire.TopicPreview)
	if err := l.topics.CheckOutgoing(topic); err != nil {
		l.log.Warn("preview not sent", "err", err)
		return
	}
	l.mqtt.conn.Publish(topic, 0, false, jpeg)
}
