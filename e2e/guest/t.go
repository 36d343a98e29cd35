package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"capbox/e2e/result"
)

// scenario is one row of the suite: a name, the issue's scenario number it proves, and the
// assertion. timeout bounds it; the host's timeout bounds the whole guest.
type scenario struct {
	name    string
	issue   int
	run     func(ctx context.Context, t *T)
	timeout time.Duration
}

// T records one scenario's outcome, like testing.T: Fatalf and NotImplemented stop the
// scenario's goroutine, Errorf records and goes on.
type T struct {
	e   *env
	log *slog.Logger

	mu      sync.Mutex
	status  result.Status
	reasons []string
	timings map[string]float64
	facts   map[string]string
	cleanup []func()
}

// Errorf marks the scenario failed and goes on.
func (t *T) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != result.NotImplemented {
		t.status = result.Fail
	}
	msg := fmt.Sprintf(format, args...)
	t.reasons = append(t.reasons, msg)
	t.log.Warn("assertion failed", "msg", msg)
}

// Fatalf marks the scenario failed and stops it.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

// NotImplemented stops the scenario: the capboxd feature it needs has not landed.
func (t *T) NotImplemented(format string, args ...any) {
	t.mu.Lock()
	t.status = result.NotImplemented
	t.reasons = append(t.reasons, "not implemented in capboxd yet: "+fmt.Sprintf(format, args...))
	t.mu.Unlock()
	runtime.Goexit()
}

// Timing records a measured duration.
func (t *T) Timing(name string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timings[name] = float64(d.Microseconds()) / 1000
	t.log.Info("timing", "name", name, "d", d.Round(time.Millisecond))
}

// Fact records a measured value that is not a duration.
func (t *T) Fact(name, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.facts[name] = fmt.Sprintf(format, args...)
	t.log.Info("fact", "name", name, "value", t.facts[name])
}

// Logf is for progress lines on the console.
func (t *T) Logf(format string, args ...any) {
	t.log.Info(fmt.Sprintf(format, args...))
}

// Cleanup runs f when the scenario ends, last registered first.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanup = append(t.cleanup, f)
}

// runOne runs a scenario in its own goroutine (Fatalf ends it with Goexit) under its timeout.
func runOne(parent context.Context, e *env, s scenario) result.Record {
	timeout := s.timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	t := &T{e: e, log: e.log.With("scenario", s.name), status: result.Pass,
		timings: map[string]float64{}, facts: map[string]string{}}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("panic: %v", p)
			}
		}()
		defer func() {
			for i := len(t.cleanup) - 1; i >= 0; i-- {
				t.cleanup[i]()
			}
		}()
		s.run(ctx, t)
	}()
	select {
	case <-done:
	case <-time.After(timeout + 15*time.Second):
		t.Errorf("scenario hung %s past its %s timeout", 15*time.Second, timeout)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil && t.status == result.Pass {
		t.status = result.Fail
		t.reasons = append(t.reasons, fmt.Sprintf("timed out after %s", timeout))
	}
	rec := result.Record{
		Name: s.name, Scenario: s.issue, Status: t.status, Reasons: t.reasons,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	}
	if len(t.timings) > 0 {
		rec.Timings = t.timings
	}
	if len(t.facts) > 0 {
		rec.Facts = t.facts
	}
	return rec
}

// waitFor polls cond every 10 ms until it returns true or the limit passes, and returns how
// long it took. The last error from cond explains a timeout.
func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	var last error
	for {
		ok, err := cond()
		if ok {
			return time.Since(start), nil
		}
		last = err
		if time.Since(start) > limit {
			if last == nil {
				last = errors.New("condition not met")
			}
			return time.Since(start), fmt.Errorf("after %s: %w", limit, last)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// notBuilt reports whether capboxd's output says the subcommand is a stub.
func notBuilt(out string) bool {
	return strings.Contains(out, "not built yet") || strings.Contains(out, "unknown command")
}
