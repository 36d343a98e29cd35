package agent

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/agent/sdnotify"
	"capbox/board"
	"capbox/internal/redact"
	"capbox/pipelines"
)

// published is what the loop offers other goroutines (the fleet link, the
// metrics page): the latest state, meta and moods, and the event queue.
type published struct {
	mu    sync.Mutex
	state wire.State
	meta  wire.Meta
	moods map[string]wire.Mood
	// rt is the runtime that runs, for previews and meters (box.go).
	rt Runtime

	// changed has a value when state changed since the link last looked.
	changed chan struct{}
	events  chan wire.Event
}

func newPublished() *published {
	return &published{changed: make(chan struct{}, 1), events: make(chan wire.Event, 64)}
}

func (p *published) State() wire.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *published) Meta() wire.Meta {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.meta
}

func (p *published) Moods() map[string]wire.Mood {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.moods)
}

func (a *Agent) view() view {
	v := view{
		running: a.run.rt != nil, planning: a.run.phase == runPlanning || a.run.phase == runStopping && a.run.restart,
		signal: a.in.signal, inputGone: a.in.gone, flat: a.in.flat, videoFailing: a.in.failed,
		stalled: a.stalls.stalled, startedAt: a.run.started, now: time.Now(), thermal: "",
		outputsWanted: len(a.cfg.Outputs) > 0 || a.cfg.Record.Enabled,
	}
	if a.run.err != nil {
		v.planErr = a.run.err.Error()
	}
	if a.run.rt != nil {
		v.stats = a.run.rt.Stats()
	}
	if a.svc.link != nil {
		v.fleet = a.svc.link.Mood()
	}
	if a.thermal.Level != "" {
		v.thermal = a.thermal.Level.Mood()
	}
	return v
}

// publish recomputes state and moods; a change is logged once, mirrored
// to systemd and offered to the fleet link.
func (a *Agent) publish() {
	v := a.view()
	ms := moods(v)
	st := wire.State{
		Mode: mode(v, ms), Mood: wire.WorstMood(ms), Moods: ms,
		Capture:       wire.CaptureState{Signal: string(a.signalState(v)), Format: formatName(a.in.signal)},
		Outputs:       map[string]string{},
		Recording:     v.stats.Recorder.Recording,
		Alerts:        alerts(v, ms),
		ConfigVersion: a.cfgVersion,
	}
	for _, o := range v.stats.Outputs {
		st.Outputs[o.Name] = string(o.State)
	}
	p := a.pub
	p.mu.Lock()
	old := p.state
	changed := !reflect.DeepEqual(old.Moods, st.Moods) || old.Mode != st.Mode || old.Capture != st.Capture ||
		!reflect.DeepEqual(old.Outputs, st.Outputs) || old.Recording != st.Recording ||
		!reflect.DeepEqual(old.Alerts, st.Alerts) || old.ConfigVersion != st.ConfigVersion
	p.state = st
	p.moods = ms
	p.rt = a.run.rt
	p.mu.Unlock()
	if !changed {
		return
	}
	a.log.Info("state", "mode", st.Mode, "mood", st.Mood, "signal", st.Capture.Signal, "alerts", strings.Join(st.Alerts, "; "))
	_ = a.notify.Status(sdnotify.StatusText(st.Mode, ms))
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (a *Agent) signalState(v view) board.SignalState {
	switch {
	case v.inputGone, v.flat:
		return board.SignalNone
	case a.plan.Video.Kind != pipelines.SourceV4L2:
		return board.SignalUnknown
	case v.signal.State == "":
		return board.SignalUnknown
	}
	return v.signal.State
}

// emit queues a fleet event; a full queue drops the oldest.
func (a *Agent) emit(ev wire.Event) {
	for {
		select {
		case a.pub.events <- ev:
			return
		default:
			select {
			case <-a.pub.events:
			default:
			}
		}
	}
}

// setMeta refreshes what the fleet's meta message says.
func (a *Agent) setMeta() {
	det, _ := board.MarshalDetection(a.det)
	outs := []wire.OutputInfo{}
	for _, o := range a.cfg.Outputs {
		outs = append(outs, wire.OutputInfo{Name: o.Name, URL: redact.URL(o.URL), Enabled: o.IsEnabled(),
			Proto: strings.SplitN(o.URL, ":", 2)[0]})
	}
	versions := maps.Clone(a.deps.Versions)
	if versions == nil {
		versions = map[string]string{}
	}
	if b, err := os.ReadFile(filepath.Join(a.deps.Root, "proc/sys/kernel/osrelease")); err == nil {
		versions["kernel"] = strings.TrimSpace(string(b))
	}
	bootID, _ := os.ReadFile(filepath.Join(a.deps.Root, "proc/sys/kernel/random/boot_id"))
	a.pub.mu.Lock()
	a.pub.meta = wire.Meta{
		Agent: a.deps.Version, Versions: versions, BootID: strings.TrimSpace(string(bootID)),
		Detection: det, Outputs: outs, TelemetryIntervalS: int(a.cfg.Fleet.TelemetryInterval.D() / time.Second),
	}
	a.pub.mu.Unlock()
}
