package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
)

// loadApplied starts from the config the fleet applied last, when there is
// one and it is still valid.
func (a *Agent) loadApplied() {
	applied, ok, err := fleet.LoadApplied(a.deps.StateDir)
	switch {
	case err != nil:
		a.log.Warn("ignoring the fleet's saved config", "err", err)
	case ok:
		cfg, err := config.LoadBytes(applied.Config, a.deps.Environ)
		if err != nil {
			a.log.Warn("the fleet's saved config is no longer valid, using the file", "err", err)
			return
		}
		a.cfg, a.cfgVersion = cfg, applied.Version
		a.log.Info("running the config the fleet applied", "version", applied.Version)
	}
}

// reload re-reads the config file (SIGHUP) and applies it; it runs off the
// loop (reading the file and detecting take time).
func (a *Agent) reload(ctx context.Context) {
	_ = a.notify.Reloading()
	defer func() { _ = a.notify.Ready() }()
	path := a.deps.ConfigPath
	cfg, err := config.Load(path, path != "", a.deps.Environ)
	if err != nil {
		a.log.Error("config reload refused, the old config keeps running", "errors", config.AsErrors(err).Error())
		a.emit(wire.Event{Type: wire.EvtConfigRejected, Msg: config.AsErrors(err).Error()})
		return
	}
	if errs := a.applyConfig(ctx, cfg, 0); len(errs) > 0 {
		a.log.Error("config reload refused, the old config keeps running", "errors", config.Errors(errs).Error())
		return
	}
	a.log.Info("config reloaded", "path", path)
}

// applyConfig applies a validated config from another goroutine: the
// detection a capture change needs runs off the loop, then apply on it.
// One config is applied at a time.
func (a *Agent) applyConfig(ctx context.Context, cfg config.Config, version int64) []config.FieldError {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	var job planJob
	var redetect bool
	if err := a.onLoop(ctx, func() error {
		redetect = cfg.Capture.Video != a.cfg.Capture.Video || cfg.Capture.EDID != a.cfg.Capture.EDID
		job = planJob{cfg: cfg, deps: a.deps, log: a.log}
		return nil
	}); err != nil {
		return []config.FieldError{{Msg: err.Error()}}
	}
	var det *board.Detection
	if redetect {
		d := job.detectHardware(ctx)
		det = &d
	}
	var errs []config.FieldError
	if err := a.onLoop(ctx, func() error {
		errs = a.apply(cfg, version, det)
		return nil
	}); err != nil {
		return []config.FieldError{{Msg: err.Error()}}
	}
	return errs
}

// apply switches to a validated config, restarting only what changed; det
// is a fresh detection when the capture settings changed. It refuses (and
// changes nothing) when the new config cannot be planned.
func (a *Agent) apply(cfg config.Config, version int64, det *board.Detection) []config.FieldError {
	old, oldDet := a.cfg, a.det
	if cfg.Device.ID != old.Device.ID && a.svc.link != nil {
		return []config.FieldError{{Path: "device.id", Msg: "the device id cannot change while connected to the fleet"}}
	}
	a.cfg = cfg
	if det != nil {
		a.det = *det
	}
	plan, err := a.makePlan(a.ladder.rung)
	if err != nil && a.run.phase == runRunning {
		a.cfg, a.det = old, oldDet
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
	if cfg.Metrics != old.Metrics && a.ready {
		a.startMetrics()
	}
	if (!reflect.DeepEqual(cfg.Fleet, old.Fleet) || cfg.Device != old.Device) && a.ready {
		a.restartFleet()
	}
	if det != nil {
		a.in.signal = a.chosenInput().Signal
	}
	a.setMeta()
	switch a.run.phase {
	case runPlanning:
		a.run.phase = runIdle // the job under way planned the old config
		a.startPipeline(false)
		return nil
	case runIdle:
		a.startPipeline(false)
		return nil
	case runStopping:
		return nil // the restart plans with this config
	}
	rt := a.run.rt
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
