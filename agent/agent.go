// Package agent is the daemon: it loads the config, finds the hardware,
// plans and runs the pipeline, and keeps every part alive. It never links
// GStreamer: the pipeline runtime comes in through the Runtime interface.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"capbox/agent/config"
	"capbox/board"
	"capbox/pipelines"
)

// Runtime is the running pipeline; pipelines/gst.Engine implements it.
type Runtime interface {
	Run(ctx context.Context) error
	Events() <-chan pipelines.Event
	Stats() pipelines.Stats
	SetSlate(ctx context.Context, on bool) error
	ReplaceVideo(ctx context.Context, f pipelines.Front, enc pipelines.EncoderInfo, slate *pipelines.Front) error
	SetOutputs(ctx context.Context, outs []pipelines.OutputPlan) error
	SetRecorder(ctx context.Context, r *pipelines.RecorderPlan) error
	RestartOutput(ctx context.Context, name string) error
	StartOutput(ctx context.Context, name string) error
	StopOutput(ctx context.Context, name string) error
	StartRecording(ctx context.Context) error
	StopRecording(ctx context.Context) error
	Snapshot(ctx context.Context) ([]byte, error)
}

// Deps is everything the agent uses from outside; cmd/capboxd wires it.
type Deps struct {
	Logger *slog.Logger
	// LogLevel is changed at run time (config reload, set_log_level).
	LogLevel *slog.LevelVar
	// Detect finds the hardware; nil means no hardware (test source).
	Detect func(ctx context.Context, cfg config.Config) (board.Detection, error)
	// Elements says which GStreamer elements exist.
	Elements board.ElementChecker
	// NewRuntime makes the pipeline runtime for a plan.
	NewRuntime func(plan pipelines.Plan, log *slog.Logger) Runtime
	// Trial runs a video front briefly and reports the first buffer's delay.
	Trial func(ctx context.Context, f pipelines.Front, timeout time.Duration) (time.Duration, error)
	// Version is the agent's version string.
	Version string
}

// TrialTimeout bounds a rung's trial run.
const TrialTimeout = 5 * time.Second

// HealthInterval is how often health is collected and, when it changed,
// logged.
const HealthInterval = 10 * time.Second

// Agent is the daemon.
type Agent struct {
	cfg  config.Config
	deps Deps
	log  *slog.Logger
}

// New makes an agent for a validated config.
func New(cfg config.Config, deps Deps) *Agent {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, deps: deps, log: deps.Logger}
}

// Run runs until ctx ends, then stops the pipeline cleanly. It returns an
// error only when nothing at all can run.
func (a *Agent) Run(ctx context.Context) error {
	det := a.detect(ctx)
	plan, err := a.choosePlan(ctx, det)
	if err != nil {
		return err
	}
	a.log.Info("pipeline planned",
		"video", plan.Video.Kind, "device", plan.Video.Device,
		"size", fmt.Sprintf("%dx%d@%d", plan.Video.Width, plan.Video.Height, plan.Video.FPS),
		"encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "reason", plan.Encoder.Reason,
		"audio", plan.Audio.Kind, "outputs", len(plan.Outputs), "recording", plan.Recorder != nil)
	rt := a.deps.NewRuntime(plan, a.log.With("component", "pipeline"))
	runCtx, stopRuntime := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- rt.Run(runCtx) }()

	health := time.NewTicker(HealthInterval)
	defer health.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping: closing outputs and the recording")
			stopRuntime()
			return <-done
		case err := <-done:
			stopRuntime()
			return fmt.Errorf("pipeline runtime ended: %w", err)
		case ev := <-rt.Events():
			a.logEvent(ev)
		case <-health.C:
			st := rt.Stats()
			if key := healthKey(st); key != last {
				a.log.Info("health", "summary", healthLine(st))
				last = key
			}
		}
	}
}

func (a *Agent) detect(ctx context.Context) board.Detection {
	if a.deps.Detect == nil {
		return board.Detection{Board: board.Board{ID: "unknown"}}
	}
	det, err := a.deps.Detect(ctx, a.cfg)
	if err != nil {
		a.log.Warn("detection incomplete", "err", err)
	}
	return det
}

// choosePlan walks the fallback ladder: zero-copy hardware, copying
// hardware, software. A rung that touches hardware is tried briefly first.
func (a *Agent) choosePlan(ctx context.Context, det board.Detection) (pipelines.Plan, error) {
	var errs []error
	tried := map[pipelines.Rung]bool{}
	for _, rung := range []pipelines.Rung{0, pipelines.RungMMAP, pipelines.RungSoftware} {
		req, err := planRequest(a.cfg, det, rung, a.deps.Elements)
		if err != nil {
			return pipelines.Plan{}, err
		}
		plan, err := pipelines.Build(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tried[plan.Encoder.Rung] {
			continue
		}
		tried[plan.Encoder.Rung] = true
		if !needsTrial(plan) || a.deps.Trial == nil {
			return plan, nil
		}
		first, err := a.deps.Trial(ctx, plan.Video, TrialTimeout)
		if err == nil {
			a.log.Info("encoder trial passed", "encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "first_buffer", first.Round(time.Millisecond))
			return plan, nil
		}
		a.log.Warn("encoder trial failed, trying the next rung", "encoder", plan.Encoder.Element, "rung", plan.Encoder.Rung, "err", err)
		errs = append(errs, fmt.Errorf("rung %s: %w", plan.Encoder.Rung, err))
	}
	return pipelines.Plan{}, fmt.Errorf("no pipeline can run: %w", errors.Join(errs...))
}

// needsTrial: hardware and capture devices can fail in ways only a run
// shows; a software encoder on the test pattern cannot.
func needsTrial(p pipelines.Plan) bool {
	return p.Encoder.Hardware || p.Video.Kind == pipelines.SourceV4L2
}

func (a *Agent) logEvent(ev pipelines.Event) {
	switch ev.Kind {
	case pipelines.EventSegment, pipelines.EventOutputUp, pipelines.EventSlateOff, pipelines.EventVideoStarted:
		a.log.Info(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	case pipelines.EventSegmentDelete:
		a.log.Info("old segment deleted to keep space free", "file", ev.Msg)
	default:
		a.log.Warn(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	}
}

// healthKey is the part of health whose change is worth a log line:
// states, not counters.
func healthKey(s pipelines.Stats) string {
	key := fmt.Sprintf("%s %dx%d@%d slate=%v audio=%s silent=%v", s.Video.Kind, s.Video.Width, s.Video.Height, s.Video.FPS, s.Slate, s.Audio.Kind, s.Audio.Silent)
	for _, o := range s.Outputs {
		key += " " + o.Name + "=" + string(o.State)
	}
	return key + fmt.Sprintf(" rec=%v", s.Recorder.Recording)
}

// healthLine is a one-line summary of the pipeline's state.
func healthLine(s pipelines.Stats) string {
	line := fmt.Sprintf("video=%s %dx%d@%d frames=%d", s.Video.Kind, s.Video.Width, s.Video.Height, s.Video.FPS, s.Video.Frames)
	if s.Slate {
		line += " slate"
	}
	line += fmt.Sprintf(" audio=%s rms=%.0fdBFS", s.Audio.Kind, s.Audio.RMSDBFS)
	for _, o := range s.Outputs {
		line += fmt.Sprintf(" %s=%s", o.Name, o.State)
	}
	if s.Recorder.Enabled {
		line += fmt.Sprintf(" recording=%v segments=%d", s.Recorder.Recording, s.Recorder.Segments)
	}
	return line
}
