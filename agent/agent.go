// Package agent is the daemon: it loads the config, finds the hardware,
// plans and runs the pipeline, and keeps every part alive for months. It
// never links GStreamer: the pipeline runtime comes in through the
// Runtime interface, wired in cmd/capboxd.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/agent/metrics"
	"capbox/agent/sdnotify"
	"capbox/board"
	"capbox/internal/backoff"
	"capbox/internal/redact"
	"capbox/pipelines"
)

// Runtime is the running pipeline; pipelines/gst.Engine implements it.
type Runtime interface {
	Run(ctx context.Context) error
	Events() <-chan pipelines.Event
	Stats() pipelines.Stats
	SetSlate(ctx context.Context, on bool) error
	ReplaceVideo(ctx context.Context, f pipelines.Front, enc pipelines.EncoderInfo, slate *pipelines.Front) error
	ReplaceAudio(ctx context.Context, f pipelines.Front) error
	SetOutputs(ctx context.Context, outs []pipelines.OutputPlan) error
	SetRecorder(ctx context.Context, r *pipelines.RecorderPlan) error
	RestartOutput(ctx context.Context, name string) error
	StartOutput(ctx context.Context, name string) error
	StopOutput(ctx context.Context, name string) error
	StartRecording(ctx context.Context) error
	StopRecording(ctx context.Context) error
	Snapshot(ctx context.Context) ([]byte, error)
}

// SignalWatcher reports an HDMI receiver's signal (board.SignalWatcher).
type SignalWatcher interface {
	Run(ctx context.Context) error
	Events() <-chan board.SignalEvent
}

// Hotplug reports devices coming and going (board.Hotplug).
type Hotplug interface {
	Run(ctx context.Context) error
	Events() <-chan board.HotplugEvent
}

// Deps is everything the agent uses from outside; cmd/capboxd wires the
// real ones, tests fakes.
type Deps struct {
	Logger *slog.Logger
	// LogLevel is changed at run time (config, set_log_level).
	LogLevel *slog.LevelVar
	// Detect finds the hardware; nil means none (test pattern).
	Detect func(ctx context.Context, cfg config.Config) (board.Detection, error)
	// Elements says which GStreamer elements exist.
	Elements board.ElementChecker
	// NewRuntime makes the pipeline runtime for a plan.
	NewRuntime func(plan pipelines.Plan, log *slog.Logger) Runtime
	// Trial runs a video front briefly (the ladder's check of a rung).
	Trial func(ctx context.Context, f pipelines.Front, timeout time.Duration) (time.Duration, error)
	// NewSignalWatcher watches an HDMI receiver; nil: no watching.
	NewSignalWatcher func(device, stablePath string, log *slog.Logger) SignalWatcher
	// NewHotplug reports device changes; nil: none.
	NewHotplug func(log *slog.Logger) Hotplug
	// ApplyEDID loads the EDID into the detected receivers; nil: skip.
	ApplyEDID func(det board.Detection, setting string) ([]string, error)
	// Health samples the machine; nil makes the live collector.
	Health *health.Collector
	// Notifier talks to systemd; nil makes one from the environment.
	Notifier *sdnotify.Notifier
	// Reload delivers SIGHUP.
	Reload <-chan struct{}
	// ConfigPath is the file a reload re-reads ("" for the embedded default).
	ConfigPath string
	// Environ is the environment for CAPBOX_* overrides.
	Environ []string
	// StateDir keeps the fleet session and the applied config.
	StateDir string
	// Root is "/" on a box; serial numbers are read under it.
	Root string
	// RebootFlag is the file whose creation asks the system to reboot
	// (a root path unit watches it; see overlay/).
	RebootFlag string
	// Version and Versions describe the agent for the fleet.
	Version  string
	Versions map[string]string
	// FleetOptions are extra options for the fleet link (tests).
	FleetOptions []fleet.Option
}

// Timings of the supervisor.
const (
	// StallAfter is how long a part may deliver nothing before it is
	// called lost and restarted.
	StallAfter = 5 * time.Second
	// OutputStallAfter is the same for an output that says it is up.
	OutputStallAfter = 10 * time.Second
	// rungFailures within rungWindow drop the encoder to the next rung.
	rungFailures = 3
	rungWindow   = 2 * time.Minute
	tickEvery    = time.Second
)

// Agent is the daemon.
type Agent struct {
	deps Deps
	log  *slog.Logger

	// Owned by the Run loop.
	cfg        config.Config
	cfgVersion int64
	det        board.Detection
	rung       pipelines.Rung
	plan       pipelines.Plan
	planErr    error
	rt         Runtime
	rtCancel   context.CancelFunc
	rtDone     chan error
	rtStarted  time.Time
	rtRetry    *backoff.Backoff
	rtTimer    <-chan time.Time
	signal     board.Signal
	inputGone  bool
	watchStop  context.CancelFunc
	watchDev   string
	sigEvents  <-chan board.SignalEvent
	failing    bool
	hwFails    []time.Time
	stalled    map[string]bool
	outBytes   map[string]outputProgress
	thermal    health.ThermalStatus
	link       *fleet.Link
	linkCancel context.CancelFunc
	linkDone   chan error
	metricsOff context.CancelFunc
	detecting  bool
	ctx        context.Context

	cmds chan func()

	// Read by the fleet link from its own goroutine.
	mu           sync.Mutex
	state        wire.State
	meta         wire.Meta
	stateChanged chan struct{}
	events       chan wire.Event
	moodNow      map[string]wire.Mood

	health *health.Collector
	notify *sdnotify.Notifier
}

type outputProgress struct {
	bytes uint64
	at    time.Time
}

// New makes an agent for a validated config.
func New(cfg config.Config, deps Deps) *Agent {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.LogLevel == nil {
		deps.LogLevel = new(slog.LevelVar)
	}
	if deps.Root == "" {
		deps.Root = "/"
	}
	if deps.StateDir == "" {
		deps.StateDir = fleet.DefaultStateDir()
	}
	if deps.Notifier == nil {
		deps.Notifier = sdnotify.New()
	}
	a := &Agent{
		deps: deps, log: deps.Logger, cfg: cfg,
		rtRetry:      backoff.New(time.Second, time.Minute),
		stalled:      map[string]bool{},
		outBytes:     map[string]outputProgress{},
		cmds:         make(chan func(), 16),
		stateChanged: make(chan struct{}, 1),
		events:       make(chan wire.Event, 64),
		notify:       deps.Notifier,
	}
	a.health = deps.Health
	if a.health == nil {
		a.health = health.New(health.Options{
			Interval: cfg.Fleet.TelemetryInterval.D(),
			Sys:      health.LiveSys(cfg.RecordPath()),
			Logger:   deps.Logger.With("component", "health"),
		})
	}
	return a
}

// Run runs until ctx ends, then stops every part cleanly (the recording's
// last segment is closed) and returns nil. It never gives up on its own:
// a part that cannot run is retried and reported.
func (a *Agent) Run(ctx context.Context) error {
	a.ctx = ctx
	if applied, ok, err := fleet.LoadApplied(a.deps.StateDir); err != nil {
		a.log.Warn("ignoring the fleet's saved config", "err", err)
	} else if ok {
		if cfg, err := config.LoadBytes(applied.Config, a.deps.Environ); err == nil {
			a.cfg, a.cfgVersion = cfg, applied.Version
			a.log.Info("running the config the fleet applied", "version", applied.Version)
		} else {
			a.log.Warn("the fleet's saved config is no longer valid, using the file", "err", err)
		}
	}
	a.deps.LogLevel.Set(levelOf(a.cfg.Log.Level))

	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	go func() { _ = a.health.Run(hctx) }()
	a.health.SetConfigVersion(a.cfgVersion)

	var hot <-chan board.HotplugEvent
	if a.deps.NewHotplug != nil {
		hp := a.deps.NewHotplug(a.log.With("component", "hotplug"))
		go func() {
			if err := hp.Run(hctx); err != nil && hctx.Err() == nil {
				a.log.Warn("hotplug events unavailable", "err", err)
			}
		}()
		hot = hp.Events()
	}
	wd, err := sdnotify.NewWatchdog(a.notify, a.log)
	if err != nil {
		a.log.Warn("systemd watchdog", "err", err)
	} else {
		go func() { _ = wd.Run(hctx) }()
	}

	a.detectNow(ctx)
	a.startPipeline()
	a.publish()
	a.startMetrics()
	a.startFleet()
	_ = a.notify.Ready()

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	prevHealth, healthChanged := a.health.Watch()
	for {
		var rtEvents <-chan pipelines.Event
		if a.rt != nil {
			rtEvents = a.rt.Events()
		}
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case f := <-a.cmds:
			f()
		case <-a.deps.Reload:
			a.reloadFile()
		case ev := <-rtEvents:
			a.onRuntimeEvent(ev)
		case err := <-a.rtDone:
			a.onRuntimeEnded(err)
		case <-a.rtTimer:
			a.rtTimer = nil
			a.startPipeline()
		case ev, ok := <-a.sigEvents:
			if ok {
				a.onSignal(ev)
			} else {
				a.sigEvents = nil
			}
		case ev := <-hot:
			a.onHotplug(ev)
		case tev := <-a.health.ThermalEvents():
			a.onThermal(tev)
		case <-healthChanged:
			var cur wire.Telemetry
			cur, healthChanged = a.health.Watch()
			if cs := health.Changed(prevHealth, cur); len(cs) > 0 {
				a.log.Info("health", "changes", health.ChangeLine(cs))
			}
			prevHealth = cur
		case err := <-a.linkDone:
			a.linkDone = nil
			if err != nil {
				a.log.Warn("fleet link stopped", "err", err)
			}
		case <-tick.C:
			a.checkStalls()
		}
		if wd != nil {
			wd.Progress()
		}
		a.publish()
	}
}

func (a *Agent) shutdown() {
	a.log.Info("stopping: closing outputs and the recording")
	_ = a.notify.Stopping()
	a.stopWatch()
	a.stopPipeline()
	if a.linkCancel != nil {
		a.linkCancel()
		if a.linkDone != nil {
			select {
			case <-a.linkDone:
			case <-time.After(5 * time.Second):
			}
		}
	}
	if a.metricsOff != nil {
		a.metricsOff()
	}
}

func levelOf(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

// ---- detection and planning ----------------------------------------------

func (a *Agent) detectNow(ctx context.Context) {
	if a.deps.Detect == nil {
		a.det = board.Detection{Board: board.Board{ID: "unknown"}}
		return
	}
	det, err := a.deps.Detect(ctx, a.cfg)
	if err != nil {
		a.log.Warn("detection incomplete", "err", err)
	}
	a.det = det
	a.loadEDID()
	a.signal = a.chosenInput().Signal
	a.setMeta()
}

// loadEDID puts the configured EDID into the receivers (without one a
// TC358743 shows the source a dead display).
func (a *Agent) loadEDID() {
	if a.deps.ApplyEDID == nil || a.cfg.Capture.EDID == "none" {
		return
	}
	done, err := a.deps.ApplyEDID(a.det, a.cfg.Capture.EDID)
	if err != nil {
		a.log.Warn("EDID not loaded", "err", err)
	}
	for _, d := range done {
		a.log.Info("EDID loaded", "device", d)
	}
}

// chosenInput is the detected input the plan uses (zero when the test
// pattern runs).
func (a *Agent) chosenInput() board.VideoInput {
	dev := a.plan.Video.Device
	if dev == "" {
		dev = a.det.Chosen.VideoInput
	}
	for _, in := range a.det.VideoInputs {
		if in.Device == dev || (in.StablePath != "" && in.StablePath == dev) {
			return in
		}
	}
	return board.VideoInput{}
}

// makePlan plans with the current config, detection and rung, and the
// thermal guard's limits.
func (a *Agent) makePlan(rung pipelines.Rung) (pipelines.Plan, error) {
	cfg := a.cfg
	if cfg.Encode.ThermalGuard {
		cfg.Encode.BitrateKbps, cfg.Encode.MaxFPS = a.thermal.Action.Apply(cfg.Encode.BitrateKbps, cfg.Encode.MaxFPS)
	}
	if !cfg.Encode.ZeroCopy && rung < pipelines.RungMMAP {
		rung = pipelines.RungMMAP
	}
	req, err := planRequest(cfg, a.det, rung, a.deps.Elements)
	if err != nil {
		return pipelines.Plan{}, err
	}
	return pipelines.Build(req)
}

// choosePlan walks the ladder: zero-copy hardware, copying hardware,
// software. A rung that touches hardware is tried briefly first.
func (a *Agent) choosePlan(ctx context.Context) (pipelines.Plan, error) {
	var errs []error
	tried := map[pipelines.Rung]bool{}
	for _, rung := range []pipelines.Rung{a.rung, pipelines.RungMMAP, pipelines.RungSoftware} {
		if rung != 0 && rung < a.rung {
			continue
		}
		plan, err := a.makePlan(rung)
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
		if !needsTrial(plan) || a.deps.Trial == nil || !a.signalUsable() {
			return plan, nil
		}
		first, err := a.deps.Trial(ctx, plan.Video, a.cfg.Encode.TrialTimeout.D())
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

// signalUsable: a trial needs frames; an HDMI receiver without signal has
// none, so its rung is trusted until the signal comes.
func (a *Agent) signalUsable() bool {
	return a.signal.State == "" || a.signal.State == board.SignalLocked || a.signal.State == board.SignalUnknown
}

// wantSlate: the input has no picture to show.
func (a *Agent) wantSlate() bool {
	return a.inputGone || !a.signalUsable()
}

// ---- the pipeline runtime --------------------------------------------------

func (a *Agent) startPipeline() {
	plan, err := a.choosePlan(a.ctx)
	if err != nil {
		if a.planErr == nil || a.planErr.Error() != err.Error() {
			a.log.Error("no pipeline can run; retrying", "err", err)
		}
		a.planErr = err
		a.rtTimer = time.After(a.rtRetry.Next())
		return
	}
	a.planErr = nil
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
	a.rt, a.rtCancel, a.rtDone, a.rtStarted = rt, cancel, done, time.Now()
	a.health.SetPipeline(rt)
	a.stalled = map[string]bool{}
	a.outBytes = map[string]outputProgress{}
	if a.wantSlate() {
		a.rtCall(func(ctx context.Context) error { return rt.SetSlate(ctx, true) })
	}
	a.watchInput()
}

// stopPipeline ends the runtime cleanly (EOS) and waits for it.
func (a *Agent) stopPipeline() {
	if a.rt == nil {
		return
	}
	a.rtCancel()
	select {
	case <-a.rtDone:
	case <-time.After(30 * time.Second):
		a.log.Error("pipeline did not stop within 30 s")
	}
	a.rt, a.rtDone = nil, nil
	a.health.SetPipeline(nil)
}

func (a *Agent) restartPipeline() {
	a.stopPipeline()
	a.detectNow(a.ctx)
	a.startPipeline()
}

func (a *Agent) onRuntimeEnded(err error) {
	a.rt, a.rtDone = nil, nil
	a.health.SetPipeline(nil)
	a.planErr = fmt.Errorf("pipeline runtime ended: %v", err)
	a.log.Error("pipeline runtime ended; restarting", "err", err)
	a.rtTimer = time.After(a.rtRetry.Next())
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
	if a.rt == nil {
		return
	}
	plan, err := a.makePlan(a.rung)
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
	rt := a.rt
	a.rtCall(func(ctx context.Context) error { return rt.ReplaceVideo(ctx, plan.Video, plan.Encoder, plan.Slate) })
}

func (a *Agent) onRuntimeEvent(ev pipelines.Event) {
	switch ev.Kind {
	case pipelines.EventSegment, pipelines.EventOutputUp, pipelines.EventSlateOff, pipelines.EventSlateOn, pipelines.EventVideoStarted:
		a.log.Info(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	case pipelines.EventSegmentDelete:
		a.log.Info("old segment deleted to keep space free", "file", ev.Msg)
	case pipelines.EventOutputDown, pipelines.EventRecorderError, pipelines.EventAudioFailed:
		// The runtime logged it once already.
	default:
		a.log.Warn(string(ev.Kind), "part", ev.Part, "msg", ev.Msg)
	}
	switch ev.Kind {
	case pipelines.EventOutputUp:
		a.emit(wire.Event{Type: wire.EvtOutputUp, Part: wire.OutputPart(ev.Part), Output: ev.Part})
	case pipelines.EventOutputDown:
		a.emit(wire.Event{Type: wire.EvtOutputDown, Part: wire.OutputPart(ev.Part), Output: ev.Part, Msg: ev.Msg})
	case pipelines.EventVideoStarted:
		a.failing = false
		a.hwFails = nil
	case pipelines.EventPictureLost:
		a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: ev.Msg, Data: map[string]any{"gone": false, "picture": "flat"}})
	case pipelines.EventPictureBack:
		a.emit(wire.Event{Type: wire.EvtSignalLocked, Part: wire.PartCapture, Msg: "picture back"})
	case pipelines.EventVideoFailed:
		if ev.Part != "video" {
			return
		}
		a.failing = true
		a.onVideoFailed(ev)
	}
}

// onVideoFailed drops the encoder a rung when hardware keeps failing at
// run time (a Pi's "could not map buffer" after minutes, say).
func (a *Agent) onVideoFailed(ev pipelines.Event) {
	if !a.plan.Encoder.Hardware || a.wantSlate() {
		return
	}
	now := time.Now()
	a.hwFails = append(a.hwFails, now)
	for len(a.hwFails) > 0 && now.Sub(a.hwFails[0]) > rungWindow {
		a.hwFails = a.hwFails[1:]
	}
	if len(a.hwFails) < rungFailures {
		return
	}
	from := a.plan.Encoder.Rung
	a.rung = from + 1
	a.hwFails = nil
	a.log.Warn("encoder keeps failing, falling to the next rung", "from", from, "to", a.rung, "err", ev.Msg)
	a.replanVideo("encoder fallback")
	a.emit(wire.Event{Type: wire.EvtEncoderFallback, Part: wire.PartEncoder, Msg: ev.Msg,
		Data: map[string]any{"from": from.String(), "to": a.plan.Encoder.Rung.String(), "encoder": a.plan.Encoder.Element}})
}

// ---- signal and hotplug ----------------------------------------------------

// watchInput follows the chosen input's signal when it is an HDMI receiver.
func (a *Agent) watchInput() {
	in := a.chosenInput()
	dev := in.Device
	if a.deps.NewSignalWatcher == nil || !in.DVTimings || a.plan.Video.Kind != pipelines.SourceV4L2 {
		a.stopWatch()
		return
	}
	if dev == a.watchDev && a.watchStop != nil {
		return
	}
	a.stopWatch()
	w := a.deps.NewSignalWatcher(dev, in.StablePath, a.log.With("component", "signal", "device", dev))
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	go func() { _ = w.Run(ctx) }()
	a.watchStop, a.watchDev, a.sigEvents = cancel, dev, w.Events()
}

func (a *Agent) stopWatch() {
	if a.watchStop != nil {
		a.watchStop()
	}
	a.watchStop, a.watchDev, a.sigEvents = nil, "", nil
}

func (a *Agent) onSignal(ev board.SignalEvent) {
	wasUsable := !a.wantSlate()
	prev := a.signal
	a.inputGone = ev.Gone
	a.signal = ev.Signal
	if ev.Gone {
		a.signal.State = board.SignalNone
	}
	nowUsable := !a.wantSlate()
	if a.signal.State == board.SignalLocked {
		// Keep detection in step, so a re-plan uses the live format and a
		// device that came back under a new node.
		for i := range a.det.VideoInputs {
			if in := &a.det.VideoInputs[i]; in.Device == a.watchDev || in.Device == ev.Device {
				in.Signal, in.Device = a.signal, ev.Device
			}
		}
	}
	switch {
	case wasUsable && !nowUsable:
		a.log.Warn("signal lost", "state", a.signal.State, "gone", ev.Gone)
		a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: string(a.signal.State), Data: map[string]any{"gone": ev.Gone}})
		// The state goes out before the pipeline is asked to switch:
		// building the slate's encoder can take seconds on a busy box.
		a.publish()
		if rt := a.rt; rt != nil {
			a.rtCall(func(ctx context.Context) error { return rt.SetSlate(ctx, true) })
		}
	case !wasUsable && nowUsable:
		a.log.Info("signal locked", "format", formatName(a.signal))
		a.emit(wire.Event{Type: wire.EvtSignalLocked, Part: wire.PartCapture, Msg: formatName(a.signal)})
		a.publish()
		a.replanVideo("signal locked")
		if rt := a.rt; rt != nil {
			a.rtCall(func(ctx context.Context) error { return rt.SetSlate(ctx, false) })
		}
	case nowUsable && formatName(prev) != formatName(a.signal):
		a.log.Info("input format changed", "from", formatName(prev), "to", formatName(a.signal))
		a.replanVideo("format changed")
	}
}

// onHotplug re-detects after a video device came or went (debounced by
// board), off the loop, and follows the input by its stable path.
func (a *Agent) onHotplug(ev board.HotplugEvent) {
	if ev.Subsystem != "video4linux" || a.detecting {
		return
	}
	a.log.Info("device change", "action", ev.Action, "device", ev.Device)
	a.detecting = true
	cfg := a.cfg
	go func() {
		var det board.Detection
		var err error
		if a.deps.Detect != nil {
			det, err = a.deps.Detect(a.ctx, cfg)
		}
		a.post(func() { a.detected(det, err) })
	}()
}

func (a *Agent) detected(det board.Detection, err error) {
	a.detecting = false
	if err != nil {
		a.log.Warn("detection incomplete", "err", err)
	}
	oldDev := a.plan.Video.Device
	a.det = det
	a.loadEDID()
	a.setMeta()
	in := a.chosenInput()
	if in.Device == "" && a.plan.Video.Kind == pipelines.SourceV4L2 {
		// Our input is gone: show the slate until it is back.
		if !a.inputGone {
			a.inputGone = true
			a.log.Warn("capture input unplugged", "device", oldDev)
			a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: "unplugged", Data: map[string]any{"gone": true}})
			a.publish()
			if rt := a.rt; rt != nil {
				a.rtCall(func(ctx context.Context) error { return rt.SetSlate(ctx, true) })
			}
		}
		return
	}
	wasGone := a.inputGone
	a.inputGone = false
	a.signal = in.Signal
	a.replanVideo("device change")
	a.watchInput()
	if wasGone && !a.wantSlate() {
		a.log.Info("capture input back", "device", in.Device)
		a.emit(wire.Event{Type: wire.EvtSignalLocked, Part: wire.PartCapture, Msg: formatName(a.signal)})
		if rt := a.rt; rt != nil {
			a.rtCall(func(ctx context.Context) error { return rt.SetSlate(ctx, false) })
		}
	}
}

// post runs f on the loop (from another goroutine).
func (a *Agent) post(f func()) {
	select {
	case a.cmds <- f:
	case <-a.ctx.Done():
	}
}

// ---- thermal ---------------------------------------------------------------

func (a *Agent) onThermal(ev health.ThermalEvent) {
	a.thermal = ev.Status
	a.emit(ev.WireEvent())
	if a.cfg.Encode.ThermalGuard {
		a.replanVideo("thermal guard: " + string(ev.Status.Level))
	}
}

// ---- watchdog --------------------------------------------------------------

// checkStalls marks parts that deliver nothing as lost and restarts them.
func (a *Agent) checkStalls() {
	if a.rt == nil || time.Since(a.rtStarted) < 2*StallAfter {
		return
	}
	st := a.rt.Stats()
	now := time.Now()
	stalled := map[string]bool{}
	if st.Video.Running && !st.Video.LastFrame.IsZero() && now.Sub(st.Video.LastFrame) > StallAfter {
		stalled[wire.PartEncoder] = true
		if !st.Slate {
			stalled[wire.PartCapture] = true
		}
	}
	for _, o := range st.Outputs {
		part := wire.OutputPart(o.Name)
		p, ok := a.outBytes[o.Name]
		if !ok || o.Bytes != p.bytes || o.State != pipelines.OutputUp {
			a.outBytes[o.Name] = outputProgress{bytes: o.Bytes, at: now}
			continue
		}
		if now.Sub(p.at) > OutputStallAfter {
			stalled[part] = true
		}
	}
	for part := range stalled {
		if a.stalled[part] {
			continue
		}
		a.log.Warn("part stalled, restarting it", "part", part)
		rt := a.rt
		switch {
		case part == wire.PartEncoder:
			plan := a.plan
			a.rtCall(func(ctx context.Context) error { return rt.ReplaceVideo(ctx, plan.Video, plan.Encoder, plan.Slate) })
		case strings.HasPrefix(part, "output:"):
			name := strings.TrimPrefix(part, "output:")
			a.rtCall(func(ctx context.Context) error { return rt.RestartOutput(ctx, name) })
			a.outBytes[name] = outputProgress{bytes: 0, at: now}
		}
	}
	a.stalled = stalled
}

// ---- state for the fleet, systemd and logs ------------------------------------

func (a *Agent) view() view {
	v := view{
		running: a.rt != nil, signal: a.signal, inputGone: a.inputGone, videoFailing: a.failing,
		stalled: a.stalled, startedAt: a.rtStarted, now: time.Now(), thermal: "",
		outputsWanted: len(a.cfg.Outputs) > 0 || a.cfg.Record.Enabled,
	}
	if a.planErr != nil {
		v.planErr = a.planErr.Error()
	}
	if a.rt != nil {
		v.stats = a.rt.Stats()
	}
	if a.link != nil {
		v.fleet = a.link.Mood()
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
		Capture:       wire.CaptureState{Signal: string(a.signalState(v)), Format: formatName(a.signal)},
		Outputs:       map[string]string{},
		Recording:     v.stats.Recorder.Recording,
		Alerts:        alerts(v, ms),
		ConfigVersion: a.cfgVersion,
	}
	for _, o := range v.stats.Outputs {
		st.Outputs[o.Name] = string(o.State)
	}
	a.mu.Lock()
	old := a.state
	changed := !reflect.DeepEqual(old.Moods, st.Moods) || old.Mode != st.Mode || old.Capture != st.Capture ||
		!reflect.DeepEqual(old.Outputs, st.Outputs) || old.Recording != st.Recording ||
		!reflect.DeepEqual(old.Alerts, st.Alerts) || old.ConfigVersion != st.ConfigVersion
	a.state = st
	a.moodNow = ms
	a.mu.Unlock()
	if !changed {
		return
	}
	a.log.Info("state", "mode", st.Mode, "mood", st.Mood, "signal", st.Capture.Signal, "alerts", strings.Join(st.Alerts, "; "))
	_ = a.notify.Status(sdnotify.StatusText(st.Mode, ms))
	select {
	case a.stateChanged <- struct{}{}:
	default:
	}
}

func (a *Agent) signalState(v view) board.SignalState {
	switch {
	case v.inputGone, v.stats.Video.NoPicture:
		return board.SignalNone
	case a.plan.Video.Kind != pipelines.SourceV4L2:
		return board.SignalUnknown
	case a.signal.State == "":
		return board.SignalUnknown
	}
	return a.signal.State
}

// emit queues a fleet event; a full queue drops the oldest.
func (a *Agent) emit(ev wire.Event) {
	for {
		select {
		case a.events <- ev:
			return
		default:
			select {
			case <-a.events:
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
	versions := map[string]string{}
	for k, v := range a.deps.Versions {
		versions[k] = v
	}
	if b, err := os.ReadFile(filepath.Join(a.deps.Root, "proc/sys/kernel/osrelease")); err == nil {
		versions["kernel"] = strings.TrimSpace(string(b))
	}
	bootID, _ := os.ReadFile(filepath.Join(a.deps.Root, "proc/sys/kernel/random/boot_id"))
	a.mu.Lock()
	a.meta = wire.Meta{
		Agent: a.deps.Version, Versions: versions, BootID: strings.TrimSpace(string(bootID)),
		Detection: det, Outputs: outs, TelemetryIntervalS: int(a.cfg.Fleet.TelemetryInterval.D() / time.Second),
	}
	a.mu.Unlock()
}

// ---- config ------------------------------------------------------------------

// reloadFile re-reads the config file on SIGHUP.
func (a *Agent) reloadFile() {
	_ = a.notify.Reloading()
	defer func() { _ = a.notify.Ready() }()
	path := a.deps.ConfigPath
	cfg, err := config.Load(path, path != "", a.deps.Environ)
	if err != nil {
		a.log.Error("config reload refused, the old config keeps running", "errors", config.AsErrors(err).Error())
		a.emit(wire.Event{Type: wire.EvtConfigRejected, Msg: config.AsErrors(err).Error()})
		return
	}
	if errs := a.apply(cfg, 0); len(errs) > 0 {
		a.log.Error("config reload refused, the old config keeps running", "errors", config.Errors(errs).Error())
		return
	}
	a.log.Info("config reloaded", "path", path)
}

// apply switches to a validated config, restarting only what changed. It
// refuses (and changes nothing) when the new config cannot be planned.
func (a *Agent) apply(cfg config.Config, version int64) []config.FieldError {
	old := a.cfg
	if cfg.Device.ID != old.Device.ID && a.link != nil {
		return []config.FieldError{{Path: "device.id", Msg: "the device id cannot change while connected to the fleet"}}
	}
	a.cfg = cfg
	plan, err := a.makePlan(a.rung)
	if err != nil && a.rt != nil {
		a.cfg = old
		return []config.FieldError{{Msg: "cannot plan a pipeline: " + err.Error()}}
	}
	a.cfgVersion = version
	a.health.SetConfigVersion(version)
	a.deps.LogLevel.Set(levelOf(cfg.Log.Level))
	if cfg.Fleet.TelemetryInterval != old.Fleet.TelemetryInterval {
		a.health.SetInterval(cfg.Fleet.TelemetryInterval.D())
	}
	if cfg.RecordPath() != old.RecordPath() {
		a.health.SetSys(health.LiveSys(cfg.RecordPath()))
	}
	if cfg.Metrics != old.Metrics {
		a.startMetrics()
	}
	if !reflect.DeepEqual(cfg.Fleet, old.Fleet) || cfg.Device != old.Device {
		a.stopFleet()
		a.startFleet()
	}
	a.setMeta()
	if a.rt == nil {
		a.rtTimer = nil
		a.startPipeline()
		return nil
	}
	if cfg.Capture.Video != old.Capture.Video || cfg.Capture.EDID != old.Capture.EDID {
		a.detectNow(a.ctx)
		if plan, err = a.makePlan(a.rung); err != nil {
			return nil
		}
	}
	rt := a.rt
	if cfg.Encode != old.Encode || cfg.Capture.Video != old.Capture.Video || cfg.Slate != old.Slate {
		a.replanVideo("config changed")
	}
	if !reflect.DeepEqual(plan.Audio, a.plan.Audio) {
		a.plan.Audio = plan.Audio
		a.rtCall(func(ctx context.Context) error { return rt.ReplaceAudio(ctx, plan.Audio) })
	}
	if !reflect.DeepEqual(plan.Outputs, a.plan.Outputs) {
		a.plan.Outputs = plan.Outputs
		a.rtCall(func(ctx context.Context) error { return rt.SetOutputs(ctx, plan.Outputs) })
	}
	if !reflect.DeepEqual(plan.Recorder, a.plan.Recorder) {
		a.plan.Recorder = plan.Recorder
		a.rtCall(func(ctx context.Context) error { return rt.SetRecorder(ctx, plan.Recorder) })
	}
	return nil
}

// effectiveSHA256 identifies the running config (for config/reported).
func effectiveSHA256(cfg config.Config) string {
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ---- metrics and fleet -------------------------------------------------------

func (a *Agent) startMetrics() {
	if a.metricsOff != nil {
		a.metricsOff()
		a.metricsOff = nil
	}
	if a.cfg.Metrics.Listen == "" {
		return
	}
	m, err := metrics.New(a.cfg.Metrics.Listen, metricsSource{a})
	if err != nil {
		a.log.Error("metrics endpoint", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	a.metricsOff = cancel
	go func() {
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	a.log.Info("metrics endpoint", "listen", a.cfg.Metrics.Listen)
}

// metricsSource gives the endpoint the collector's sample and the moods.
type metricsSource struct{ a *Agent }

func (m metricsSource) Latest() wire.Telemetry { return m.a.health.Latest() }

func (m metricsSource) Moods() map[string]wire.Mood {
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	out := make(map[string]wire.Mood, len(m.a.moodNow))
	for k, v := range m.a.moodNow {
		out[k] = v
	}
	return out
}

func (m metricsSource) Thermal() health.ThermalStatus { return m.a.health.Thermal() }

func (a *Agent) startFleet() {
	if a.cfg.Fleet.Broker == "" {
		return
	}
	id, err := DeviceID(a.cfg.Device.ID, a.deps.Root)
	if err != nil {
		a.log.Error("no device id for the fleet", "err", err)
		return
	}
	opts := append([]fleet.Option{fleet.WithStateDir(a.deps.StateDir), fleet.WithSecrets(ConfigSecrets(a.cfg)...)}, a.deps.FleetOptions...)
	link, err := fleet.New(a.cfg.Fleet, id, box{a}, a.log.With("component", "fleet"), opts...)
	if err != nil {
		a.log.Error("fleet link", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	a.link, a.linkCancel, a.linkDone = link, cancel, done
	a.log.Info("fleet link", "broker", a.cfg.Fleet.Broker, "id", id)
}

func (a *Agent) stopFleet() {
	if a.linkCancel == nil {
		return
	}
	a.linkCancel()
	if a.linkDone != nil {
		select {
		case <-a.linkDone:
		case <-time.After(5 * time.Second):
		}
	}
	a.link, a.linkCancel, a.linkDone = nil, nil, nil
}
