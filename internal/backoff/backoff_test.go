package backoff

import (
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
