package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
)

// defaultInterval is assumed when a box has not said its telemetry interval.
const defaultInterval = 10 * time.Second

// staleIntervals: a box that says it is online but sent no telemetry for
// this many intervals is marked stale.
const staleIntervals = 3

// boxView is what the fleet side knows of one box: the newest of each
// document by (sess, seq), never by arrival.
type boxView struct {
	ID        string
	Status    *wire.Status
	Meta      *wire.Meta
	State     *wire.State
	Telemetry *wire.Telemetry
	Reported  *wire.ConfigReported
	// telAt is when the newest telemetry was taken: arrival time for live
	// messages, the box's ts for retained ones.
	telAt time.Time
	// lastTS is the newest box timestamp of any document.
	lastTS int64
	// staleSaid: watch printed the stale line already.
	staleSaid bool
}

type fleetView struct {
	prefix string
	boxes  map[string]*boxView
}

func newFleetView(prefix string) *fleetView {
	return &fleetView{prefix: prefix, boxes: map[string]*boxView{}}
}

// apply folds one message in. It reports the box, the topic suffix and
// whether anything changed (false for older or unknown documents).
func (v *fleetView) apply(m msg) (*boxView, string, bool) {
	id, suffix, ok := wire.ParseBoxTopic(v.prefix, m.topic)
	if !ok || len(m.payload) == 0 || wire.CheckPayload(m.payload) != nil {
		return nil, "", false
	}
	b := v.boxes[id]
	if b == nil {
		b = &boxView{ID: id}
	}
	changed := false
	switch suffix {
	case wire.TopicStatus:
		s, err := wire.DecodeStatus(m.payload)
		if err == nil && (b.Status == nil || b.Status.Order().Before(s.Order())) {
			b.Status, changed = &s, true
			b.seen(s.TS)
		}
	case wire.TopicMeta:
		changed = newer(&b.Meta, m.payload, func(x *wire.Meta) wire.Header { return x.Header })
		if changed {
			b.seen(b.Meta.TS)
		}
	case wire.TopicState:
		changed = newer(&b.State, m.payload, func(x *wire.State) wire.Header { return x.Header })
		if changed {
			b.seen(b.State.TS)
		}
	case wire.TopicTelemetry:
		changed = newer(&b.Telemetry, m.payload, func(x *wire.Telemetry) wire.Header { return x.Header })
		if changed {
			b.seen(b.Telemetry.TS)
			b.telAt = m.at
			if m.retained {
				b.telAt = time.UnixMilli(b.Telemetry.TS)
			}
			b.staleSaid = false
		}
	case wire.TopicConfigReported:
		changed = newer(&b.Reported, m.payload, func(x *wire.ConfigReported) wire.Header { return x.Header })
	default:
		// Events and responses carry headers too: they count as seen.
		var h wire.Header
		if strings.HasPrefix(suffix, wire.TopicEvtPrefix) && json.Unmarshal(m.payload, &h) == nil {
			b.seen(h.TS)
			changed = true
		}
	}
	if changed {
		v.boxes[id] = b
	}
	return b, suffix, changed
}

// newer replaces *cur with the decoded payload when it is newer.
func newer[T any](cur **T, payload []byte, hdr func(*T) wire.Header) bool {
	var x T
	if json.Unmarshal(payload, &x) != nil {
		return false
	}
	h := hdr(&x)
	if h.V != wire.SchemaVersion {
		return false
	}
	if *cur != nil && !hdr(*cur).Before(h) {
		return false
	}
	*cur = &x
	return true
}

func (b *boxView) seen(ts int64) {
	if ts > b.lastTS {
		b.lastTS = ts
	}
}

func (b *boxView) online() bool { return b.Status != nil && b.Status.Online }

func (b *boxView) interval() time.Duration {
	switch {
	case b.Telemetry != nil && b.Telemetry.IntervalS > 0:
		return time.Duration(b.Telemetry.IntervalS) * time.Second
	case b.Meta != nil && b.Meta.TelemetryIntervalS > 0:
		return time.Duration(b.Meta.TelemetryIntervalS) * time.Second
	}
	return defaultInterval
}

// stale: online, yet no telemetry for 3 intervals (or none at all once
// the box has been online that long).
func (b *boxView) stale(now time.Time) bool {
	if !b.online() {
		return false
	}
	limit := staleIntervals * b.interval()
	if b.telAt.IsZero() {
		return b.Status.TS > 0 && now.Sub(time.UnixMilli(b.Status.TS)) > limit
	}
	return now.Sub(b.telAt) > limit
}

// row is one line of `ls`.
type row struct {
	ID           string   `json:"id"`
	Online       bool     `json:"online"`
	Stale        bool     `json:"stale"`
	StatusState  string   `json:"status,omitempty"`
	Mood         string   `json:"mood,omitempty"`
	Mode         string   `json:"mode,omitempty"`
	Signal       string   `json:"signal,omitempty"`
	Format       string   `json:"format,omitempty"`
	OutputsUp    int      `json:"outputs_up"`
	OutputsTotal int      `json:"outputs_total"`
	TempC        *float64 `json:"temp_c,omitempty"`
	LastSeenMS   int64    `json:"last_seen_ms,omitempty"`
	Sess         int64    `json:"sess,omitempty"`
	Agent        string   `json:"agent,omitempty"`
}

func (b *boxView) row(now time.Time) row {
	r := row{ID: b.ID, Online: b.online(), Stale: b.stale(now), LastSeenMS: b.lastTS}
	if b.Status != nil {
		r.StatusState, r.Sess, r.Agent = b.Status.State, b.Status.Sess, b.Status.Agent
	}
	if s := b.State; s != nil {
		r.Mood, r.Mode, r.Signal, r.Format = string(s.Mood), s.Mode, s.Capture.Signal, s.Capture.Format
		for _, st := range s.Outputs {
			if st != wire.OutputDisabled {
				r.OutputsTotal++
			}
			if st == wire.OutputUp {
				r.OutputsUp++
			}
		}
	}
	if b.Telemetry != nil {
		if t, ok := b.Telemetry.Sys.MaxTempC(); ok {
			r.TempC = &t
		}
	}
	return r
}

// rows are the boxes sorted by id.
func (v *fleetView) rows(now time.Time) []row {
	ids := make([]string, 0, len(v.boxes))
	for id := range v.boxes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]row, 0, len(ids))
	for _, id := range ids {
		out = append(out, v.boxes[id].row(now))
	}
	return out
}

// onlineCell is the ONLINE column.
func (r row) onlineCell() string {
	switch {
	case r.Stale:
		return "STALE"
	case r.Online:
		return "yes"
	case r.StatusState == wire.StatusLost:
		return "LOST"
	}
	return "no"
}

func (r row) cells(now time.Time) []string {
	signal := dash(r.Signal)
	if r.Format != "" {
		signal += " " + r.Format
	}
	temp := "-"
	if r.TempC != nil {
		temp = fmt.Sprintf("%.1f°C", *r.TempC)
	}
	seen := "-"
	if r.LastSeenMS > 0 {
		seen = age(now.Sub(time.UnixMilli(r.LastSeenMS)))
	}
	outs := "-"
	if r.OutputsTotal > 0 || r.Mode != "" {
		outs = fmt.Sprintf("%d/%d", r.OutputsUp, r.OutputsTotal)
	}
	return []string{r.ID, r.onlineCell(), dash(r.Mood), dash(r.Mode), signal, outs, temp, seen}
}

var header = []string{"ID", "ONLINE", "MOOD", "MODE", "SIGNAL", "OUTPUTS", "TEMP", "LAST SEEN"}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is a short human duration ("4s ago", "3m ago", "2h ago", "5d ago");
// a negative one means the box's clock is ahead.
func age(d time.Duration) string {
	switch {
	case d < -2*time.Second:
		return "clock ahead"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
