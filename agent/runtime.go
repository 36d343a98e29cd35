package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
	"capbox/internal/backoff"
	"capbox/pipelines"
)

// runPhase is where the pipeline runtime is in its life. Detection, trials
// and stopping take seconds each: they run off the loop, and the loop only
// moves the phase on when they report.
type runPhase int

const (
	runIdle     runPhase = iota // nothing runs; a retry may be due
	runPlanning                 // a plan is being made off the loop
	runRunning                  // the runtime runs
	runStopping                 // cancelled; its Run has not returned yet
)

// runSlot is the pipeline runtime the agent runs, and its restart timing.
type runSlot struct {
	phase runPhase
	// gen numbers plan jobs; a job's result for an older gen is dropped.
	gen     uint64
	rt      Runtime
	cancel  context.CancelFunc
	done    chan error
	started time.Time
	// err: why no runtime runs (no plan, or the last one ended).
	err error
	// backoff spaces restarts after failures; retry fires the next one.
	backoff *backoff.Backoff
	retry   <-chan time.Time
	// restart: start again (detecting afresh) once the stopping runtime
	// has returned.
	restart bool
	// waiters hear how the next plan job ended (restart_pipeline's answer).
	waiters []chan error
}

func newRunSlot() runSlot {
	return runSlot{backoff: backoff.New(time.Second, time.Minute)}
}

// events is the runtime's event channel, nil (never ready) without one.
func (s *runSlot) events() <-chan pipelines.Event {
	if s.rt == nil {
		return nil
	}
	return s.rt.Events()
}

// planJob is what choosing a plan needs, copied off the loop: detection
// and each rung's trial run beside it.
type planJob struct {
	gen     uint64
	cfg     config.Config
	det     board.Detection
	detect  bool // detect afresh (and load the EDID) first
	device  string
	rung    pipelines.Rung
	thermal health.ThermalStatus
	signal  board.Signal
	deps    Deps
	log     *slog.Logger
}

// planResult is a job's outcome, handed back to the loop.
type planResult struct {
	gen  uint64
	det  *board.Detection // set when the job detected afresh
	plan pipelines.Plan
	err  error
}

// startPipeline plans and starts a runtime unless one runs or is coming;
// detect: find the hardware afresh first.
func (a *Agent) startPipeline(detect bool) {
	if a.run.phase != runIdle {
		return
	}
	a.run.retry = nil
	a.run.phase = runPlanning
	a.run.gen++
	job := planJob{
		gen: a.run.gen, cfg: a.cfg, det: a.det, detect: detect, device: a.plan.Video.Device,
		rung: a.ladder.rung, thermal: a.thermal, signal: a.in.signal, deps: a.deps, log: a.log,
	}
	go func() {
		res := job.run(a.ctx)
		a.post(func() { a.planned(res) })
	}()
}

func (j planJob) run(ctx context.Context) planResult {
	res := planResult{gen: j.gen}
	if j.detect {
		det := j.detectHardware(ctx)
		res.det, j.det = &det, det
		j.signal = inputOf(det, j.device).Signal
	}
	res.plan, res.err = j.choose(ctx)
	return res
}

// detectHardware finds the hardware and loads the configured EDID.
func (j planJob) detectHardware(ctx context.Context) board.Detection {
	if j.deps.Detect == nil {
		return board.Detection{Board: board.Board{ID: "unknown"}}
	}
	det, err := j.deps.Detect(ctx, j.cfg)
	if err != nil {
		j.log.Warn("detection incomplete", "err", err)
	}
	loadEDID(j.deps, j.cfg, det, j.log)
	return det
}

// planned takes a plan job's result: it starts the runtime, or arms the
// retry and says why nothing runs.
func (a *Agent) planned(res planResult) {
	if res.gen != a.run.gen || a.run.phase != runPlanning {
		return // a newer job was asked for
	}
	if res.det != nil {
		dev := a.plan.Video.Device
		if res.err == nil {
			dev = res.plan.Video.Device
		}
		a.det = *res.det
		a.in.signal = inputOf(a.det, dev).Signal
		a.setMeta()
	}
	a.firstPlanDone()
	if res.err != nil {
		if a.run.err == nil || a.run.err.Error() != res.err.Error() {
			a.log.Error("no pipeline can run; retrying", "err", res.err)
		}
		a.run.phase, a.run.err = runIdle, res.err
		a.run.retry = time.After(a.run.backoff.Next())
		a.answerWaiters(res.err)
		return
	}
	a.run.err = nil
	a.startRuntime(res.plan)
	a.answerWaiters(nil)
	// What changed while the job ran (a signal, a rung, a config) is
	// caught up with now: a no-op when nothing did.
	a.replanVideo("changed while planning")
}

// firstPlanDone starts what waits for the first plan job: the metrics
// page, the fleet link (its first meta carries the detection) and
// systemd's READY.
func (a *Agent) firstPlanDone() {
	if a.ready {
		return
	}
	a.ready = true
	a.startMetrics()
	a.startFleet()
	_ = a.notify.Ready()
}

func (a *Agent) startRuntime(plan pipelines.Plan) {
	a.plan = plan
	a.log.Info("pipeline planned",
		"video", plan.Video.Kind, "device", plan.Video.Device,
		"size", fmt.Sprintf("%dx%d@%d", plan.Video.Width, plan.Video.Height, plan.Video.FPS),
		"encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "reason", plan.Encoder.Reason,
		"audio", plan.Audio.Kind, "outputs", len(plan.Outputs), "recording", plan.Recorder != nil)
	rt := a.deps.NewRuntime(plan, a.log.With("component", "pipeline"))
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	a.run.phase = runRunning
	a.run.rt, a.run.cancel, a.run.done, a.run.started = rt, cancel, done, time.Now()
	a.health.SetPipeline(rt)
	a.stalls.reset()
	// A new runtime judges its picture and capture afresh.
	a.in.flat, a.in.flatMsg, a.in.failed = false, "", false
	if on := a.in.state().onAir(); on != (pipelines.OnAir{}) {
		a.rtCall(func(ctx context.Context) error { return rt.SetOnAir(ctx, on) })
	}
	a.watchInput()
}

// restartPipeline stops the runtime and starts a new one on fresh
// detection; ready (if not nil) hears how the new one's planning ended.
func (a *Agent) restartPipeline(ready chan error) {
	if ready != nil {
		a.run.waiters = append(a.run.waiters, ready)
	}
	switch a.run.phase {
	case runRunning:
		a.stopRuntime()
		a.run.restart = true
	case runStopping:
		a.run.restart = true
	case runPlanning:
		a.run.phase = runIdle // the running job's result is dropped
		a.startPipeline(true)
	case runIdle:
		a.startPipeline(true)
	}
}

// stopRuntime asks the runtime to stop cleanly (EOS); the loop hears when
// its Run returns.
func (a *Agent) stopRuntime() {
	a.run.cancel()
	a.run.phase = runStopping
	a.run.rt = nil
	a.health.SetPipeline(nil)
}

// onRuntimeDone runs when a runtime's Run returned: asked to (a restart)
// or on its own (a failure, retried after a backoff).
func (a *Agent) onRuntimeDone(err error) {
	a.run.done = nil
	if a.run.phase == runStopping {
		a.run.phase = runIdle
		if a.run.restart {
			a.run.restart = false
			a.startPipeline(true)
		}
		return
	}
	a.run.phase, a.run.rt = runIdle, nil
	a.health.SetPipeline(nil)
	a.run.err = fmt.Errorf("pipeline runtime ended: %v", err)
	a.log.Error("pipeline runtime ended; restarting", "err", err)
	a.run.retry = time.After(a.run.backoff.Next())
}

func (a *Agent) answerWaiters(err error) {
	for _, w := range a.run.waiters {
		w <- err
	}
	a.run.waiters = nil
}

// rtCall runs a runtime command with a bound, logging a failure.
func (a *Agent) rtCall(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	err := f(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("pipeline command failed", "err", err)
	}
	return err
}

// replanVideo swaps the video front for a new plan (new format, rung,
// device or settings); outputs and recording keep running.
func (a *Agent) replanVideo(why string) {
	if a.run.rt == nil {
		return
	}
	plan, err := a.makePlan(a.ladder.rung)
	if err != nil {
		a.log.Warn("cannot re-plan the video", "why", why, "err", err)
		return
	}
	if reflect.DeepEqual(plan.Video, a.plan.Video) && reflect.DeepEqual(plan.Slate, a.plan.Slate) {
		return
	}
	a.log.Info("video re-planned", "why", why, "device", plan.Video.Device,
		"size", fmt.Sprintf("%dx%d@%d", plan.Video.Width, plan.Video.Height, plan.Video.FPS), "encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung)
	a.plan.Video, a.plan.Encoder, a.plan.Slate = plan.Video, plan.Encoder, plan.Slate
	rt := a.run.rt
	a.rtCall(func(ctx context.Context) error { return rt.ReplaceVideo(ctx, plan.Video, plan.Encoder, plan.Slate) })
}

func (a *Agent) onRuntimeEvent(ev pipelines.Event) {
	switch ev.Kind {
	case pipelines.EventSegment, pipelines.EventOutputUp, pipelines.EventSlateOff, pipelines.EventSlateOn,
		pipelines.EventVideoStarted, pipelines.EventCaptureRunning:
		a.log.Info(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	case pipelines.EventSegmentDelete:
		a.log.Info("old segment deleted to keep space free", "file", ev.Msg)
	case pipelines.EventOutputDown, pipelines.EventRecorderError, pipelines.EventAudioFailed,
		pipelines.EventPictureLost, pipelines.EventPictureBack:
		// The runtime logged it once already, or the input's change does.
	default:
		a.log.Warn(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	}
	switch ev.Kind {
	case pipelines.EventOutputUp:
		a.emit(wire.Event{Type: wire.EvtOutputUp, Part: wire.OutputPart(ev.Part), Output: ev.Part})
	case pipelines.EventOutputDown:
		a.emit(wire.Event{Type: wire.EvtOutputDown, Part: wire.OutputPart(ev.Part), Output: ev.Part, Msg: ev.Msg})
	case pipelines.EventVideoStarted, pipelines.EventCaptureRunning:
		a.ladder.fails = nil
		a.onCapture(false)
	case pipelines.EventPictureLost:
		a.onPicture(true, ev.Msg)
	case pipelines.EventPictureBack:
		a.onPicture(false, "")
	case pipelines.EventVideoFailed:
		if ev.Part != "video" {
			return
		}
		a.onHardwareFailure(ev.Msg)
		a.onCapture(true)
	}
}
