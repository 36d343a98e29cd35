// Package agent is the daemon: it loads the config, finds the hardware,
// plans and runs the pipeline, and keeps every part alive for months. It
// never links GStreamer: the pipeline runtime comes in through the
// Runtime interface, wired in cmd/capboxd.
//
// The Agent's state is owned by its Run loop (capbox/internal/loop); the
// files split it by concern: input.go (the capture input and what goes on
// air), ladder.go (the encoder ladder), runtime.go (the pipeline runtime),
// stalls.go, publish.go (state for the fleet, systemd and logs), apply.go
// (config), services.go (metrics, fleet link, thermal), box.go (the fleet's
// commands).
package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/agent/sdnotify"
	"capbox/board"
	"capbox/internal/loop"
	"capbox/pipelines"
)

// Runtime is the running pipeline; pipelines/gst.Engine implements it.
type Runtime interface {
	Run(ctx context.Context) error
	Events() <-chan pipelines.Event
	Stats() pipelines.Stats
	SetOnAir(ctx context.Context, on pipelines.OnAir) error
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
	tickEvery        = time.Second
)

// Agent is the daemon.
type Agent struct {
	deps Deps
	log  *slog.Logger
	loop *loop.Loop
	ctx  context.Context

	// Owned by the Run loop.
	cfg        config.Config
	cfgVersion int64
	det        board.Detection
	// detecting: a re-detection after a hotplug event is under way.
	detecting bool
	plan      pipelines.Plan
	in        input       // the chosen capture input; decides what goes on air
	watch     signalWatch // follows the chosen HDMI receiver's signal
	ladder    ladder      // the encoder rung and its recent failures
	run       runSlot     // the pipeline runtime
	stalls    stallWatch
	thermal   health.ThermalStatus
	svc       services // the fleet link and the metrics endpoint

	// applyMu lets one config be applied at a time (fleet, SIGHUP).
	applyMu sync.Mutex
	// ready: the first plan job ended and the services started.
	ready bool
	// stopping: shutdown has begun; work posted from other goroutines is
	// refused from then on.
	stopping bool

	// pub is what other goroutines read: the fleet link, the metrics page.
	pub    *published
	health *health.Collector
	notify *sdnotify.Notifier
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
		loop:   loop.New(16),
		run:    newRunSlot(),
		stalls: newStallWatch(),
		pub:    newPublished(),
		notify: deps.Notifier,
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
	a.loadApplied()
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

	// Detection and the encoder trials run off the loop; the fleet link,
	// the metrics page and systemd's READY follow when the first plan job
	// has ended (notifyReady), so the first meta carries the detection.
	a.setMeta()
	a.startPipeline(true)
	a.publish()

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	prevHealth, healthChanged := a.health.Watch()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case f := <-a.loop.C():
			f()
		case <-a.deps.Reload:
			go a.reload(ctx)
		case ev := <-a.run.events():
			a.onRuntimeEvent(ev)
		case err := <-a.run.done:
			a.onRuntimeDone(err)
		case <-a.run.retry:
			a.run.retry = nil
			a.startPipeline(false)
		case ev, ok := <-a.watch.events:
			if ok {
				a.onSignal(ev)
			} else {
				a.watch.events = nil
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
		case err := <-a.svc.linkDone:
			a.svc.linkDone = nil
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

// stopBudget bounds the whole shutdown: below the unit's TimeoutStopSec
// (20 s, overlay/usr/lib/systemd/system/capboxd.service), so that systemd
// never has to kill a box that is closing its recording.
const stopBudget = 12 * time.Second

// shutdown stops every part at once, each within what is left of
// stopBudget: the pipeline first (it closes and flushes the recording), the
// fleet link (graceful offline), the metrics page and the signal watch. A
// part that misses the deadline is logged and abandoned.
func (a *Agent) shutdown() {
	a.log.Info("stopping: closing outputs and the recording")
	_ = a.notify.Stopping()
	deadline := time.Now().Add(stopBudget)
	// Work queued from other goroutines is answered (refused), not run:
	// nothing may start while the parts stop.
	a.stopping = true
	a.loop.Stop()
	a.loop.Drain()
	a.answerWaiters(errStopping)

	parts := map[string]<-chan error{}
	if a.run.cancel != nil && a.run.done != nil {
		a.run.cancel()
		parts["pipeline"] = a.run.done
	}
	if a.svc.linkCancel != nil && a.svc.linkDone != nil {
		a.svc.linkCancel()
		parts["fleet link"] = a.svc.linkDone
	}
	a.stopMetrics()
	a.stopWatch()
	for name, done := range parts {
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			a.log.Error("part did not stop in time; abandoned", "part", name, "budget", stopBudget)
		}
	}
}

// errStopping answers waiters still waiting when the agent stops.
var errStopping = errors.New("the agent is stopping")

// post runs f on the loop (from another goroutine); dropped once the agent
// is stopping.
func (a *Agent) post(f func()) {
	a.loop.Post(func() {
		if !a.stopping {
			f()
		}
	})
}

func levelOf(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
