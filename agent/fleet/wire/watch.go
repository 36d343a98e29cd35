package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"regexp"
	"sort"
	"time"
)

// Protocol version 1.1 (PROTOCOL.md "Version 1.1: previews and meters on
// demand"): a viewer holds a lease with the watch command, and the box
// publishes previews and audio meters only while a lease holds.

// CmdWatch takes or renews a lease.
const CmdWatch = "watch"

// Topic suffixes of version 1.1 (box -> fleet, QoS 0, never retained).
const (
	TopicPreview = "preview"
	TopicMeter   = "meter"
)

// What a lease is for: the watch command's `what`.
const (
	WatchPreview = "preview"
	WatchMeter   = "meter"
)

// Bounds of a lease (PROTOCOL.md "watch").
const (
	// MaxPreviewJPEG bounds a preview: the JPEG itself is the payload.
	MaxPreviewJPEG = MaxPayload
	// MaxPreviewSide bounds a preview's width and height in pixels.
	MaxPreviewSide = 640
	// MaxMeterChannels bounds the channels of one meter reading.
	MaxMeterChannels = 8
	// MeterFloorDBFS is digital silence, and the lowest level sent.
	MeterFloorDBFS = -120
	// maxLeasesPerKind bounds the distinct intervals a box remembers for
	// one kind; the lease expiring first gives way.
	maxLeasesPerKind = 8
)

// watchBounds are the intervals each kind accepts, and the lease length.
var watchBounds = map[string][2]time.Duration{
	WatchPreview: {time.Second, time.Minute},
	WatchMeter:   {100 * time.Millisecond, 10 * time.Second},
}

// Lease lengths a box accepts.
const (
	MinWatchExpiry = 2 * time.Second
	MaxWatchExpiry = 2 * time.Minute
)

// durationArg is a Go duration without sign or spaces: 200ms, 3s, 1m.
var durationArg = regexp.MustCompile(`^[0-9]{1,6}(ms|s|m)$`)

// Watch is the watch command's spec. It is answered by the link itself,
// at once, like ping.
var Watch = CommandSpec{
	Name: CmdWatch,
	Args: []ArgSpec{
		{Key: "what", Allowed: []string{WatchPreview, WatchMeter}, Help: "what to publish"},
		{Key: "interval", Pattern: durationArg, Help: "how often: preview 1s..1m, meter 100ms..10s"},
		{Key: "expiry", Pattern: durationArg, Help: "how long the lease holds without renewal: 2s..2m"},
	},
	Timeout: time.Second,
	Help:    "publish previews or audio meters for a while (a lease the viewer renews)",
}

// WatchRequest is a checked watch: what, how often, for how long.
type WatchRequest struct {
	What     string
	Interval time.Duration
	Expiry   time.Duration
}

// ParseWatch checks decoded watch arguments against the bounds.
func ParseWatch(a Args) (WatchRequest, error) {
	b, ok := watchBounds[a.What]
	if !ok {
		return WatchRequest{}, fmt.Errorf("%w: what: want %s or %s", ErrBadArgs, WatchPreview, WatchMeter)
	}
	iv, err1 := time.ParseDuration(a.Interval)
	ex, err2 := time.ParseDuration(a.Expiry)
	switch {
	case err1 != nil || !durationArg.MatchString(a.Interval):
		return WatchRequest{}, fmt.Errorf("%w: interval: want a duration like 200ms or 3s", ErrBadArgs)
	case err2 != nil || !durationArg.MatchString(a.Expiry):
		return WatchRequest{}, fmt.Errorf("%w: expiry: want a duration like 15s", ErrBadArgs)
	case iv < b[0] || iv > b[1]:
		return WatchRequest{}, fmt.Errorf("%w: interval: %s wants %s..%s", ErrBadArgs, a.What, b[0], b[1])
	case ex < MinWatchExpiry || ex > MaxWatchExpiry:
		return WatchRequest{}, fmt.Errorf("%w: expiry: want %s..%s", ErrBadArgs, MinWatchExpiry, MaxWatchExpiry)
	case ex < iv:
		return WatchRequest{}, fmt.Errorf("%w: expiry: shorter than the interval", ErrBadArgs)
	}
	return WatchRequest{What: a.What, Interval: iv, Expiry: ex}, nil
}

// DecodeWatch checks a watch request's raw args: DecodeArgs, then the
// bounds.
func DecodeWatch(raw json.RawMessage) (WatchRequest, error) {
	a, err := DecodeArgs(Watch, raw)
	if err != nil {
		return WatchRequest{}, err
	}
	return ParseWatch(a)
}

// WatchArgs is the args object of a watch request.
func WatchArgs(what string, interval, expiry time.Duration) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"what": what, "interval": shortDuration(interval), "expiry": shortDuration(expiry)})
	return b
}

// shortDuration writes d the way durationArg reads it.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// WatchResult is a watch answer's result: what the box will publish.
type WatchResult struct {
	What string `json:"what"`
	// IntervalMS is the interval in force: the shortest any viewer's
	// lease asks for.
	IntervalMS int64 `json:"interval_ms"`
	// ExpiresInMS is how long the box publishes without another renewal.
	ExpiresInMS int64 `json:"expires_in_ms"`
}

// Leases is a box's bookkeeping of watch leases. Several viewers may
// watch one box: each renewal holds its interval until its expiry, the
// interval in force is the shortest held, and a kind is published while
// any lease for it holds. Not safe for concurrent use: its owner's loop
// keeps it.
type Leases struct {
	held map[string]map[time.Duration]time.Time // kind -> interval -> until
}

// Renew takes or renews the lease of r at now.
func (l *Leases) Renew(r WatchRequest, now time.Time) WatchResult {
	if l.held == nil {
		l.held = map[string]map[time.Duration]time.Time{}
	}
	l.expire(now)
	m := l.held[r.What]
	if m == nil {
		m = map[time.Duration]time.Time{}
		l.held[r.What] = m
	}
	until := now.Add(r.Expiry)
	if until.After(m[r.Interval]) {
		m[r.Interval] = until
	}
	for len(m) > maxLeasesPerKind {
		first := time.Duration(-1)
		for iv, u := range m {
			if first < 0 || u.Before(m[first]) {
				first = iv
			}
		}
		delete(m, first)
	}
	iv, last, _ := l.Active(r.What, now)
	return WatchResult{What: r.What, IntervalMS: iv.Milliseconds(), ExpiresInMS: last.Sub(now).Milliseconds()}
}

// Active reports the interval in force for a kind and when its last
// lease ends; ok is false when no lease holds.
func (l *Leases) Active(what string, now time.Time) (interval time.Duration, until time.Time, ok bool) {
	for iv, u := range l.held[what] {
		if !u.After(now) {
			continue
		}
		if !ok || iv < interval {
			interval = iv
		}
		if u.After(until) {
			until = u
		}
		ok = true
	}
	return interval, until, ok
}

// Kinds lists the kinds with a lease holding at now, sorted.
func (l *Leases) Kinds(now time.Time) []string {
	l.expire(now)
	out := make([]string, 0, len(l.held))
	for k := range l.held {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (l *Leases) expire(now time.Time) {
	for k, m := range l.held {
		for iv, u := range m {
			if !u.After(now) {
				delete(m, iv)
			}
		}
		if len(m) == 0 {
			delete(l.held, k)
		}
	}
}

// Meter is one audio level reading on `meter`, sent at the lease's
// interval.
type Meter struct {
	Header
	// Channels are the levels per channel, in dBFS, MeterFloorDBFS for
	// digital silence.
	Channels []MeterChannel `json:"channels"`
}

// MeterChannel is one channel's level over the last interval.
type MeterChannel struct {
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
}

// ClampDBFS keeps a level within what a meter may carry: the level
// element says -inf for digital silence.
func ClampDBFS(v float64) float64 {
	if math.IsNaN(v) || v < MeterFloorDBFS {
		return MeterFloorDBFS
	}
	return min(v, 0)
}

// Errors of the version 1.1 payloads.
var (
	ErrBadMeter   = errors.New("meter unusable")
	ErrBadPreview = errors.New("preview is not a small JPEG")
)

// DecodeMeter parses a meter payload as readers do: the checks every
// payload gets, keys it does not know ignored, and limits on what it
// keeps: v 1, 1..8 channels, levels from -120 to 0 dBFS.
func DecodeMeter(b []byte) (Meter, error) {
	if err := CheckPayload(b); err != nil {
		return Meter{}, err
	}
	var m Meter
	if err := json.Unmarshal(b, &m); err != nil {
		return Meter{}, fmt.Errorf("%w: %s", ErrBadField, jsonMessage(err))
	}
	if m.V != SchemaVersion {
		return Meter{}, fmt.Errorf("%w: v=%d", ErrVersion, m.V)
	}
	if len(m.Channels) == 0 || len(m.Channels) > MaxMeterChannels {
		return Meter{}, fmt.Errorf("%w: want 1..%d channels, got %d", ErrBadMeter, MaxMeterChannels, len(m.Channels))
	}
	for i, c := range m.Channels {
		for _, v := range []float64{c.PeakDBFS, c.RMSDBFS} {
			if v < MeterFloorDBFS || v > 0 {
				return Meter{}, fmt.Errorf("%w: channels[%d]: want %d..0 dBFS", ErrBadMeter, i, MeterFloorDBFS)
			}
		}
	}
	return m, nil
}

// CheckPreview checks a preview payload: a baseline or progressive JPEG
// of at most MaxPreviewJPEG bytes and MaxPreviewSide pixels a side. Only
// its header is decoded.
func CheckPreview(b []byte) error {
	if len(b) > MaxPreviewJPEG {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadPreview, len(b), MaxPreviewJPEG)
	}
	if len(b) < 4 || !bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}) || !bytes.HasSuffix(b, []byte{0xff, 0xd9}) {
		return fmt.Errorf("%w: no JPEG start and end markers", ErrBadPreview)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadPreview, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxPreviewSide || cfg.Height > MaxPreviewSide {
		return fmt.Errorf("%w: %dx%d, limit %d a side", ErrBadPreview, cfg.Width, cfg.Height, MaxPreviewSide)
	}
	return nil
}
