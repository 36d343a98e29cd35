package health

import (
	"math"

	"capbox/agent/fleet/wire"
	"capbox/pipelines"
)

// PipelineSource is the running pipeline; the agent's Runtime implements it.
type PipelineSource interface {
	Stats() pipelines.Stats
}

// MinDBFS is the floor for audio levels: a meter reads -Inf on digital
// silence, and JSON has no infinity.
const MinDBFS = -120.0

// counters keeps pipeline counters cumulative across pipeline restarts:
// the runtime counts from its own start, the protocol from the session's.
type counters struct {
	last map[string]uint64
	base map[string]uint64
}

func newCounters() *counters {
	return &counters{last: map[string]uint64{}, base: map[string]uint64{}}
}

// add returns the session total of a counter whose runtime value is raw.
// A value lower than the last one means the runtime started again.
func (c *counters) add(key string, raw uint64) uint64 {
	if raw < c.last[key] {
		c.base[key] += c.last[key]
	}
	c.last[key] = raw
	return c.base[key] + raw
}

// restart folds every counter into its base: a new runtime counts from 0.
func (c *counters) restart() {
	for k, v := range c.last {
		c.base[k] += v
		c.last[k] = 0
	}
}

// pipelineSections maps the runtime's stats into the protocol's sections.
// Output URLs are not carried at all (pipelines redacts them anyway).
func pipelineSections(st pipelines.Stats, acc *counters, t *wire.Telemetry) {
	v := st.Video
	frames := acc.add("video.frames", v.Frames)
	if v.Kind != "" {
		dev := v.Device
		if dev == "" {
			dev = string(v.Kind)
		}
		t.Capture = &wire.CaptureHealth{
			Device: dev,
			// The slate runs exactly while the input has no usable signal.
			Signal: v.Running && !st.Slate,
			Width:  v.Width, Height: v.Height, FPS: float64(v.FPS),
			Frames: frames,
			// pipelines.Stats has no capture drop counter yet: 0.
		}
	}
	if a := st.Audio; a.Kind != "" {
		dev := a.Device
		if dev == "" {
			dev = string(a.Kind)
		}
		t.Audio = &wire.AudioHealth{Device: dev, PeakDBFS: dbfs(a.PeakDBFS), RMSDBFS: dbfs(a.RMSDBFS), Silent: a.Silent}
	}
	if e := st.Encoder; e.Element != "" {
		t.Encoder = &wire.EncoderHealth{Element: e.Element, Hardware: e.Hardware, ZeroCopy: e.ZeroCopy, BitrateKbps: e.BitrateKbps, Frames: frames}
	}
	for _, o := range st.Outputs {
		k := "out/" + o.Name + "/"
		t.Outputs = append(t.Outputs, wire.OutputHealth{
			Name: o.Name, Proto: string(o.Proto), State: string(o.State),
			Bytes:       acc.add(k+"bytes", o.Bytes),
			BitrateKbps: o.BitrateKbps,
			Reconnects:  acc.add(k+"reconnects", o.Reconnects),
			RTTMs:       finite(o.RTTms, 1),
			LossPct:     finite(o.LossPct, 2),
		})
	}
	if r := st.Recorder; r.Enabled {
		t.Recording = &wire.RecordingHealth{
			Path:     r.Dir,
			Segments: int(acc.add("rec.segments", r.Segments)),
			Bytes:    acc.add("rec.bytes", r.Bytes),
			FreeMB:   int64(r.FreeBytes / MiB),
		}
	}
}

func dbfs(v float64) float64 {
	if math.IsNaN(v) || v < MinDBFS {
		return MinDBFS
	}
	return math.Round(v*10) / 10
}

// finite rounds v and turns NaN/Inf (a statistic not measured yet) into 0.
func finite(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
