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
	"capbox/pipelines"
)

// box is the agent as the fleet link sees it. The quick methods answer
// from cached values; commands and config run on the supervisor's loop.
type box struct{ a *Agent }

func (b box) Meta() wire.Meta {
	b.a.mu.Lock()
	defer b.a.mu.Unlock()
	return b.a.meta
}

func (b box) State() wire.State {
	b.a.mu.Lock()
	defer b.a.mu.Unlock()
	return b.a.state
}

func (b box) Telemetry() wire.Telemetry { return b.a.health.Latest() }

func (b box) StateChanged() <-chan struct{} { return b.a.stateChanged }

func (b box) Events() <-chan wire.Event { return b.a.events }

// onLoop runs f on the supervisor's loop and waits for it.
func (b box) onLoop(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	select {
	case b.a.cmds <- func() { errc <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.a.ctx.Done():
		return &fleet.CommandError{Code: wire.CodeShutdown, Msg: "the agent is stopping"}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b box) Command(ctx context.Context, name string, args wire.Args) (fleet.Result, error) {
	a := b.a
	var res fleet.Result
	err := b.onLoop(ctx, func() error {
		rt := a.rt
		needRT := func() error {
			if rt == nil {
				return fleet.Rejectf(wire.CodeNotRunning, "the pipeline is not running")
			}
			return nil
		}
		// f is a method expression: a method value of a nil rt would panic
		// before needRT could refuse.
		output := func(f func(Runtime, context.Context, string) error) error {
			if err := needRT(); err != nil {
				return err
			}
			found := false
			for _, o := range a.cfg.Outputs {
				found = found || o.Name == args.Name
			}
			if !found {
				return fleet.Rejectf(wire.CodeNoOutput, "no output named %q", args.Name)
			}
			return a.rtCall(func(ctx context.Context) error { return f(rt, ctx, args.Name) })
		}
		switch name {
		case wire.CmdRestartPipeline:
			a.restartPipeline()
			return nil
		case wire.CmdRestartOutput:
			return output(Runtime.RestartOutput)
		case wire.CmdStartOutput:
			return output(Runtime.StartOutput)
		case wire.CmdStopOutput:
			return output(Runtime.StopOutput)
		case wire.CmdStartRecording, wire.CmdStopRecording:
			if err := needRT(); err != nil {
				return err
			}
			if !a.cfg.Record.Enabled {
				return fleet.Rejectf(wire.CodeUnavailable, "recording is not configured")
			}
			if name == wire.CmdStartRecording {
				return a.rtCall(rt.StartRecording)
			}
			return a.rtCall(rt.StopRecording)
		case wire.CmdSnapshot:
			if err := needRT(); err != nil {
				return err
			}
			// Decoding runs apart from the pipeline; the loop waits at most 5 s.
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			jpeg, err := rt.Snapshot(sctx)
			if err != nil {
				return fleet.Errorf(wire.CodeNoSignal, "no picture: %v", err)
			}
			res.JPEG = jpeg
			return nil
		case wire.CmdSetLogLevel:
			a.deps.LogLevel.Set(levelOf(args.Level))
			a.log.Info("log level set", "level", args.Level)
			return nil
		case wire.CmdDetect:
			a.detectNow(ctx)
			res.Data = a.det
			return nil
		case wire.CmdReboot:
			if a.deps.RebootFlag == "" {
				return fleet.ErrUnsupported
			}
			// Answer first; then leave the fleet saying why, then ask.
			go a.reboot()
			return nil
		}
		return fleet.ErrUnsupported
	})
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
		if a.link != nil {
			a.link.SetStopReason(wire.ReasonReboot)
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
	var sum string
	var errs []config.FieldError
	lerr := b.onLoop(ctx, func() error {
		_ = a.notify.Reloading()
		defer func() { _ = a.notify.Ready() }()
		errs = a.apply(cfg, version)
		if len(errs) == 0 {
			sum = effectiveSHA256(cfg)
			a.log.Info("config applied from the fleet", "version", version)
			a.emit(wire.Event{Type: wire.EvtConfigApplied, Data: map[string]any{"version": version}})
		} else {
			a.emit(wire.Event{Type: wire.EvtConfigRejected, Msg: config.Errors(errs).Error(), Data: map[string]any{"version": version}})
		}
		return nil
	})
	if lerr != nil {
		return "", []config.FieldError{{Msg: lerr.Error()}}
	}
	return sum, errs
}
