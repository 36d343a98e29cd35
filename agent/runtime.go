package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/internal/backoff"
	"capbox/pipelines"
)

// runSlot is the pipeline runtime the agent runs, and its restart timing.
type runSlot struct {
	rt      Runtime
	cancel  context.CancelFunc
	done    chan error
	started time.Time
	// err: why no runtime runs (no plan, or the last one ended).
	err error
	// backoff spaces restarts after failures; retry fires the next one.
	backoff *backoff.Backoff
	retry   <-chan time.Time
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

func (a *Agent) startPipeline() {
	plan, err := a.choosePlan(a.ctx)
	if err != nil {
		if a.run.err == nil || a.run.err.Error() != err.Error() {
			a.log.Error("no pipeline can run; retrying", "err", err)
		}
		a.run.err = err
		a.run.retry = time.After(a.run.backoff.Next())
		return
	}
	a.run.err = nil
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

// stopPipeline ends the runtime cleanly (EOS) and waits for it.
func (a *Agent) stopPipeline() {
	if a.run.rt == nil {
		return
	}
	a.run.cancel()
	select {
	case <-a.run.done:
	case <-time.After(30 * time.Second):
		a.log.Error("pipeline did not stop within 30 s")
	}
	a.run.rt, a.run.done = nil, nil
	a.health.SetPipeline(nil)
}

func (a *Agent) restartPipeline() {
	a.stopPipeline()
	a.detectNow(a.ctx)
	a.startPipeline()
}

func (a *Agent) onRuntimeEnded(err error) {
	a.run.rt, a.run.done = nil, nil
	a.health.SetPipeline(nil)
	a.run.err = fmt.Errorf("pipeline runtime ended: %v", err)
	a.log.Error("pipeline runtime ended; restarting", "err", err)
	a.run.retry = time.After(a.run.backoff.Next())
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
