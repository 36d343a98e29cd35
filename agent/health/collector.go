// Package health collects the box's health into the fleet protocol's one
// snapshot type, wire.Telemetry, on a timer: the machine (board's readers,
// thermal trip points, clock sync), the network (rtnetlink) and the
// pipeline's counters. It also judges the thermal state (normal, warm,
// throttling) and says what changed between two snapshots in words.
//
// Sources sit behind small interfaces (SysSource, NetSource,
// PipelineSource) so tests run on fixture trees.
package health

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/board"
)

// DefaultInterval is the fleet's default telemetry_interval.
const DefaultInterval = 10 * time.Second

// Options configure a Collector; zero values take the defaults.
type Options struct {
	// Interval between samples (fleet.telemetry_interval); default 10 s.
	Interval time.Duration
	// Sys reads the machine; nil is LiveSys() ("/" the only disk: pass
	// LiveSys(recordingFolder)).
	Sys SysSource
	// Net lists the interfaces; nil is rtnetlink in the agent's namespace.
	Net NetSource
	// Pipeline is the running pipeline; nil until SetPipeline.
	Pipeline PipelineSource
	Thermal  ThermalOptions
	Logger   *slog.Logger
}

// thermalEventBuffer bounds undelivered thermal events; the oldest goes
// first when nobody reads (levels change at most once per Hold).
const thermalEventBuffer = 16

// Collector samples health on a timer and keeps the latest snapshot.
type Collector struct {
	opts  Options
	log   *slog.Logger
	start time.Time

	// sampleMu serialises sampling: CPU delta, counters, thermal machine.
	sampleMu sync.Mutex
	prevCPU  board.CPUTimes
	acc      *counters
	thermal  *Thermal
	lastErr  string

	mu            sync.Mutex
	latest        wire.Telemetry
	changed       chan struct{}
	pipe          PipelineSource
	pipeChanged   bool
	configVersion int64
	thermalSt     ThermalStatus
	every         time.Duration

	interval chan struct{}
	events   chan ThermalEvent
}

// New makes a collector; Run samples.
func New(opts Options) *Collector {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Sys == nil {
		opts.Sys = LiveSys()
	}
	if opts.Net == nil {
		opts.Net = NetReader{SysRoot: "/"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		opts:     opts,
		log:      opts.Logger,
		start:    time.Now(),
		acc:      newCounters(),
		thermal:  NewThermal(opts.Thermal),
		changed:  make(chan struct{}),
		pipe:     opts.Pipeline,
		every:    opts.Interval,
		interval: make(chan struct{}, 1),
		events:   make(chan ThermalEvent, thermalEventBuffer),
	}
	c.thermalSt = c.thermal.Status()
	return c
}

// Run samples at once and then every interval until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	c.mu.Lock()
	every := c.every
	c.mu.Unlock()
	tick := time.NewTicker(every)
	defer tick.Stop()
	c.Sample()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.interval:
			c.mu.Lock()
			d := c.every
			c.mu.Unlock()
			if d != every {
				every = d
				tick.Reset(every)
			}
		case <-tick.C:
			c.Sample()
		}
	}
}

// SetInterval changes the sampling interval (a config reload); the next
// sample comes one new interval from now.
func (c *Collector) SetInterval(d time.Duration) {
	if d <= 0 {
		d = DefaultInterval
	}
	c.mu.Lock()
	c.every = d
	c.mu.Unlock()
	select {
	case c.interval <- struct{}{}:
	default: // Run has a wake-up pending already
	}
}

// SetPipeline sets the pipeline whose stats are reported (nil: none). A new
// runtime counts from zero; the session totals continue from the old one.
func (c *Collector) SetPipeline(p PipelineSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pipe, c.pipeChanged = p, true
}

// LiveSys reads the running system: "/" and the given folders (the
// recording folder) as disks, the clock through adjtimex.
func LiveSys(folders ...string) SysReader {
	mounts := append([]string(nil), folders...)
	if !slices.Contains(mounts, "/") {
		mounts = append(mounts, "/")
	}
	return SysReader{Root: "/", Mounts: mounts, Clock: KernelClock{}}
}

// SetSys replaces the machine source from the next sample on (the
// recording folder moved with a config reload).
func (c *Collector) SetSys(s SysSource) {
	if s == nil {
		s = LiveSys()
	}
	c.sampleMu.Lock()
	defer c.sampleMu.Unlock()
	c.opts.Sys = s
}

// SetConfigVersion sets the applied config version the snapshots carry.
func (c *Collector) SetConfigVersion(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.configVersion = v
}

// Latest is the newest snapshot (zero before the first sample). It shares
// memory with other readers: treat it as read-only.
func (c *Collector) Latest() wire.Telemetry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// Watch returns the newest snapshot and a channel that is closed when a
// newer one is stored; any number of readers may watch.
func (c *Collector) Watch() (wire.Telemetry, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest, c.changed
}

// Thermal is the current thermal judgement.
func (c *Collector) Thermal() ThermalStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.thermalSt
}

// ThermalEvents delivers thermal level changes. The channel is never
// closed; when nobody reads, the oldest undelivered event is dropped.
func (c *Collector) ThermalEvents() <-chan ThermalEvent { return c.events }

// Sample takes one snapshot now, stores it as the latest and returns it.
// Run calls it on the timer; it is safe to call concurrently.
func (c *Collector) Sample() wire.Telemetry {
	c.sampleMu.Lock()
	defer c.sampleMu.Unlock()
	now := time.Now()

	c.mu.Lock()
	pipe, restarted, cfgVer, every := c.pipe, c.pipeChanged, c.configVersion, c.every
	c.pipeChanged = false
	c.mu.Unlock()

	t := wire.Telemetry{
		Header:        wire.Header{TS: now.UnixMilli()},
		UptimeS:       int64(now.Sub(c.start) / time.Second),
		IntervalS:     int(every / time.Second),
		ConfigVersion: cfgVer,
	}
	var errs []string
	sys, err := c.opts.Sys.ReadSys()
	if err != nil {
		errs = append(errs, err.Error())
	}
	// The first sample's CPU share is the average since boot.
	cpu := board.CPUPercent(c.prevCPU, sys.Health.CPU)
	c.prevCPU = sys.Health.CPU
	t.Sys = sysHealth(sys, cpu)

	t.Net, err = c.opts.Net.ReadNet()
	if err != nil {
		errs = append(errs, err.Error())
	}
	if restarted {
		c.acc.restart()
	}
	if pipe != nil {
		pipelineSections(pipe.Stats(), c.acc, &t)
	}

	ev, changed := c.thermal.Observe(now, thermalInput(sys))
	st := c.thermal.Status()

	c.logErrors(errs)
	c.mu.Lock()
	c.latest, c.thermalSt = t, st
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()

	if changed {
		c.log.Info("thermal "+string(ev.Status.Level), "event", ev.Type, "from", ev.From, "reason", ev.Status.Reason())
		c.deliver(ev)
	}
	return t
}

// deliver never blocks the sampler: a full buffer loses its oldest event.
func (c *Collector) deliver(ev ThermalEvent) {
	for range 2 {
		select {
		case c.events <- ev:
			return
		default:
			select {
			case <-c.events:
			default:
			}
		}
	}
}

// logErrors logs read errors when they change, not on every sample.
func (c *Collector) logErrors(errs []string) {
	msg := ""
	for i, e := range errs {
		if i > 0 {
			msg += "; "
		}
		msg += e
	}
	if msg == c.lastErr {
		return
	}
	c.lastErr = msg
	if msg == "" {
		c.log.Info("health readings complete again")
		return
	}
	c.log.Warn("health readings incomplete", "err", msg)
}
