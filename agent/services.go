package agent

import (
	"context"
	"time"

	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/agent/metrics"
)

// services are the agent's parts beside the pipeline: the fleet link and
// the metrics endpoint. Losing either never touches the stream.
type services struct {
	link       *fleet.Link
	linkCancel context.CancelFunc
	linkDone   chan error
	// linkGen numbers links, so that a replacement started late (after
	// its predecessor said goodbye) is not started twice.
	linkGen    uint64
	metricsOff context.CancelFunc
}

// linkStopTimeout bounds the wait for the fleet link's graceful offline.
const linkStopTimeout = 5 * time.Second

func (a *Agent) startMetrics() {
	a.stopMetrics()
	if a.cfg.Metrics.Listen == "" {
		return
	}
	m, err := metrics.New(a.cfg.Metrics.Listen, metricsSource{a})
	if err != nil {
		a.log.Error("metrics endpoint", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	a.svc.metricsOff = cancel
	go func() {
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	a.log.Info("metrics endpoint", "listen", a.cfg.Metrics.Listen)
}

func (a *Agent) stopMetrics() {
	if a.svc.metricsOff != nil {
		a.svc.metricsOff()
		a.svc.metricsOff = nil
	}
}

// metricsSource gives the endpoint the collector's sample and the moods.
type metricsSource struct{ a *Agent }

func (m metricsSource) Latest() wire.Telemetry        { return m.a.health.Latest() }
func (m metricsSource) Moods() map[string]wire.Mood   { return m.a.pub.Moods() }
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
	a.svc.link, a.svc.linkCancel, a.svc.linkDone = link, cancel, done
	a.log.Info("fleet link", "broker", a.cfg.Fleet.Broker, "id", id)
}

// restartFleet replaces the fleet link (a new broker, id or credentials):
// the old one says goodbye off the loop, then the new one starts.
func (a *Agent) restartFleet() {
	cancel, done := a.svc.linkCancel, a.svc.linkDone
	a.svc.link, a.svc.linkCancel, a.svc.linkDone = nil, nil, nil
	a.svc.linkGen++
	gen := a.svc.linkGen
	if cancel == nil {
		a.startFleet()
		return
	}
	cancel()
	go func() {
		if done != nil {
			select {
			case <-done:
			case <-time.After(linkStopTimeout):
			}
		}
		a.post(func() {
			if a.svc.linkGen == gen {
				a.startFleet()
			}
		})
	}()
}

// stopFleet stops the link and waits for its goodbye (bounded).
func (a *Agent) stopFleet() {
	if a.svc.linkCancel == nil {
		return
	}
	a.svc.linkCancel()
	if a.svc.linkDone != nil {
		select {
		case <-a.svc.linkDone:
		case <-time.After(linkStopTimeout):
		}
	}
	a.svc.link, a.svc.linkCancel, a.svc.linkDone = nil, nil, nil
}

func (a *Agent) onThermal(ev health.ThermalEvent) {
	a.thermal = ev.Status
	a.emit(ev.WireEvent())
	if a.cfg.Encode.ThermalGuard {
		a.replanVideo("thermal guard: " + string(ev.Status.Level))
	}
}
