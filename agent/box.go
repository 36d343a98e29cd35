package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/internal/loop"
	"capbox/pipelines"
)

// box is the agent as the fleet link sees it. The quick methods answer
// from published values; commands and config run on the agent's loop.
type box struct{ a *Agent }

func (b box) Meta() wire.Meta               { return b.a.pub.Meta() }
func (b box) State() wire.State             { return b.a.pub.State() }
func (b box) Telemetry() wire.Telemetry     { return b.a.health.Latest() }
func (b box) StateChanged() <-chan struct{} { return b.a.pub.changed }
func (b box) Events() <-chan wire.Event     { return b.a.pub.events }

var _ fleet.Viewable = box{}

func (p *published) runtime() Runtime {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rt
}

// Preview is the snapshot's picture (the newest keyframe, decoded apart
// from the pipeline and scaled to 320x180), for a viewer's lease.
func (b box) Preview(ctx context.Context) ([]byte, error) {
	rt := b.a.pub.runtime()
	if rt == nil {
		return nil, errors.New("the pipeline is not running")
	}
	return rt.Snapshot(ctx)
}

// leveler is a runtime that reads its audio level without its loop
// (gst.Engine).
type leveler interface {
	Level() (peak, rms float64, at time.Time)
}

// Meter is the audio level the runtime measures (its level element, five
// times a second): the loudest channel, as one.
func (b box) Meter() ([]wire.MeterChannel, time.Time, bool) {
	lv, ok := b.a.pub.runtime().(leveler)
	if !ok {
		return nil, time.Time{}, false
	}
	peak, rms, at := lv.Level()
	if at.IsZero() {
		return nil, time.Time{}, false
	}
	return []wire.MeterChannel{{PeakDBFS: peak, RMSDBFS: rms}}, at, true
}

// onLoop runs f on the agent's loop and waits for it; once the agent is
// stopping, the answer is "shutdown".
func (a *Agent) onLoop(ctx context.Context, f func() error) error {
	err := a.loop.Do(ctx, func() error {
		if a.stopping {
			return loop.ErrStopped
		}
		return f()
	})
	if errors.Is(err, loop.ErrStopped) {
		return &fleet.CommandError{Code: wire.CodeShutdown, Msg: "the agent is stopping"}
	}
	return err
}

// boxCommand runs one fleet command on the agent's loop. Work that may take
// seconds without touching the agent's state (a snapshot's decoding) goes
// in the returned continuation, which runs off the loop.
type boxCommand func(a *Agent, ctx context.Context, args wire.Args, res *fleet.Result) (then func() error, err error)

// boxCommands are the box commands of wire.Commands this agent runs, by
// name; any other is unsupported.
var boxCommands = map[string]boxCommand{
	wire.CmdRestartPipeline: func(a *Agent, ctx context.Context, _ wire.Args, _ *fleet.Result) (func() error, error) {
		ready := make(chan error, 1)
		a.restartPipeline(ready)
		return func() error {
			// The answer waits for the new runtime (or why none runs).
			select {
			case err := <-ready:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}, nil
	},
	wire.CmdRestartOutput:  outputCommand(Runtime.RestartOutput),
	wire.CmdStartOutput:    outputCommand(Runtime.StartOutput),
	wire.CmdStopOutput:     outputCommand(Runtime.StopOutput),
	wire.CmdStartRecording: recordingCommand(Runtime.StartRecording),
	wire.CmdStopRecording:  recordingCommand(Runtime.StopRecording),
	wire.CmdSnapshot: func(a *Agent, ctx context.Context, _ wire.Args, res *fleet.Result) (func() error, error) {
		rt, err := a.runtime()
		if err != nil {
			return nil, err
		}
		return func() error {
			// Decoding runs apart from the pipeline and the agent's loop.
			sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
			defer cancel()
			jpeg, err := rt.Snapshot(sctx)
			if err != nil {
				return fleet.Errorf(wire.CodeNoSignal, "no picture: %v", err)
			}
			res.JPEG = jpeg
			return nil
		}, nil
	},
	wire.CmdSetLogLevel: func(a *Agent, _ context.Context, args wire.Args, _ *fleet.Result) (func() error, error) {
		a.deps.LogLevel.Set(levelOf(args.Level))
		a.log.Info("log level set", "level", args.Level)
		return nil, nil
	},
	wire.CmdDetect: func(a *Agent, ctx context.Context, _ wire.Args, res *fleet.Result) (func() error, error) {
		job := planJob{cfg: a.cfg, deps: a.deps, log: a.log}
		return func() error {
			// Detection takes seconds: off the loop, then taken in on it.
			det := job.detectHardware(ctx)
			res.Data = det
			return a.onLoop(ctx, func() error {
				a.detected(det, nil)
				return nil
			})
		}, nil
	},
	wire.CmdReboot: func(a *Agent, _ context.Context, _ wire.Args, _ *fleet.Result) (func() error, error) {
		if a.deps.RebootFlag == "" {
			return nil, fleet.ErrUnsupported
		}
		// Answer first; then leave the fleet saying why, then ask.
		go a.reboot()
		return nil, nil
	},
}

// snapshotTimeout bounds a snapshot's decoding.
const snapshotTimeout = 5 * time.Second

// runtime is the running pipeline, or the refusal a command gives without
// one.
func (a *Agent) runtime() (Runtime, error) {
	if a.run.rt == nil {
		return nil, fleet.Rejectf(wire.CodeNotRunning, "the pipeline is not running")
	}
	return a.run.rt, nil
}

// outputCommand acts on the configured output the arguments name; the
// runtime does it off the loop.
func outputCommand(f func(Runtime, context.Context, string) error) boxCommand {
	return func(a *Agent, ctx context.Context, args wire.Args, _ *fleet.Result) (func() error, error) {
		rt, err := a.runtime()
		if err != nil {
			return nil, err
		}
		found := false
		for _, o := range a.cfg.Outputs {
			found = found || o.Name == args.Name
		}
		if !found {
			return nil, fleet.Rejectf(wire.CodeNoOutput, "no output named %q", args.Name)
		}
		return func() error { return a.logFailure(f(rt, ctx, args.Name)) }, nil
	}
}

// logFailure logs a runtime command's failure, as rtCall does.
func (a *Agent) logFailure(err error) error {
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("pipeline command failed", "err", err)
	}
	return err
}

// recordingCommand starts or stops the configured recording, off the
// loop.
func recordingCommand(f func(Runtime, context.Context) error) boxCommand {
	return func(a *Agent, ctx context.Context, _ wire.Args, _ *fleet.Result) (func() error, error) {
		rt, err := a.runtime()
		if err != nil {
			return nil, err
		}
		if !a.cfg.Record.Enabled {
			return nil, fleet.Rejectf(wire.CodeUnavailable, "recording is not configured")
		}
		return func() error { return a.logFailure(f(rt, ctx)) }, nil
	}
}

func (b box) Command(ctx context.Context, name string, args wire.Args) (fleet.Result, error) {
	a := b.a
	var res fleet.Result
	run, ok := boxCommands[name]
	if !ok {
		return res, fleet.ErrUnsupported
	}
	var then func() error
	err := a.onLoop(ctx, func() error {
		var err error
		then, err = run(a, ctx, args, &res)
		return err
	})
	if err == nil && then != nil {
		err = then()
	}
	var ce *fleet.CommandError
	if err != nil && !errors.As(err, &ce) && !errors.Is(err, fleet.ErrUnsupported) && !errors.Is(err, pipelines.ErrUnknownOutput) {
		err = fleet.Errorf(wire.CodeFailed, "%s: %v", name, err)
	}
	return res, err
}

// reboot leaves the fleet with reason "reboot" and asks the system to
// reboot by creating the flag file a root path unit watches.
func (a *Agent) reboot() {
	time.Sleep(time.Second) // let the answer go out
	a.post(func() {
		if a.svc.link != nil {
			a.svc.link.SetStopReason(wire.ReasonReboot)
		}
		a.stopFleet()
		err := os.MkdirAll(filepath.Dir(a.deps.RebootFlag), 0o755)
		if err == nil {
			err = os.WriteFile(a.deps.RebootFlag, []byte("reboot\n"), 0o644)
		}
		if err != nil {
			a.log.Error("cannot request a reboot", "err", err)
			return
		}
		a.log.Info("reboot requested")
	})
}

func (b box) ApplyConfig(ctx context.Context, version int64, doc json.RawMessage) (string, []config.FieldError) {
	a := b.a
	cfg, err := config.LoadBytes(doc, a.deps.Environ)
	if err != nil {
		return "", config.AsErrors(err)
	}
	_ = a.notify.Reloading()
	defer func() { _ = a.notify.Ready() }()
	if errs := a.applyConfig(ctx, cfg, version); len(errs) > 0 {
		a.emit(wire.Event{Type: wire.EvtConfigRejected, Msg: config.Errors(errs).Error(), Data: map[string]any{"version": version}})
		return "", errs
	}
	a.log.Info("config applied from the fleet", "version", version)
	a.emit(wire.Event{Type: wire.EvtConfigApplied, Data: map[string]any{"version": version}})
	return effectiveSHA256(cfg), nil
}
