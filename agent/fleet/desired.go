package fleet

import (
	"context"
	"fmt"
	"time"

	"capbox/agent/config"

	"capbox/agent/fleet/wire"
)

// applyTimeout bounds one config apply through the Box.
const applyTimeout = 2 * time.Minute

// loadApplied restores the applied config at start. The agent should have
// started from it (LoadApplied); when the Box runs an older version, the
// link applies the persisted one again.
func (l *Link) loadApplied(ctx context.Context) {
	running := l.box.State().ConfigVersion
	a, ok, err := LoadApplied(l.stateDir)
	if err != nil {
		l.log.Warn("applied config unreadable; the box reports what it runs", "err", err)
	}
	switch {
	case !ok || running > a.Version:
		l.applied = Applied{Version: running}
	case running == a.Version:
		l.scrub.add(docSecrets(a.Config)...)
		l.applied = a
	default:
		l.scrub.add(docSecrets(a.Config)...)
		l.log.Info("applying the persisted config", "version", a.Version, "running", running)
		r := l.apply(ctx, wire.ConfigDesired{V: wire.SchemaVersion, Version: a.Version, Config: a.Config})
		if len(r.errs) > 0 {
			l.log.Warn("persisted config refused by the box; keeping what runs", "version", a.Version, "errors", len(r.errs))
			l.applied = Applied{Version: running}
		} else {
			a.SHA256 = r.sha
			l.applied = a
		}
	}
	if l.applied.Version > 0 {
		l.reported = &wire.ConfigReported{DesiredVersion: l.applied.Version, AppliedVersion: l.applied.Version,
			Status: wire.ConfigApplied, EffectiveSHA256: l.applied.SHA256}
	}
}

// onDesired handles config/desired: versions must increase; the same
// version (the retained document after a reconnect) is a no-op; an older
// one is rejected; a newer one is checked and applied off the loop.
func (l *Link) onDesired(ctx context.Context, payload []byte) {
	if len(payload) == 0 {
		return // the fleet cleared the retained document
	}
	d, err := wire.DecodeDesired(payload)
	if err != nil {
		l.log.Warn("bad config/desired", "err", err)
		l.reject(0, []config.FieldError{{Msg: err.Error()}})
		return
	}
	l.scrub.add(docSecrets(d.Config)...)
	switch {
	case d.Version == l.applied.Version:
		if l.reported != nil && l.reported.DesiredVersion != d.Version {
			l.report(wire.ConfigReported{DesiredVersion: d.Version, AppliedVersion: l.applied.Version,
				Status: wire.ConfigApplied, EffectiveSHA256: l.applied.SHA256})
		}
		return
	case d.Version < l.applied.Version:
		l.reject(d.Version, []config.FieldError{{Path: "version",
			Msg: fmt.Sprintf("version %d is not newer than the applied version %d", d.Version, l.applied.Version)}})
		return
	case d.Version == l.applying:
		return
	case l.applying != 0:
		l.pendingDesired = &d
		return
	}
	l.applying = d.Version
	l.cmdWG.Add(1)
	go func() {
		defer l.cmdWG.Done()
		r := l.apply(ctx, d)
		select {
		case l.cfgDone <- r:
		case <-l.quit:
		}
	}()
}

// apply validates through the agent's config parser, refuses a change of
// device id, then lets the Box apply.
func (l *Link) apply(ctx context.Context, d wire.ConfigDesired) cfgResult {
	cfg, err := config.Parse(d.Config)
	if err != nil {
		return cfgResult{d: d, errs: config.AsErrors(err)}
	}
	if cfg.Device.ID != "auto" && cfg.Device.ID != l.id {
		return cfgResult{d: d, errs: []config.FieldError{{Path: "device.id",
			Msg: "the device id cannot change over the fleet link"}}}
	}
	actx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	sha, errs := l.box.ApplyConfig(actx, d.Version, d.Config)
	if len(errs) == 0 && actx.Err() != nil {
		errs = []config.FieldError{{Msg: "apply interrupted: " + actx.Err().Error()}}
	}
	return cfgResult{d: d, sha: sha, errs: errs}
}

func (l *Link) onCfgDone(ctx context.Context, r cfgResult) {
	l.applying = 0
	if len(r.errs) > 0 {
		l.log.Warn("desired config rejected; the old config keeps running", "version", r.d.Version, "errors", len(r.errs))
		l.reject(r.d.Version, r.errs)
	} else {
		l.applied = Applied{Version: r.d.Version, SHA256: r.sha, Config: r.d.Config}
		if err := saveApplied(l.stateDir, l.applied); err != nil {
			l.log.Error("applied config not persisted: a reboot returns to the previous one", "err", err)
		}
		l.log.Info("desired config applied", "version", r.d.Version)
		l.report(wire.ConfigReported{DesiredVersion: r.d.Version, AppliedVersion: r.d.Version,
			Status: wire.ConfigApplied, EffectiveSHA256: r.sha})
		l.queueEvent(wire.Event{Type: wire.EvtConfigApplied, Data: map[string]any{"version": r.d.Version}})
	}
	if p := l.pendingDesired; p != nil {
		l.pendingDesired = nil
		if p.Version > l.applied.Version {
			l.applying = p.Version
			l.cmdWG.Add(1)
			go func() {
				defer l.cmdWG.Done()
				res := l.apply(ctx, *p)
				select {
				case l.cfgDone <- res:
				case <-l.quit:
				}
			}()
		}
	}
}

func (l *Link) reject(version int64, errs []config.FieldError) {
	l.report(wire.ConfigReported{DesiredVersion: version, AppliedVersion: l.applied.Version,
		Status: wire.ConfigRejected, Errors: toWire(errs), EffectiveSHA256: l.applied.SHA256})
	l.queueEvent(wire.Event{Type: wire.EvtConfigRejected, Msg: fmt.Sprintf("%d problem(s)", len(errs)),
		Data: map[string]any{"version": version}})
}

func (l *Link) report(r wire.ConfigReported) {
	l.reported = &r
	c := r
	l.out.push(&outMsg{suffix: wire.TopicConfigReported, qos: 1, retained: true, latest: true, body: &c})
}

// toWire converts the agent's field errors to the protocol's (same JSON).
func toWire(errs []config.FieldError) []wire.FieldError {
	out := make([]wire.FieldError, len(errs))
	for i, e := range errs {
		out[i] = wire.FieldError{Path: e.Path, Line: e.Line, Msg: e.Msg}
	}
	return out
}
