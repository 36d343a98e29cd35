package metrics

import (
	"bytes"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"capbox/agent/fleet/wire"
	"capbox/agent/health"
)

// family is one metric with its samples, written together as the format
// requires (HELP, TYPE, then every sample of the name).
type family struct {
	name, typ, help string
	samples         []sample
}

type sample struct {
	labels []string // name, value, name, value...
	value  float64
}

// page collects families in the order they are first used.
type page struct {
	fams  []*family
	index map[string]*family
}

func (p *page) add(name, typ, help string, v float64, labels ...string) {
	f := p.index[name]
	if f == nil {
		f = &family{name: name, typ: typ, help: help}
		p.index[name] = f
		p.fams = append(p.fams, f)
	}
	f.samples = append(f.samples, sample{labels: labels, value: v})
}

func (p *page) gauge(name, help string, v float64, labels ...string) {
	p.add(name, "gauge", help, v, labels...)
}

func (p *page) counter(name, help string, v float64, labels ...string) {
	p.add(name, "counter", help, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Throttle reasons always written, 0 or 1, so alerts need no absent().
var throttleReasons = []string{"under_voltage", "arm_freq_capped", "throttled", "soft_temp_limit"}

var outputStates = []string{wire.OutputUp, wire.OutputConnecting, wire.OutputDown, wire.OutputDisabled}

var moods = []wire.Mood{wire.MoodHappy, wire.MoodWaking, wire.MoodHungry, wire.MoodSad, wire.MoodLost, wire.MoodSleeping}

var thermalLevels = []health.ThermalLevel{health.ThermalNormal, health.ThermalWarm, health.ThermalThrottling}

// Write renders a snapshot (plus optional moods and thermal status) in the
// text exposition format. Nothing is written before the first sample but
// the moods and thermal status.
func Write(w io.Writer, t wire.Telemetry, partMoods map[string]wire.Mood, th *health.ThermalStatus) error {
	p := &page{index: map[string]*family{}}
	if t.TS != 0 {
		telemetry(p, t)
	}
	if partMoods != nil {
		parts := make([]string, 0, len(partMoods))
		for k := range partMoods {
			parts = append(parts, k)
		}
		sort.Strings(parts)
		for _, part := range parts {
			for _, m := range moods {
				p.gauge("capbox_mood", "Mood of a part of the box (1 for the current one): happy, waking, hungry, sad, lost, sleeping.",
					b2f(partMoods[part] == m), "part", part, "mood", string(m))
			}
		}
	}
	if th != nil {
		for _, l := range thermalLevels {
			p.gauge("capbox_thermal_level", "Thermal judgement (1 for the current one): normal, warm (near the throttle point), throttling.",
				b2f(th.Level == l), "level", string(l))
		}
		for _, z := range th.Zones {
			if z.PointC > 0 {
				p.gauge("capbox_thermal_throttle_point_celsius", "Temperature where the zone starts being slowed down.", z.PointC, "zone", z.Name)
			}
		}
	}
	var b bytes.Buffer
	b.Grow(16 << 10) // a box's page is about 10 KiB
	for _, f := range p.fams {
		b.WriteString("# HELP ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(escapeHelp(f.help))
		b.WriteString("\n# TYPE ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(f.typ)
		b.WriteByte('\n')
		for _, s := range f.samples {
			b.WriteString(f.name)
			if len(s.labels) > 0 {
				b.WriteByte('{')
				for i := 0; i+1 < len(s.labels); i += 2 {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(s.labels[i])
					b.WriteString(`="`)
					b.WriteString(escapeLabel(s.labels[i+1]))
					b.WriteByte('"')
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.value))
			b.WriteByte('\n')
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func telemetry(p *page, t wire.Telemetry) {
	p.gauge("capbox_telemetry_timestamp_seconds", "When the health sample was taken (unix time, box clock).", float64(t.TS)/1000)
	p.gauge("capbox_uptime_seconds", "Time since the agent started.", float64(t.UptimeS))
	p.gauge("capbox_config_version", "Applied config version (0: the file).", float64(t.ConfigVersion))

	s := t.Sys
	p.gauge("capbox_cpu_busy_ratio", "Share of CPU time busy since the previous sample, all cores (0-1).", s.CPUPct/100)
	p.gauge("capbox_load1", "One-minute load average.", s.Load1)
	p.gauge("capbox_memory_total_bytes", "Total memory.", float64(s.MemTotalMB)*health.MiB)
	p.gauge("capbox_memory_available_bytes", "Memory available for new work (MemAvailable).", float64(s.MemAvailMB)*health.MiB)
	for _, d := range s.Disks {
		p.gauge("capbox_disk_total_bytes", "Size of the file system holding a path.", float64(d.TotalMB)*health.MiB, "mount", d.Mount)
	}
	for _, d := range s.Disks {
		p.gauge("capbox_disk_free_bytes", "Space the agent can still write on the file system holding a path.", float64(d.FreeMB)*health.MiB, "mount", d.Mount)
	}
	zones := make([]string, 0, len(s.TempsC))
	for z := range s.TempsC {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	for _, z := range zones {
		p.gauge("capbox_temperature_celsius", "Temperature of a thermal zone.", s.TempsC[z], "zone", z)
	}
	for _, r := range throttleReasons {
		p.gauge("capbox_throttle_active", "Firmware throttling condition now (Raspberry Pi get_throttled; 0 where the board has none).", b2f(contains(s.Throttle.Now, r)), "reason", r)
	}
	for _, r := range throttleReasons {
		p.gauge("capbox_throttle_occurred", "Firmware throttling condition seen since boot.", b2f(contains(s.Throttle.SinceBoot, r)), "reason", r)
	}
	p.gauge("capbox_clock_synced", "1 when a time daemon keeps the clock synchronised (adjtimex).", b2f(s.ClockSynced))

	for _, n := range t.Net {
		p.gauge("capbox_network_up", "1 when the interface's operational state is up.", b2f(n.Oper == "up"), "interface", n.If)
	}
	for _, n := range t.Net {
		p.gauge("capbox_network_carrier", "1 when the interface has a carrier.", b2f(n.Carrier), "interface", n.If)
	}
	for _, n := range t.Net {
		if n.SpeedMbps > 0 {
			p.gauge("capbox_network_speed_bytes", "Link speed in bytes per second, where the link reports one.", float64(n.SpeedMbps)*1e6/8, "interface", n.If)
		}
	}
	for _, n := range t.Net {
		p.counter("capbox_network_receive_bytes_total", "Bytes received (kernel counter).", float64(n.RxBytes), "interface", n.If)
	}
	for _, n := range t.Net {
		p.counter("capbox_network_transmit_bytes_total", "Bytes sent (kernel counter).", float64(n.TxBytes), "interface", n.If)
	}
	for _, n := range t.Net {
		p.counter("capbox_network_receive_errors_total", "Receive errors (kernel counter).", float64(n.RxErrors), "interface", n.If)
	}
	for _, n := range t.Net {
		p.counter("capbox_network_transmit_errors_total", "Transmit errors (kernel counter).", float64(n.TxErrors), "interface", n.If)
	}

	if c := t.Capture; c != nil {
		p.gauge("capbox_capture_signal", "1 while the video input has a usable signal.", b2f(c.Signal), "device", c.Device)
		p.gauge("capbox_capture_width_pixels", "Width of the captured video.", float64(c.Width), "device", c.Device)
		p.gauge("capbox_capture_height_pixels", "Height of the captured video.", float64(c.Height), "device", c.Device)
		p.gauge("capbox_capture_frames_per_second", "Frame rate of the captured video.", c.FPS, "device", c.Device)
		p.counter("capbox_capture_frames_total", "Video frames through the pipeline this session.", float64(c.Frames), "device", c.Device)
		p.counter("capbox_capture_dropped_frames_total", "Captured frames dropped this session.", float64(c.Dropped), "device", c.Device)
	}
	if a := t.Audio; a != nil {
		p.gauge("capbox_audio_peak_dbfs", "Audio peak level (dBFS).", a.PeakDBFS, "device", a.Device)
		p.gauge("capbox_audio_rms_dbfs", "Audio RMS level (dBFS).", a.RMSDBFS, "device", a.Device)
		p.gauge("capbox_audio_silent", "1 while the audio has been silent for a while.", b2f(a.Silent), "device", a.Device)
	}
	if e := t.Encoder; e != nil {
		p.gauge("capbox_encoder_info", "The video encoder in use.", 1, "element", e.Element,
			"hardware", strconv.FormatBool(e.Hardware), "zero_copy", strconv.FormatBool(e.ZeroCopy))
		p.gauge("capbox_encoder_bitrate_bits_per_second", "Target bitrate of the encoder.", float64(e.BitrateKbps)*1000)
		p.counter("capbox_encoder_frames_total", "Frames encoded this session.", float64(e.Frames))
	}
	for _, o := range t.Outputs {
		p.gauge("capbox_output_up", "1 while the output is up.", b2f(o.State == wire.OutputUp), "name", o.Name, "proto", o.Proto)
	}
	for _, o := range t.Outputs {
		for _, st := range outputStates {
			p.gauge("capbox_output_state", "Output state (1 for the current one): up, connecting, down, disabled.", b2f(o.State == st), "name", o.Name, "state", st)
		}
	}
	for _, o := range t.Outputs {
		p.counter("capbox_output_bytes_total", "Bytes sent by the output this session.", float64(o.Bytes), "name", o.Name)
	}
	for _, o := range t.Outputs {
		p.gauge("capbox_output_bitrate_bits_per_second", "Bitrate the output sends now.", float64(o.BitrateKbps)*1000, "name", o.Name)
	}
	for _, o := range t.Outputs {
		p.counter("capbox_output_reconnects_total", "Reconnections of the output this session.", float64(o.Reconnects), "name", o.Name)
	}
	for _, o := range t.Outputs {
		if o.RTTMs > 0 {
			p.gauge("capbox_output_rtt_seconds", "Round-trip time to the receiver (SRT).", o.RTTMs/1000, "name", o.Name)
		}
	}
	for _, o := range t.Outputs {
		if o.Proto == "srt" {
			p.gauge("capbox_output_loss_ratio", "Share of packets lost to the receiver (SRT, 0-1).", o.LossPct/100, "name", o.Name)
		}
	}
	if r := t.Recording; r != nil {
		p.counter("capbox_recording_segments_total", "Recording segments opened this session.", float64(r.Segments), "path", r.Path)
		p.counter("capbox_recording_bytes_total", "Bytes recorded this session.", float64(r.Bytes), "path", r.Path)
		p.gauge("capbox_recording_free_bytes", "Free space where the recording goes.", float64(r.FreeMB)*health.MiB, "path", r.Path)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// escapeLabel escapes a label value: backslash, double quote and newline.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return labelEscaper.Replace(s)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// escapeHelp escapes HELP text: backslash and newline.
func escapeHelp(s string) string {
	return helpEscaper.Replace(s)
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
