// Package backoff is jittered exponential backoff: every retry loop in
// capbox waits through one, so a fleet that lost its server does not come
// back in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields growing, jittered delays between Min and Max.
// The zero value is not usable; make one with New.
type Backoff struct {
	Min, Max time.Duration
	// Jitter is the fraction (0..1) of each delay that is randomised:
	// a delay d becomes a uniform pick in [d*(1-Jitter), d].
	Jitter float64
	next   time.Duration
	rand   func() float64
}

// New returns a backoff from min doubling up to max, with 20% jitter.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Jitter: 0.2, next: min, rand: rand.Float64}
}

// Next returns the delay before the next attempt and grows the one after.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d < b.Min {
		d = b.Min
	}
	b.next = min(d*2, b.Max)
	return d - time.Duration(b.Jitter*b.rand()*float64(d))
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.next = b.Min }
