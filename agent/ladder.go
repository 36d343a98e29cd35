package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
	"capbox/pipelines"
)

// The encoder ladder: zero-copy hardware, copying hardware, software. A
// rung that touches hardware is tried briefly before use, and repeated
// failures at run time drop to the next one.
const (
	// rungFailures within rungWindow drop the encoder to the next rung.
	rungFailures = 3
	rungWindow   = 2 * time.Minute
)

// ladder is the rung the agent plans with and the hardware failures seen
// on it lately.
type ladder struct {
	rung  pipelines.Rung
	fails []time.Time
}

// failed records a run-time failure of the rung at now; true when the
// failures within rungWindow reach rungFailures and the ladder stepped
// down a rung.
func (l *ladder) failed(now time.Time) bool {
	l.fails = append(l.fails, now)
	for len(l.fails) > 0 && now.Sub(l.fails[0]) > rungWindow {
		l.fails = l.fails[1:]
	}
	if len(l.fails) < rungFailures {
		return false
	}
	l.fails = nil
	return true
}

// planFor plans with a config, detection and rung, and the thermal
// guard's limits.
func planFor(cfg config.Config, det board.Detection, rung pipelines.Rung, thermal health.ThermalStatus, elements board.ElementChecker) (pipelines.Plan, error) {
	if cfg.Encode.ThermalGuard {
		cfg.Encode.BitrateKbps, cfg.Encode.MaxFPS = thermal.Action.Apply(cfg.Encode.BitrateKbps, cfg.Encode.MaxFPS)
	}
	if !cfg.Encode.ZeroCopy && rung < pipelines.RungMMAP {
		rung = pipelines.RungMMAP
	}
	req, err := planRequest(cfg, det, rung, elements)
	if err != nil {
		return pipelines.Plan{}, err
	}
	return pipelines.Build(req)
}

// makePlan plans with what the agent knows now.
func (a *Agent) makePlan(rung pipelines.Rung) (pipelines.Plan, error) {
	return planFor(a.cfg, a.det, rung, a.thermal, a.deps.Elements)
}

// choose walks the ladder from the job's rung down. A rung that touches
// hardware is tried briefly first, when the input can give it frames.
func (j planJob) choose(ctx context.Context) (pipelines.Plan, error) {
	var errs []error
	tried := map[pipelines.Rung]bool{}
	for _, rung := range []pipelines.Rung{j.rung, pipelines.RungMMAP, pipelines.RungSoftware} {
		if rung != 0 && rung < j.rung {
			continue
		}
		plan, err := planFor(j.cfg, j.det, rung, j.thermal, j.deps.Elements)
		if err != nil {
			if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
				errs = append(errs, err)
			}
			continue
		}
		if tried[plan.Encoder.Rung] {
			continue
		}
		tried[plan.Encoder.Rung] = true
		if !needsTrial(plan) || j.deps.Trial == nil || !(input{signal: j.signal}).signalUsable() {
			return plan, nil
		}
		first, err := j.deps.Trial(ctx, plan.Video, j.cfg.Encode.TrialTimeout.D())
		if err == nil {
			j.log.Info("encoder trial passed", "encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "first_buffer", first.Round(time.Millisecond))
			return plan, nil
		}
		j.log.Warn("encoder trial failed, trying the next rung", "encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "err", err)
		errs = append(errs, fmt.Errorf("rung %s: %w", plan.Encoder.Rung, err))
	}
	return pipelines.Plan{}, fmt.Errorf("no pipeline can run: %w", errors.Join(errs...))
}

// needsTrial: hardware and capture devices can fail in ways only a run
// shows; a software encoder on the test pattern cannot.
func needsTrial(p pipelines.Plan) bool {
	return p.Encoder.Hardware || p.Video.Kind == pipelines.SourceV4L2
}

// onHardwareFailure drops the encoder a rung when hardware keeps failing
// at run time (a Pi's "could not map buffer" after minutes, say). Failures
// without a signal say nothing of the encoder.
func (a *Agent) onHardwareFailure(msg string) {
	if !a.plan.Encoder.Hardware || !a.in.hasSignal() {
		return
	}
	if !a.ladder.failed(time.Now()) {
		return
	}
	from := a.plan.Encoder.Rung
	a.ladder.rung = from + 1
	a.log.Warn("encoder keeps failing, falling to the next rung", "from", from, "to", a.ladder.rung, "err", msg)
	a.replanVideo("encoder fallback")
	a.emit(wire.Event{Type: wire.EvtEncoderFallback, Part: wire.PartEncoder, Msg: msg,
		Data: map[string]any{"from": from.String(), "to": a.plan.Encoder.Rung.String(), "encoder": a.plan.Encoder.Element}})
}
