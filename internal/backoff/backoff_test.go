package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBoundsAndGrowth(t *testing.T) {
	b := New(100*time.Millisecond, 2*time.Second)
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		w *= time.Millisecond
		d := b.Next()
		if d > w || d < time.Duration(float64(w)*0.8) {
			t.Fatalf("attempt %d: delay %s outside [%s, %s]", i, d, time.Duration(float64(w)*0.8), w)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %s", d)
	}
}

func TestJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		b := New(time.Second, time.Minute)
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 boxes picked only %d distinct first delays: they would reconnect in lockstep", len(seen))
	}
}

// TestFullJitterBounds: attempt n waits within [min, min(max, min*2^(n+1))]
// and reaches both ends (the fleet link's reconnect: 1 s .. 60 s).
func TestFullJitterBounds(t *testing.T) {
	const lo, hi = time.Second, 60 * time.Second
	after := func(attempts int, pick func(n int64) int64) time.Duration {
		b := NewFullJitter(lo, hi)
		for range attempts {
			b.Next()
		}
		b.randN = pick
		return b.Next()
	}
	for attempt := range 12 {
		ceil := min(hi, lo<<(attempt+1))
		if d := after(attempt, func(int64) int64 { return 0 }); d != lo {
			t.Errorf("attempt %d: lowest %s", attempt, d)
		}
		if d := after(attempt, func(n int64) int64 { return n - 1 }); d != ceil {
			t.Errorf("attempt %d: highest %s, want %s", attempt, d, ceil)
		}
	}
	if d := after(1000, rand.Int64N); d < lo || d > hi {
		t.Errorf("attempt 1000: %s", d)
	}
}

func TestFullJitterReset(t *testing.T) {
	b := NewFullJitter(time.Second, time.Minute)
	for range 10 {
		b.Next()
	}
	b.Reset()
	if d := b.Next(); d < time.Second || d > 2*time.Second {
		t.Fatalf("first delay after reset %s, want within [1s, 2s]", d)
	}
}
