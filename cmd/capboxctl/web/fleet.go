package web

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/internal/redact"
)

// What the dashboard keeps of one box: the newest of each document by
// (sess, seq), never by arrival, as capboxctl does; the newest preview
// and meter reading; recent events and command answers.
type box struct {
	id        string
	status    *wire.Status
	meta      *wire.Meta
	state     *wire.State
	telemetry *wire.Telemetry
	reported  *wire.ConfigReported
	desired   *wire.ConfigDesired
	// telAt is when the newest telemetry was taken: arrival for live
	// messages, the box's ts for retained ones. seenAt likewise for any
	// message.
	telAt, seenAt time.Time

	preview   []byte
	previewN  int
	meter     *wire.Meter
	meterAt   time.Time
	snapshot  []byte
	snapshotN int
	events    []line
	answers   []answer

	// noWatchSess is the session whose box answered watch "unsupported":
	// no more leases are asked of it until it connects again.
	noWatchSess int64
	renewAt     map[string]time.Time

	// alerts and since when each has held.
	since map[string]time.Time
	// tile is the tile's HTML as last rendered, tileKey what it shows.
	tile    string
	tileKey tileKey
}

// line is one recent event of a box, for the room page.
type line struct {
	At   time.Time
	Text string
}

// answer is one command sent from this dashboard and its answer.
type answer struct {
	ID, Cmd, Args, User string
	At                  time.Time
	Status, Code, Msg   string
	Done                bool
	Snapshot            int // the snapshot number when it returned one
}

const (
	maxEvents  = 30
	maxAnswers = 20
	// staleIntervals: online, yet no telemetry for this many intervals.
	staleIntervals = 3
	// defaultInterval when a box has not said its telemetry interval.
	defaultInterval = 10 * time.Second
	// hotC is the temperature at which a box without a thermal part is
	// called hot.
	hotC = 80
)

// newer replaces *cur with the decoded payload when it is newer.
func newer[T any](cur **T, payload []byte, hdr func(*T) wire.Header) bool {
	var x T
	if json.Unmarshal(payload, &x) != nil {
		return false
	}
	h := hdr(&x)
	if h.V != wire.SchemaVersion || (*cur != nil && !hdr(*cur).Before(h)) {
		return false
	}
	*cur = &x
	return true
}

// apply folds one message into b. It reports what changed: the tile and
// room views (changed), a preview, a meter reading.
func (b *box) apply(suffix string, payload []byte, retained bool, now time.Time) (changed bool) {
	if suffix == wire.TopicPreview {
		if wire.CheckPreview(payload) != nil {
			return false
		}
		b.preview, b.previewN = payload, b.previewN+1
		b.seenAt = now
		return false
	}
	if wire.CheckPayload(payload) != nil {
		return false
	}
	seen := func(ts int64) {
		at := now
		if retained && ts > 0 {
			at = time.UnixMilli(ts)
		}
		if at.After(b.seenAt) {
			b.seenAt = at
		}
	}
	switch {
	case suffix == wire.TopicMeter:
		m, err := wire.DecodeMeter(payload)
		if err != nil || (b.meter != nil && !b.meter.Before(m.Header) && b.meter.Sess == m.Sess) {
			return false
		}
		b.meter, b.meterAt = &m, now
		seen(m.TS)
		return false
	case suffix == wire.TopicStatus:
		s, err := wire.DecodeStatus(payload)
		if err != nil || (b.status != nil && !b.status.Order().Before(s.Order())) {
			return false
		}
		b.status = &s
		seen(s.TS)
		return true
	case suffix == wire.TopicMeta:
		if !newer(&b.meta, payload, func(x *wire.Meta) wire.Header { return x.Header }) {
			return false
		}
		for i := range b.meta.Outputs {
			b.meta.Outputs[i].URL = redact.URL(b.meta.Outputs[i].URL)
		}
		seen(b.meta.TS)
		return true
	case suffix == wire.TopicState:
		if !newer(&b.state, payload, func(x *wire.State) wire.Header { return x.Header }) {
			return false
		}
		seen(b.state.TS)
		return true
	case suffix == wire.TopicTelemetry:
		if !newer(&b.telemetry, payload, func(x *wire.Telemetry) wire.Header { return x.Header }) {
			return false
		}
		b.telAt = now
		if retained {
			b.telAt = time.UnixMilli(b.telemetry.TS)
		}
		seen(b.telemetry.TS)
		return true
	case suffix == wire.TopicConfigReported:
		return newer(&b.reported, payload, func(x *wire.ConfigReported) wire.Header { return x.Header })
	case suffix == wire.TopicConfigDesired:
		d, err := wire.DecodeDesired(payload)
		if err != nil {
			return false
		}
		b.desired = &d
		return true
	case strings.HasPrefix(suffix, wire.TopicEvtPrefix):
		var e wire.Event
		if json.Unmarshal(payload, &e) != nil || e.V != wire.SchemaVersion {
			return false
		}
		seen(e.TS)
		at := now
		if e.TS > 0 {
			at = time.UnixMilli(e.TS)
		}
		text := e.Type
		if e.Output != "" {
			text += " " + e.Output
		}
		if e.Msg != "" {
			text += ": " + e.Msg
		}
		b.addEvent(at, text)
		return true
	}
	return false
}

func (b *box) addEvent(at time.Time, text string) {
	b.events = append(b.events, line{At: at, Text: text})
	if len(b.events) > maxEvents {
		b.events = b.events[len(b.events)-maxEvents:]
	}
}

// known: the box has said something of itself, not only a preview, a
// meter or a desired config someone left for it.
func (b *box) known() bool {
	return b.status != nil || b.meta != nil || b.state != nil || b.telemetry != nil
}

func (b *box) online() bool { return b.status != nil && b.status.Online }

func (b *box) interval() time.Duration {
	switch {
	case b.telemetry != nil && b.telemetry.IntervalS > 0:
		return time.Duration(b.telemetry.IntervalS) * time.Second
	case b.meta != nil && b.meta.TelemetryIntervalS > 0:
		return time.Duration(b.meta.TelemetryIntervalS) * time.Second
	}
	return defaultInterval
}

// stale: online, yet no telemetry for 3 intervals.
func (b *box) stale(now time.Time) bool {
	if !b.online() {
		return false
	}
	limit := staleIntervals * b.interval()
	if b.telAt.IsZero() {
		return b.status.TS > 0 && now.Sub(time.UnixMilli(b.status.TS)) > limit
	}
	return now.Sub(b.telAt) > limit
}

// watchable: the box is online and may answer watch: it lists watch in
// its commands (a box that lists commands without it is older than 1.1)
// and has not answered "unsupported" in this session.
func (b *box) watchable() bool {
	if !b.online() || b.noWatchSess == b.status.Sess {
		return false
	}
	return b.meta == nil || len(b.meta.Commands) == 0 || slices.Contains(b.meta.Commands, wire.CmdWatch)
}

// Alert kinds, most urgent first.
const (
	alertLost     = "lost"
	alertStale    = "stale"
	alertError    = "no pipeline"
	alertNoSignal = "no signal"
	alertSilent   = "silence with a picture"
	alertOutput   = "output down"
	alertHot      = "hot"
)

// graceOf is how long an alert must hold before it is listed on top
// ("no signal for long"); the tile shows it at once.
var graceOf = map[string]time.Duration{alertNoSignal: 10 * time.Second, alertOutput: 10 * time.Second}

var alertOrder = []string{alertLost, alertStale, alertError, alertNoSignal, alertSilent, alertOutput, alertHot}

// alerts are the box's problems now, each with a short text.
func (b *box) alerts(now time.Time) map[string]string {
	out := map[string]string{}
	if b.status != nil && !b.status.Online && b.status.State == wire.StatusLost {
		out[alertLost] = "vanished (no goodbye)"
		return out
	}
	if !b.online() {
		return out
	}
	if b.stale(now) {
		out[alertStale] = fmt.Sprintf("no telemetry for %s", (staleIntervals * b.interval()).String())
	}
	if s := b.state; s != nil {
		if s.Mode == wire.ModeError {
			out[alertError] = "no pipeline"
		}
		switch s.Capture.Signal {
		case "no_signal", "no_lock", "out_of_range":
			out[alertNoSignal] = strings.ReplaceAll(s.Capture.Signal, "_", " ")
		}
		var down []string
		for name, st := range s.Outputs {
			if st == wire.OutputDown {
				down = append(down, name)
			}
		}
		if len(down) > 0 {
			sort.Strings(down)
			out[alertOutput] = strings.Join(down, ", ") + " down"
		}
		silent := slices.Contains(s.Alerts, "audio silent")
		if t := b.telemetry; t != nil && t.Audio != nil && t.Audio.Silent {
			silent = true
		}
		picture := s.Capture.Signal == "locked" || s.Capture.Signal == "unknown"
		if silent && picture {
			out[alertSilent] = "silent audio with a picture"
		}
		if m := s.Moods["thermal"]; m == wire.MoodHungry || m == wire.MoodSad {
			out[alertHot] = "thermal " + string(m)
		}
	}
	if t := b.telemetry; t != nil && out[alertHot] == "" {
		if c, ok := t.Sys.MaxTempC(); ok && c >= hotC {
			out[alertHot] = fmt.Sprintf("%.0f °C", c)
		}
	}
	return out
}

// trackAlerts updates since-times; it reports whether the set changed.
func (b *box) trackAlerts(now time.Time) bool {
	cur := b.alerts(now)
	changed := false
	if b.since == nil {
		b.since = map[string]time.Time{}
	}
	for k := range cur {
		if _, ok := b.since[k]; !ok {
			b.since[k], changed = now, true
		}
	}
	for k := range b.since {
		if _, ok := cur[k]; !ok {
			delete(b.since, k)
			changed = true
		}
	}
	return changed
}

// listed is whether an alert has held long enough for the top list.
func (b *box) listed(kind string, now time.Time) bool {
	at, ok := b.since[kind]
	return ok && now.Sub(at) >= graceOf[kind]
}

// upTotal counts outputs up and the enabled ones.
func (b *box) upTotal() (up, total int) {
	if b.state == nil {
		return 0, 0
	}
	for _, st := range b.state.Outputs {
		if st != wire.OutputDisabled {
			total++
		}
		if st == wire.OutputUp {
			up++
		}
	}
	return up, total
}

func (b *box) mood() string {
	switch {
	case b.status != nil && !b.status.Online && b.status.State == wire.StatusLost:
		return string(wire.MoodLost)
	case !b.online():
		return "offline"
	case b.state == nil:
		return string(wire.MoodWaking)
	}
	return string(b.state.Mood)
}
