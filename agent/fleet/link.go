package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"capbox/agent/config"
	"capbox/internal/backoff"
	"capbox/internal/loop"

	"capbox/agent/fleet/wire"
)

// Bounds of the link's shutdown.
const (
	// offlineTimeout bounds the graceful offline publish at shutdown.
	offlineTimeout = 2 * time.Second
	// workersTimeout bounds the wait for running commands and applies.
	workersTimeout = 5 * time.Second
)

// Link is the box's side of the fleet protocol: one MQTT session at a time
// with its own jittered reconnect. It never touches the pipeline except
// through Box, so losing the broker never affects streaming or recording.
//
// Run's loop owns its state; other goroutines reach the loop only through
// mail (Mood and SetStopReason use atomics). The concerns live in their
// own files: session.go (connect, publish, acknowledgements), outbox.go
// (what waits for the broker), retained.go (birth, meta and the retained
// set), inbound.go and commands.go (requests), desired.go (config),
// state.go and events.go (what the box reports), watch.go (previews and
// meters while a viewer holds a lease).
type Link struct {
	cfg      config.Fleet
	id       string
	topics   wire.Topics
	box      Box
	log      *slog.Logger
	stateDir string
	interval time.Duration // between telemetry samples
	scrub    scrubber
	reason   atomic.Pointer[string] // SetStopReason, from any goroutine

	mail  mailboxes
	mqtt  session
	out   outbox
	state stateLimit
	cmds  commands
	conf  desiredConfig
	watch watching
}

// mailboxes are how other goroutines reach Run's loop: each hands it a
// closure (internal/loop) instead of touching the link.
type mailboxes struct {
	// work carries what the link's own goroutines finish (publish
	// acknowledgements, box commands, config applies); they wait for the
	// loop to take it.
	work *loop.Loop
	// inbound carries paho's messages, whose callbacks must never wait:
	// beyond maxInbound waiting, a message is dropped and counted.
	inbound *loop.Loop
	dropped atomic.Int64
	// events holds the Box's events until the loop takes them.
	events *eventQueue
	// workers are the box commands and config applies running; shutdown
	// waits for them (bounded).
	workers sync.WaitGroup
}

// stop makes every later post refuse at once.
func (m *mailboxes) stop() {
	m.work.Stop()
	m.inbound.Stop()
	m.events.bell.Stop()
}

// Option changes a Link.
type Option func(*Link)

// WithStateDir sets where the session number and the applied config are
// kept (default DefaultStateDir()).
func WithStateDir(dir string) Option { return func(l *Link) { l.stateDir = dir } }

// WithSecrets adds values the link must never send (the running config's
// stream keys and passphrases: agent.ConfigSecrets). It scrubs them from
// every payload as a last line of defence.
func WithSecrets(secrets ...string) Option { return func(l *Link) { l.scrub.add(secrets...) } }

// withDialer replaces paho (tests).
func withDialer(d dialFunc) Option { return func(l *Link) { l.mqtt.dial = d } }

// New checks the fleet config and builds the link for device id (already
// resolved from "auto" by the caller). It does not connect: Run does.
func New(cfg config.Fleet, deviceID string, box Box, logger *slog.Logger, opts ...Option) (*Link, error) {
	if !wire.DeviceIDPattern.MatchString(deviceID) {
		return nil, fmt.Errorf("fleet: device id %q: want %s", deviceID, wire.DeviceIDSyntax)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if !wire.ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("fleet: prefix %q: want one topic level without wildcards", cfg.Prefix)
	}
	t, err := parseBroker(cfg)
	if err != nil {
		return nil, err
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, fmt.Errorf("%w: cert and key go together", ErrCredentials)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{
		cfg: cfg, id: deviceID, topics: wire.Topics{Prefix: cfg.Prefix, ID: deviceID},
		box: box, log: logger.With("component", "fleet"),
		stateDir: DefaultStateDir(), interval: cfg.TelemetryInterval.D(),
		mail: mailboxes{work: loop.New(0), inbound: loop.New(maxInbound)},
		mqtt: session{target: t, dial: dialPaho},
		cmds: commands{seen: newDedup()},
	}
	l.mail.events = newEventQueue(l.takeEvents)
	if l.interval <= 0 {
		l.interval = 10 * time.Second
	}
	l.scrub.add(cfg.Password)
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Mood is the link's own mood for State.Moods[wire.PartFleet]: waking until
// the first connect, happy while connected, hungry while the broker is
// away, sleeping once Run has returned. Safe from any goroutine.
func (l *Link) Mood() wire.Mood {
	if m, ok := l.mqtt.mood.Load().(string); ok {
		return wire.Mood(m)
	}
	return wire.MoodWaking
}

// SetStopReason sets the reason the graceful offline status gives when Run's
// context ends (ReasonShutdown by default; a reboot command sets
// ReasonReboot; an update sets ReasonOTA).
func (l *Link) SetStopReason(reason string) { l.reason.Store(&reason) }

// Run keeps the box connected until ctx ends, then publishes the graceful
// offline status and returns nil.
func (l *Link) Run(ctx context.Context) error {
	l.log.Info("fleet link starting", "broker", l.mqtt.target.URL, "device", l.id, "prefix", l.cfg.Prefix)
	if s, err := loadSess(l.stateDir); err != nil {
		l.log.Warn("session number lost, counting from 0", "err", err)
	} else {
		l.mqtt.sess = s
	}
	l.loadApplied(ctx)

	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	go l.drainEvents(evCtx)

	telemetry := time.NewTicker(l.interval)
	defer telemetry.Stop()
	l.state.timer = time.NewTimer(time.Hour)
	l.state.timer.Stop()
	birthCheck := time.NewTimer(time.Hour)
	birthCheck.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	l.watch.timer = time.NewTimer(time.Hour)
	l.watch.timer.Stop()
	bo := backoff.NewFullJitter(reconnectMin, reconnectMax)

	connectNow := true
	for {
		if connectNow && l.mqtt.conn == nil {
			connectNow = false
			if err := l.connect(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				d := bo.Next()
				l.mqtt.mood.Store(string(wire.MoodHungry))
				l.log.Warn("fleet broker unreachable", "err", err, "retry_in", d.Round(time.Millisecond))
				retry.Reset(d)
			} else {
				birthCheck.Reset(birthEchoTimeout)
			}
		}
		if err := l.pump(); err != nil {
			l.log.Warn("fleet publish failed", "err", err)
		}
		var lost <-chan struct{}
		if l.mqtt.conn != nil {
			lost = l.mqtt.conn.Done()
		}
		select {
		case <-ctx.Done():
		case <-retry.C:
			connectNow = true
		case <-lost:
			err := l.mqtt.conn.Err()
			up := time.Since(l.mqtt.connAt)
			l.onLost()
			birthCheck.Stop()
			if up >= stableSession {
				bo.Reset()
			}
			d := bo.Next()
			l.log.Warn("fleet connection lost", "err", err, "up", up.Round(time.Second), "retry_in", d.Round(time.Millisecond))
			retry.Reset(d)
		case f := <-l.mail.work.C():
			f()
		case f := <-l.mail.inbound.C():
			f()
		case f := <-l.mail.events.bell.C():
			f()
		case <-l.box.StateChanged():
			l.publishState(false)
		case <-l.state.timer.C:
			l.publishState(false)
		case <-telemetry.C:
			l.publishTelemetry()
		case now := <-l.watch.timer.C:
			l.publishWatched(ctx, now)
		case <-birthCheck.C:
			if l.mqtt.conn != nil && !l.mqtt.birthSeen {
				l.log.Warn("the broker did not deliver this box's own status back: its ACL probably refuses this box's topics",
					"username", l.username(), "topics", l.topics.Base()+"#")
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	l.shutdown()
	return nil
}

// shutdown publishes the graceful offline status, closes the connection and
// waits (bounded) for running commands, which see ctx cancelled.
func (l *Link) shutdown() {
	l.mail.stop()
	reason := wire.ReasonShutdown
	if r := l.reason.Load(); r != nil {
		reason = *r
	}
	if c := l.mqtt.conn; c != nil {
		st := &wire.Status{Online: false, State: wire.StatusDisconnected, Reason: reason, BootID: bootID()}
		topic, b, err := l.encode(&outMsg{suffix: wire.TopicStatus, body: st})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), offlineTimeout)
			err = wait(ctx, c.Publish(topic, 1, true, b), c.Done())
			cancel()
		}
		if err != nil {
			l.log.Warn("graceful offline status not confirmed", "err", err)
		}
		c.Close(250 * time.Millisecond)
		l.mqtt.conn = nil
	}
	done := make(chan struct{})
	go func() { l.mail.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(workersTimeout):
		l.log.Warn("fleet commands still running at shutdown")
	}
	l.mqtt.mood.Store(string(wire.MoodSleeping))
	l.log.Info("fleet link stopped", "reason", reason)
}
