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

// desiredConfig is config/desired's side of the link.
type desiredConfig struct {
	applied  Applied              // the config the box runs, as persisted
	reported *wire.ConfigReported // the last config/reported, for the retained set
	applying int64                // the version being applied off the loop, 0 when none
	pending  *wire.ConfigDesired  // the newest desired that arrived during an apply
}

// cfgResult is one apply's outcome.
type cfgResult struct {
	d    wire.ConfigDesired
	sha  string
	errs []config.FieldError
}

// loadApplied restores the applied config at start. The agent should have
// started from it (LoadApplied); when the Box runs an older version, the
// link applies the persisted one again.
func (l *Link) loadApplied(ctx context.Context) {
	running := l.box.State().ConfigVersion
	a, ok, err := LoadApplied(l.stateDir)
	if err != nil {
		l.log.Warn("applied config unreadable; the box reports what it runs", "err", err)
	}
	c := &l.conf
	switch {
	case !ok || running > a.Version:
		c.applied = Applied{Version: running}
	case running == a.Version:
		l.scrub.add(docSecrets(a.Config)...)
		c.applied = a
	default:
		l.scrub.add(docSecrets(a.Config)...)
		l.log.Info("applying the persisted config", "version", a.Version, "running", running)
		r := l.apply(ctx, wire.ConfigDesired{V: wire.SchemaVersion, Version: a.Version, Config: a.Config})
		if len(r.errs) > 0 {
			l.log.Warn("persisted config refused by the box; keeping what runs", "version", a.Version, "errors", len(r.errs))
			c.applied = Applied{Version: running}
		} else {
			a.SHA256 = r.sha
			c.applied = a
		}
	}
	if c.applied.Version > 0 {
		c.reported = &wire.ConfigReported{DesiredVersion: c.applied.Version, AppliedVersion: c.applied.Version,
			Status: wire.ConfigApplied, EffectiveSHA256: c.applied.SHA256}
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
	c := &l.conf
	switch {
	case d.Version == c.applied.Version:
		if c.reported != nil && c.reported.DesiredVersion != d.Version {
			l.report(wire.ConfigReported{DesiredVersion: d.Version, AppliedVersion: c.applied.Version,
				Status: wire.ConfigApplied, EffectiveSHA256: c.applied.SHA256})
		}
		return
	case d.Version < c.applied.Version:
		l.reject(d.Version, []config.FieldError{{Path: "version",
			Msg: fmt.Sprintf("version %d is not newer than the applied version %d", d.Version, c.applied.Version)}})
		return
	case d.Version == c.applying:
		return
	case c.applying != 0:
		c.pending = &d
		return
	}
	l.startApply(ctx, d)
}

// startApply applies d off the loop; the loop hears of the outcome in
// onApplied.
func (l *Link) startApply(ctx context.Context, d wire.ConfigDesired) {
	l.conf.applying = d.Version
	l.mail.workers.Add(1)
	go func() {
		defer l.mail.workers.Done()
		r := l.apply(ctx, d)
		l.mail.work.Post(func() { l.onApplied(ctx, r) })
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

// onApplied reports an apply's outcome and persists what was applied, then
// starts the desired config that arrived meanwhile, if it is newer.
func (l *Link) onApplied(ctx context.Context, r cfgResult) {
	c := &l.conf
	c.applying = 0
	if len(r.errs) > 0 {
		l.log.Warn("desired config rejected; the old config keeps running", "version", r.d.Version, "errors", len(r.errs))
		l.reject(r.d.Version, r.errs)
	} else {
		c.applied = Applied{Version: r.d.Version, SHA256: r.sha, Config: r.d.Config}
		if err := saveApplied(l.stateDir, c.applied); err != nil {
			l.log.Error("applied config not persisted: a reboot returns to the previous one", "err", err)
		}
		l.log.Info("desired config applied", "version", r.d.Version)
		l.report(wire.ConfigReported{DesiredVersion: r.d.Version, AppliedVersion: r.d.Version,
			Status: wire.ConfigApplied, EffectiveSHA256: r.sha})
		l.queueEvent(wire.Event{Type: wire.EvtConfigApplied, Data: map[string]any{"version": r.d.Version}})
	}
	if p := c.pending; p != nil {
		c.pending = nil
		if p.Version > c.applied.Version {
			l.startApply(ctx, *p)
		}
	}
}

func (l *Link) reject(version int64, errs []config.FieldError) {
	l.report(wire.ConfigReported{DesiredVersion: version, AppliedVersion: l.conf.applied.Version,
		Status: wire.ConfigRejected, Errors: toWire(errs), EffectiveSHA256: l.conf.applied.SHA256})
	l.queueEvent(wire.Event{Type: wire.EvtConfigRejected, Msg: fmt.Sprintf("%d problem(s)", len(errs)),
		Data: map[string]any{"version": version}})
}

func (l *Link) report(r wire.ConfigReported) {
	l.conf.reported = &r
	c := r
	l.out.pushRetained(wire.TopicConfigReported, &c)
}

// toWire converts the agent's field errors to the protocol's (same JSON).
func toWire(errs []config.FieldError) []wire.FieldError {
	out := make([]wire.FieldError, len(errs))
	for i, e := range errs {
		out[i] = wire.FieldError{Path: e.Path, Line: e.Line, Msg: e.Msg}
	}
	return out
}
