package fleet

import (
	"bytes"
	"encoding/json"
	"time"

	"capbox/agent/fleet/wire"
)

// stateMinInterval: state is sent on change, at most once a second.
const stateMinInterval = time.Second

// stateLimit is the rate limit of state messages.
type stateLimit struct {
	last   []byte // the last state queued, encoded
	lastAt time.Time
	timer  *time.Timer // sends the last change once the interval is over
}

// publishState queues the state when it changed, at most once a second
// (force: on connect and rebirth). A change of the status-level summary
// republishes the birth.
func (l *Link) publishState(force bool) {
	st := l.box.State()
	st.Header = wire.Header{}
	if st.Mood == "" {
		st.Mood = wire.WorstMood(st.Moods)
	}
	body, err := json.Marshal(st)
	if err != nil {
		l.log.Error("state not encodable", "err", err)
		return
	}
	now := time.Now()
	if !force {
		if bytes.Equal(body, l.state.last) {
			return
		}
		if wait := stateMinInterval - now.Sub(l.state.lastAt); wait > 0 {
			l.state.timer.Reset(wait)
			return
		}
	}
	l.state.last, l.state.lastAt = body, now
	l.out.pushRetained(wire.TopicState, &st)
	if s := statusStateOf(st); l.mqtt.conn != nil && s != l.mqtt.birthState {
		l.queueBirth(l.meta())
	}
}

func (l *Link) publishTelemetry() {
	if l.mqtt.conn == nil {
		return
	}
	t := l.box.Telemetry()
	t.Header = wire.Header{}
	t.IntervalS = int(l.interval / time.Second)
	// Retained so that `capboxctl ls` shows temperature and last-seen at
	// once instead of waiting a whole interval; QoS 0, never queued.
	if err := l.sendNow(&outMsg{suffix: wire.TopicTelemetry, qos: 0, retained: true, body: &t}); err != nil {
		l.log.Warn("telemetry not sent", "err", err)
	}
}
