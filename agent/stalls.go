package agent

import (
	"context"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/pipelines"
)

// stallWatch finds parts that deliver nothing: the video without new
// frames, an output that says it is up without new bytes.
type stallWatch struct {
	// stalled names the parts found stalled at the last check (lost).
	stalled map[string]bool
	// outBytes is each output's byte count when it last moved.
	outBytes map[string]outputProgress
}

type outputProgress struct {
	bytes uint64
	at    time.Time
}

func newStallWatch() stallWatch {
	return stallWatch{stalled: map[string]bool{}, outBytes: map[string]outputProgress{}}
}

// reset forgets everything (a new runtime).
func (s *stallWatch) reset() { *s = newStallWatch() }

// check judges the runtime's stats at now and returns the parts that
// stalled since the last check.
func (s *stallWatch) check(st pipelines.Stats, now time.Time) []string {
	stalled := map[string]bool{}
	if st.Video.Running && !st.Video.LastFrame.IsZero() && now.Sub(st.Video.LastFrame) > StallAfter {
		stalled[wire.PartEncoder] = true
		if !st.Slate {
			stalled[wire.PartCapture] = true
		}
	}
	for _, o := range st.Outputs {
		p, ok := s.outBytes[o.Name]
		if !ok || o.Bytes != p.bytes || o.State != pipelines.OutputUp {
			s.outBytes[o.Name] = outputProgress{bytes: o.Bytes, at: now}
			continue
		}
		if now.Sub(p.at) > OutputStallAfter {
			stalled[wire.OutputPart(o.Name)] = true
		}
	}
	var fresh []string
	for part := range stalled {
		if !s.stalled[part] {
			fresh = append(fresh, part)
		}
	}
	s.stalled = stalled
	return fresh
}

// checkStalls marks parts that deliver nothing as lost and restarts them.
func (a *Agent) checkStalls() {
	if a.run.rt == nil || time.Since(a.run.started) < 2*StallAfter {
		return
	}
	now := time.Now()
	rt := a.run.rt
	for _, part := range a.stalls.check(rt.Stats(), now) {
		a.log.Warn("part stalled, restarting it", "part", part)
		switch {
		case part == wire.PartEncoder:
			plan := a.plan
			a.rtCall(func(ctx context.Context) error { return rt.ReplaceVideo(ctx, plan.Video, plan.Encoder, plan.Slate) })
		case strings.HasPrefix(part, "output:"):
			name := strings.TrimPrefix(part, "output:")
			a.rtCall(func(ctx context.Context) error { return rt.RestartOutput(ctx, name) })
			a.stalls.outBytes[name] = outputProgress{bytes: 0, at: now}
		}
	}
}
