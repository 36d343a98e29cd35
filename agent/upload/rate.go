package upload

import (
	"context"
	"io"
	"math"
	"sync"
	"time"
)

// limiter is a token bucket shared by every upload. Its rate changes while
// bytes flow: the cap, and the yield to the live outputs. A small bucket
// (100 ms of rate) keeps uploads from sending bursts into a tight uplink.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second; +Inf: no limit; 0: paused
	tokens float64
	last   time.Time
	sent   int64 // bytes let through, ever
	change chan struct{}
}

func newLimiter(rate float64) *limiter {
	return &limiter{rate: rate, last: time.Now(), change: make(chan struct{})}
}

// minBurst lets one read of chunkSize through even at a very low rate.
const chunkSize = 32 << 10

func (l *limiter) setRate(rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rate == l.rate {
		return
	}
	l.refill(time.Now())
	l.rate = rate
	close(l.change)
	l.change = make(chan struct{})
}

func (l *limiter) currentRate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

func (l *limiter) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

func (l *limiter) burst() float64 {
	return max(0.1*l.rate, chunkSize)
}

func (l *limiter) refill(now time.Time) {
	if d := now.Sub(l.last).Seconds(); d > 0 && !math.IsInf(l.rate, 1) {
		l.tokens = min(l.burst(), l.tokens+d*l.rate)
	}
	l.last = now
}

// wait blocks until n bytes may go, or ctx ends.
func (l *limiter) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		now := time.Now()
		l.refill(now)
		if math.IsInf(l.rate, 1) || l.tokens >= float64(n) {
			if !math.IsInf(l.rate, 1) {
				l.tokens -= float64(n)
			}
			l.sent += int64(n)
			l.mu.Unlock()
			return nil
		}
		var d time.Duration
		if l.rate > 0 {
			d = time.Duration((float64(n) - l.tokens) / l.rate * float64(time.Second))
		}
		d = min(max(d, 5*time.Millisecond), 250*time.Millisecond)
		if l.rate == 0 {
			d = time.Second // paused: wake for a rate change, or check again
		}
		change := l.change
		l.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-change:
			t.Stop()
		case <-t.C:
		}
	}
}

// limitedReader reads through the limiter, at most chunkSize at a time.
// Len tells pkg/sftp how much is left, so it may write concurrently.
type limitedReader struct {
	ctx  context.Context
	r    io.Reader
	l    *limiter
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), chunkSize, int(min(r.left, math.MaxInt32)))]
	if err := r.l.wait(r.ctx, len(p)); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Len is what is left to read.
func (r *limitedReader) Len() int { return int(min(r.left, math.MaxInt32)) }

// LinkSample is one live output's view of the uplink, from its SRT
// statistics. Counters are cumulative since the output started; the
// uploader takes the differences itself.
type LinkSample struct {
	Output string
	// RTT is the smoothed round-trip time to the receiver.
	RTT time.Duration
	// SendBuffer is how much of the stream waits in the sender's buffer,
	// as time (SRT's msSndBuf).
	SendBuffer  time.Duration
	SentPackets uint64
	LostPackets uint64
}

// Uplink gives the live outputs' view of the uplink; the agent reads it
// from the running outputs' statistics. LiveLinks is called on the
// uploader's loop every 250 ms, so it returns what it has at once.
type Uplink interface {
	LiveLinks() []LinkSample
}

// Yield tuning. An output is tight when, since the last look, it lost more
// than lossTight of its packets, or its round trip or send buffer rose well
// above the lowest seen lately; very tight pauses the uploads outright.
const (
	yieldTick      = 250 * time.Millisecond
	lossTight      = 0.005
	lossVeryTight  = 0.05
	rttRise        = 40 * time.Millisecond
	rttRiseSevere  = 250 * time.Millisecond
	bufRise        = 100 * time.Millisecond
	baseWindow     = 30 * time.Second
	holdAfterTight = 2 * time.Second
	minRate        = 16 << 10 // bytes per second
	// startRate is where the uploads begin while live outputs run: they
	// probe upwards from there rather than flood the uplink first.
	startRate = 256 << 10
)

// yielder turns the live outputs' statistics into the uploads' rate: from
// startRate when live outputs appear, multiplicative decrease when one is
// tight, a pause when one is very tight, growth while none is, never above
// the configured cap. With no cap, the uploads run unlimited once nothing
// has been tight for openAfter; with no live output, at the cap.
type yielder struct {
	capRate   float64 // bytes per second; +Inf: no cap
	rate      float64
	holdUntil time.Time
	lastTight time.Time
	outputs   map[string]*linkState
	lastSent  int64
	lastTick  time.Time
	tight     bool
	live      bool // the last tick had live outputs
}

const openAfter = 20 * time.Second

type linkState struct {
	sent, lost      uint64
	baseRTT, oldRTT time.Duration
	baseBuf, oldBuf time.Duration
	windowStart     time.Time
	seen            time.Time
}

func newYielder(capKbps int, now time.Time) *yielder {
	c := math.Inf(1)
	if capKbps > 0 {
		c = float64(capKbps) * 1000 / 8
	}
	return &yielder{capRate: c, rate: c, outputs: map[string]*linkState{}, lastTick: now}
}

// tick judges the samples and returns the rate to use. sent is the
// limiter's running total, for the throughput actually reached.
func (y *yielder) tick(now time.Time, samples []LinkSample, sent int64) float64 {
	dt := now.Sub(y.lastTick).Seconds()
	reached := 0.0
	if dt > 0 {
		reached = float64(sent-y.lastSent) / dt
	}
	y.lastSent, y.lastTick = sent, now

	tight, severe := false, false
	seen := map[string]bool{}
	for _, s := range samples {
		seen[s.Output] = true
		st := y.outputs[s.Output]
		if st == nil || s.SentPackets < st.sent || s.LostPackets < st.lost {
			// New output, or restarted (counters went back): a fresh base.
			y.outputs[s.Output] = &linkState{sent: s.SentPackets, lost: s.LostPackets,
				baseRTT: s.RTT, oldRTT: s.RTT, baseBuf: s.SendBuffer, oldBuf: s.SendBuffer, windowStart: now, seen: now}
			continue
		}
		st.seen = now
		ds, dl := s.SentPackets-st.sent, s.LostPackets-st.lost
		st.sent, st.lost = s.SentPackets, s.LostPackets
		if now.Sub(st.windowStart) > baseWindow {
			st.oldRTT, st.oldBuf = st.baseRTT, st.baseBuf
			st.baseRTT, st.baseBuf = s.RTT, s.SendBuffer
			st.windowStart = now
		}
		st.baseRTT, st.baseBuf = min(st.baseRTT, s.RTT), min(st.baseBuf, s.SendBuffer)
		baseRTT, baseBuf := min(st.baseRTT, st.oldRTT), min(st.baseBuf, st.oldBuf)
		loss := 0.0
		if ds+dl > 0 {
			loss = float64(dl) / float64(ds+dl)
		}
		if loss > lossTight || s.RTT > baseRTT+rttRise || s.SendBuffer > baseBuf+bufRise {
			tight = true
		}
		if loss > lossVeryTight || s.RTT > baseRTT+rttRiseSevere {
			severe = true
		}
	}
	// An output missing from a few samples keeps its base: starting
	// afresh while the uplink is tight would take the tight round trip
	// for the quiet one.
	for name, st := range y.outputs {
		if !seen[name] && now.Sub(st.seen) > baseWindow {
			delete(y.outputs, name)
		}
	}
	y.tight = tight
	if len(samples) == 0 {
		// Nothing live to yield to: the cap alone.
		y.rate, y.live, y.lastTight = y.capRate, false, now
		return y.rate
	}
	if !y.live {
		y.live = true
		y.rate, y.lastTight = min(y.capRate, startRate), now
	}
	switch {
	case severe:
		y.rate, y.holdUntil, y.lastTight = 0, now.Add(holdAfterTight), now
	case tight:
		base := y.rate
		if math.IsInf(base, 1) || reached < base {
			base = reached
		}
		y.rate = max(minRate, base/2)
		y.holdUntil, y.lastTight = now.Add(holdAfterTight), now
	case now.Before(y.holdUntil):
	case math.IsInf(y.rate, 1):
	default:
		step := max(float64(minRate), y.rate/8)
		y.rate = min(y.capRate, y.rate+step)
		if math.IsInf(y.capRate, 1) && now.Sub(y.lastTight) > openAfter {
			y.rate = y.capRate
		}
	}
	return y.rate
}
