package fleet

import (
	"math/rand/v2"
	"time"
)

// Reconnect delays (PROTOCOL.md: 1 s .. 60 s, jittered).
const (
	reconnectMin = time.Second
	reconnectMax = 60 * time.Second
)

// backoff is exponential with full jitter above a floor: attempt n waits a
// uniform time in [min, min(max, min*2^(n+1))]. paho's own reconnect has no
// jitter, and a fleet that lost its broker would come back in lockstep.
type backoff struct {
	min, max time.Duration
	attempt  int
	rnd      func(n int64) int64
}

func newBackoff() *backoff {
	return &backoff{min: reconnectMin, max: reconnectMax, rnd: rand.Int64N}
}

// next is the delay before the next attempt.
func (b *backoff) next() time.Duration {
	ceil := b.max
	if b.attempt < 16 {
		ceil = min(b.max, b.min<<(b.attempt+1))
	}
	b.attempt++
	if ceil <= b.min {
		return b.min
	}
	return b.min + time.Duration(b.rnd(int64(ceil-b.min)+1))
}

// reset starts over after a session was fully established.
func (b *backoff) reset() { b.attempt = 0 }
