// Package loop is capbox's one event-loop idiom: a part's state is owned by
// one goroutine (its Run loop), and every other goroutine hands that loop a
// closure instead of touching the state. The agent, the pipeline engine and
// the fleet link all run this way.
//
// The owner's loop selects on C() and calls the closures it receives; when
// the owner stops it calls Stop, after which Post, TryPost and Do refuse at
// once rather than block, and Drain runs what was posted before the stop so
// that every waiting caller gets its answer.
package loop

import (
	"context"
	"errors"
	"sync"
)

// ErrStopped is what Do returns once the loop has stopped.
var ErrStopped = errors.New("stopped")

// Loop is a queue of closures for one owning goroutine. The zero value is
// not usable; make one with New.
type Loop struct {
	work     chan func()
	stopped  chan struct{}
	stopOnce sync.Once
}

// New makes a loop whose queue holds depth closures before Post blocks.
func New(depth int) *Loop {
	return &Loop{work: make(chan func(), depth), stopped: make(chan struct{})}
}

// C is what the owner's loop selects on; it calls each closure it receives.
func (l *Loop) C() <-chan func() { return l.work }

// Post hands f to the loop. It blocks while the queue is full and returns
// false, without running f, once the loop has stopped.
func (l *Loop) Post(f func()) bool {
	select {
	case <-l.stopped:
		return false
	default:
	}
	select {
	case l.work <- f:
		return true
	case <-l.stopped:
		return false
	}
}

// TryPost hands f to the loop unless its queue is full or the loop has
// stopped, and never blocks: for callbacks that must not wait on the loop
// (a network library's message handler), which drop what does not fit.
// It reports whether f was queued.
func (l *Loop) TryPost(f func()) bool {
	select {
	case <-l.stopped:
		return false
	default:
	}
	select {
	case l.work <- f:
		return true
	default:
		return false
	}
}

// Do runs f on the loop and waits for its error. It returns ctx's error if
// ctx ends first (f may still run later) and ErrStopped if the loop stops
// before taking f.
func (l *Loop) Do(ctx context.Context, f func() error) error {
	// Checked first: once stopped, a queue with room would otherwise take
	// f at random, and nobody would run it.
	select {
	case <-l.stopped:
		return ErrStopped
	default:
	}
	errc := make(chan error, 1)
	select {
	case l.work <- func() { errc <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.stopped:
		return ErrStopped
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop marks the loop stopped: later Posts and Dos refuse at once. Safe to
// call more than once and from any goroutine.
func (l *Loop) Stop() { l.stopOnce.Do(func() { close(l.stopped) }) }

// Stopped is closed once Stop has been called.
func (l *Loop) Stopped() <-chan struct{} { return l.stopped }

// Drain runs, on the owner's goroutine, every closure already queued. The
// owner calls it after Stop so that callers blocked in Do get an answer.
func (l *Loop) Drain() {
	for {
		select {
		case f := <-l.work:
			f()
		default:
			return
		}
	}
}
