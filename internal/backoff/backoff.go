// Package backoff is jittered exponential backoff: every retry loop in
// capbox waits through one, so a fleet that lost its server does not come
// back in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields growing, jittered delays between Min and Max.
// The zero value is not usable; make one with New or NewFullJitter.
type Backoff struct {
	Min, Max time.Duration
	// Jitter is the fraction (0..1) of each delay that is randomised:
	// a delay d becomes a uniform pick in [d*(1-Jitter), d]. A full-jitter
	// backoff ignores it.
	Jitter float64
	// full: each delay is a uniform pick between Min and the doubled
	// ceiling (NewFullJitter).
	full  bool
	next  time.Duration
	rand  func() float64
	randN func(n int64) int64
}

// New returns a backoff from min doubling up to max, with 20% jitter.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Jitter: 0.2, next: min, rand: rand.Float64}
}

// NewFullJitter returns a backoff whose attempt n (from 0) waits a uniform
// time in [min, min(max, min*2^(n+1))]: full jitter above a floor, so the
// spread grows with the delay. For many clients of one server (a fleet of
// boxes and its broker), where a 20% spread would still bring them back
// in waves.
func NewFullJitter(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, full: true, next: min, randN: rand.Int64N}
}

// Next returns the delay before the next attempt and grows the one after.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d < b.Min {
		d = b.Min
	}
	b.next = min(d*2, b.Max)
	if b.full {
		ceil := b.next
		if ceil <= b.Min {
			return b.Min
		}
		return b.Min + time.Duration(b.randN(int64(ceil-b.Min)+1))
	}
	return d - time.Duration(b.Jitter*b.rand()*float64(d))
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.next = b.Min }
