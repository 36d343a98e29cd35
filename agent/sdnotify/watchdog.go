package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// pinger is what the watchdog needs of a Notifier.
type pinger interface {
	Watchdog() error
}

// Watchdog pings systemd's service watchdog (WatchdogSec=, passed as
// WATCHDOG_USEC) at half its interval, but only when the supervisor
// reported progress since the last ping: a supervisor loop that is stuck
// stops the pings, and systemd restarts the agent within one interval.
//
// The supervisor calls Progress from its loop, including from a periodic
// tick case of its select (at most a quarter of Interval), so an idle but
// healthy loop counts as progress and a loop stuck in a call does not.
type Watchdog struct {
	n        pinger
	interval time.Duration
	log      *slog.Logger
	progress atomic.Bool
}

// NewWatchdog reads WATCHDOG_USEC (and WATCHDOG_PID) through
// daemon.SdWatchdogEnabled. Without them the watchdog is disabled: Run
// returns at once and Progress costs an atomic store.
func NewWatchdog(n *Notifier, log *slog.Logger) (*Watchdog, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("systemd watchdog: %w", err)
	}
	return newWatchdog(n, d, log), nil
}

func newWatchdog(n pinger, interval time.Duration, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{n: n, interval: interval, log: log}
}

// Enabled reports whether systemd expects pings.
func (w *Watchdog) Enabled() bool { return w.interval > 0 }

// Interval is systemd's watchdog timeout (0: disabled).
func (w *Watchdog) Interval() time.Duration { return w.interval }

// Progress records that the supervisor loop went round.
func (w *Watchdog) Progress() { w.progress.Store(true) }

// Run pings at half the interval while there was progress, until ctx
// ends. A missed ping is logged once per stall, not on every tick.
func (w *Watchdog) Run(ctx context.Context) error {
	if w.interval <= 0 {
		return nil
	}
	tick := time.NewTicker(w.interval / 2)
	defer tick.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !w.progress.Swap(false) {
			if !stalled {
				w.log.Error("supervisor made no progress: withholding the watchdog ping", "interval", w.interval)
				stalled = true
			}
			continue
		}
		if stalled {
			w.log.Info("supervisor progressing again: watchdog pings resumed")
			stalled = false
		}
		if err := w.n.Watchdog(); err != nil {
			w.log.Warn("watchdog ping failed", "err", err)
		}
	}
}
