package agent

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/board"
	"capbox/pipelines"
)

// view is what the moods are judged from: the runtime's stats and what
// the supervisor knows beyond them.
type view struct {
	stats pipelines.Stats
	// running: a runtime exists; planning: one is being planned (or
	// restarted); planErr: none could be planned.
	running  bool
	planning bool
	planErr  string
	// signal is the input's state from the watcher (unknown for inputs
	// without DV timings: dongles, the test pattern).
	signal board.Signal
	// inputGone: the capture device is unplugged.
	inputGone bool
	// flat: the runtime judged the picture flat (no signal, for inputs
	// that cannot report one).
	flat bool
	// videoFailing: the live video front fails and is being retried.
	videoFailing bool
	// stalled names parts the watchdog found without data (lost).
	stalled map[string]bool
	// startedAt is when the runtime started; parts are "waking" until data flows.
	startedAt time.Time
	now       time.Time
	fleet     wire.Mood // "" when there is no fleet link
	thermal   wire.Mood // "" when unknown
	// outputsWanted is true when the config asks for any output or recording.
	outputsWanted bool
}

// moods judges every part (PROTOCOL.md "Moods").
func moods(v view) map[string]wire.Mood {
	m := map[string]wire.Mood{}
	s := v.stats
	switch {
	case !v.running && v.planning:
		m[wire.PartCapture], m[wire.PartEncoder] = wire.MoodWaking, wire.MoodWaking
	case !v.running:
		m[wire.PartCapture], m[wire.PartEncoder] = wire.MoodSad, wire.MoodSad
	default:
		m[wire.PartCapture] = captureMood(v)
		switch {
		case v.stalled[wire.PartEncoder]:
			m[wire.PartEncoder] = wire.MoodLost
		case s.Video.Frames == 0:
			m[wire.PartEncoder] = wire.MoodWaking
		default:
			m[wire.PartEncoder] = wire.MoodHappy
		}
	}
	for _, o := range s.Outputs {
		part := wire.OutputPart(o.Name)
		switch {
		case v.stalled[part]:
			m[part] = wire.MoodLost
		case o.State == pipelines.OutputUp:
			m[part] = wire.MoodHappy
		case o.State == pipelines.OutputConnecting:
			m[part] = wire.MoodWaking
		case o.State == pipelines.OutputDisabled:
			m[part] = wire.MoodSleeping
		case unreachable(o.LastError):
			m[part] = wire.MoodHungry
		default:
			m[part] = wire.MoodSad
		}
	}
	if s.Recorder.Enabled {
		switch {
		case v.stalled[wire.PartRecorder]:
			m[wire.PartRecorder] = wire.MoodLost
		case s.Recorder.Recording:
			m[wire.PartRecorder] = wire.MoodHappy
		case s.Recorder.LastError != "":
			m[wire.PartRecorder] = wire.MoodSad
		default:
			m[wire.PartRecorder] = wire.MoodSleeping
		}
	}
	if v.fleet != "" {
		m[wire.PartFleet] = v.fleet
	}
	if v.thermal != "" {
		m[partThermal] = v.thermal
	}
	return m
}

// partThermal is the SoC temperature's part.
const partThermal = "thermal"

func captureMood(v view) wire.Mood {
	switch {
	case v.stalled[wire.PartCapture]:
		return wire.MoodLost
	case v.inputGone, v.flat:
		return wire.MoodHungry
	case v.signal.State != board.SignalLocked && v.signal.State != board.SignalUnknown && v.signal.State != "":
		return wire.MoodHungry
	case v.videoFailing:
		return wire.MoodSad
	case v.stats.Video.Frames == 0:
		return wire.MoodWaking
	}
	return wire.MoodHappy
}

// unreachable tells a server that is away (hungry: waiting) from a
// failure of our own (sad).
func unreachable(err string) bool {
	e := strings.ToLower(err)
	for _, w := range []string{"refused", "connect", "unreachable", "timed out", "timeout", "closed", "reset", "resolve"} {
		if strings.Contains(e, w) {
			return true
		}
	}
	return false
}

// mode is the box's mode for State.
func mode(v view, ms map[string]wire.Mood) string {
	switch {
	case !v.running && v.planning:
		return wire.ModeStarting
	case !v.running:
		return wire.ModeError
	case ms[wire.PartCapture] == wire.MoodHungry:
		return wire.ModeNoSignal
	case v.stats.Video.Frames == 0 || v.now.Sub(v.startedAt) < time.Second && ms[wire.PartEncoder] == wire.MoodWaking:
		return wire.ModeStarting
	case !v.outputsWanted:
		return wire.ModeIdle
	}
	for part, m := range ms {
		if part == wire.PartFleet || part == partThermal {
			continue
		}
		if wire.MoodRank(m) >= wire.MoodRank(wire.MoodHungry) {
			return wire.ModeDegraded
		}
	}
	return wire.ModeStreaming
}

// formatName writes a format like 1080p59.94 or 720p50.
func formatName(s board.Signal) string {
	if s.State != board.SignalLocked || s.Height == 0 {
		return ""
	}
	fps := s.FPSExact
	if fps == 0 {
		fps = float64(s.FPS)
	}
	scan := "p"
	if s.Interlaced {
		scan = "i"
	}
	if fps == math.Trunc(fps) {
		return fmt.Sprintf("%d%s%d", s.Height, scan, int(fps))
	}
	return fmt.Sprintf("%d%s%.2f", s.Height, scan, fps)
}

// alerts are short human strings for State.Alerts, sorted.
func alerts(v view, ms map[string]wire.Mood) []string {
	out := []string{}
	if v.planErr != "" {
		out = append(out, "no pipeline: "+v.planErr)
	}
	for part, m := range ms {
		switch m {
		case wire.MoodSad:
			out = append(out, part+" failed, retrying")
		case wire.MoodLost:
			out = append(out, part+" stalled")
		case wire.MoodHungry:
			if part == wire.PartCapture {
				out = append(out, "no signal")
			} else {
				out = append(out, part+" waiting")
			}
		}
	}
	if v.stats.Audio.Silent {
		out = append(out, "audio silent")
	}
	sort.Strings(out)
	return out
}
