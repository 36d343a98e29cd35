package fleet

import (
	"os"
	"slices"
	"strings"
	"time"

	"capbox/internal/redact"

	"capbox/agent/fleet/wire"
)

// queueRetained queues the retained set, what a newcomer gets on
// subscribing: the status (birth), meta, state (forced past its rate
// limit) and config/reported once there is one. connect has published
// and had acknowledged the birth before anything else, so it passes
// withBirth false; rebirth passes true.
func (l *Link) queueRetained(meta wire.Meta, withBirth bool) {
	if withBirth {
		l.queueBirth(meta)
	}
	l.out.pushRetained(wire.TopicMeta, &meta)
	l.publishState(true)
	if l.conf.reported != nil {
		r := *l.conf.reported
		r.Header = wire.Header{}
		l.out.pushRetained(wire.TopicConfigReported, &r)
	}
}

// rebirth republishes every retained document.
func (l *Link) rebirth() { l.queueRetained(l.meta(), true) }

// queueBirth queues the online status for the box as it is now.
func (l *Link) queueBirth(meta wire.Meta) { l.out.pushRetained(wire.TopicStatus, l.birth(meta)) }

// birth is the online status; it remembers the status-level summary it
// gives, so that a change of it republishes the birth (publishState).
func (l *Link) birth(meta wire.Meta) *wire.Status {
	st := l.box.State()
	l.mqtt.birthState = statusStateOf(st)
	return &wire.Status{Online: true, State: l.mqtt.birthState, BootID: meta.BootID, Agent: meta.Agent}
}

// statusStateOf is the status-level summary: init until the box has a mode,
// alert on alerts or a sad/lost/error box, else ready.
func statusStateOf(st wire.State) string {
	mood := st.Mood
	if mood == "" {
		mood = wire.WorstMood(st.Moods)
	}
	switch {
	case st.Mode == "":
		return wire.StatusInit
	case len(st.Alerts) > 0 || st.Mode == wire.ModeError || mood == wire.MoodSad || mood == wire.MoodLost:
		return wire.StatusAlert
	}
	return wire.StatusReady
}

// meta is the box's Meta with redacted URLs and the link's additions.
func (l *Link) meta() wire.Meta {
	m := l.box.Meta()
	m.Header = wire.Header{}
	for i := range m.Outputs {
		m.Outputs[i].URL = redact.URL(m.Outputs[i].URL)
	}
	if m.BootID == "" {
		m.BootID = bootID()
	}
	m.Commands = commandList(m.Commands)
	if _, ok := l.box.(Viewable); ok {
		m.Commands = append(m.Commands, wire.CmdWatch) // version 1.1
	}
	m.TelemetryIntervalS = int(l.interval / time.Second)
	return m
}

// commandList is every command this box answers, in table order: the
// link's own, and the box commands the box names (all when it names none).
func commandList(boxCmds []string) []string {
	var out []string
	for _, c := range wire.Commands {
		if !c.Box || len(boxCmds) == 0 || slices.Contains(boxCmds, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// onOwnStatus heals a retained status that says this box is offline while
// it is connected: a stale will (another session, e.g. from the cluster
// node that held the old connection) is overwritten with the birth; our own
// session's will means the broker dropped us, so reconnect. The retained
// snapshot delivered on subscribing predates our birth and is ignored.
func (l *Link) onOwnStatus(payload []byte, retained bool) {
	s := &l.mqtt
	if s.conn == nil || retained {
		return
	}
	var st wire.Status
	var err error
	if len(payload) > 0 {
		st, err = wire.DecodeStatus(payload)
	}
	switch {
	case err == nil && st.Online && st.Sess == s.sess:
		s.birthSeen = true
		return
	case err == nil && st.Online:
		return // an older session's birth still travelling; ours follows
	case err == nil && st.Sess == s.sess:
		l.log.Warn("the broker published this session's will while connected: reconnecting", "sess", s.sess)
		s.conn.Close(0)
		return
	}
	l.log.Info("retained status says offline: publishing the birth again", "their_sess", st.Sess, "sess", s.sess)
	l.queueBirth(l.meta())
}
