package health

import (
	"fmt"
	"strconv"
	"strings"

	"capbox/agent/fleet/wire"
)

// Change is one state that differs between two snapshots.
type Change struct {
	// Part is "sys", "net:eth0", "capture", "audio", "encoder",
	// "output:<name>", "recording" or "config".
	Part  string `json:"part"`
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s %s -> %s", c.Part, c.Field, c.From, c.To)
}

// none is how an absent part or empty value reads.
const none = "none"

// Changed lists the states (not counters, levels or temperatures) that
// differ from prev to cur: what capboxd logs at info, one line per
// snapshot that changed. A zero prev (no snapshot yet) reports every
// present part as appearing.
func Changed(prev, cur wire.Telemetry) []Change {
	var out []Change
	add := func(part, field, from, to string) {
		if from != to {
			out = append(out, Change{Part: part, Field: field, From: orNone(from), To: orNone(to)})
		}
	}
	// The machine.
	add("sys", "clock_synced", yesNo(prev.Sys.ClockSynced), yesNo(cur.Sys.ClockSynced))
	add("sys", "throttle", list(prev.Sys.Throttle.Now), list(cur.Sys.Throttle.Now))
	add("sys", "throttle_since_boot", list(prev.Sys.Throttle.SinceBoot), list(cur.Sys.Throttle.SinceBoot))

	// The network, by interface name.
	pn, cn := netByName(prev.Net), netByName(cur.Net)
	for _, name := range union(keys(prev.Net), keys(cur.Net)) {
		p, c := pn[name], cn[name]
		part := "net:" + name
		if p == nil || c == nil {
			add(part, "present", yesNo(p != nil), yesNo(c != nil))
			if c == nil {
				continue
			}
			p = &wire.NetIf{}
		}
		add(part, "oper", p.Oper, c.Oper)
		add(part, "carrier", yesNo(p.Carrier), yesNo(c.Carrier))
		add(part, "speed", speedWords(p.SpeedMbps), speedWords(c.SpeedMbps))
		add(part, "addrs", list(p.Addrs), list(c.Addrs))
	}

	// The pipeline.
	add("capture", "device", captureDevice(prev.Capture), captureDevice(cur.Capture))
	if cur.Capture != nil {
		pc := prev.Capture
		if pc == nil {
			pc = &wire.CaptureHealth{}
		}
		add("capture", "signal", yesNo(pc.Signal), yesNo(cur.Capture.Signal))
		add("capture", "format", format(pc), format(cur.Capture))
	}
	add("audio", "device", audioDevice(prev.Audio), audioDevice(cur.Audio))
	if cur.Audio != nil && prev.Audio != nil {
		add("audio", "silent", yesNo(prev.Audio.Silent), yesNo(cur.Audio.Silent))
	}
	add("encoder", "element", encoder(prev.Encoder), encoder(cur.Encoder))

	po, co := outByName(prev.Outputs), outByName(cur.Outputs)
	for _, name := range union(outNames(prev.Outputs), outNames(cur.Outputs)) {
		p, c := po[name], co[name]
		part := wire.OutputPart(name)
		switch {
		case c == nil:
			add(part, "state", p.State, none)
		case p == nil:
			add(part, "state", none, c.State)
		default:
			add(part, "state", p.State, c.State)
		}
	}
	add("recording", "path", recPath(prev.Recording), recPath(cur.Recording))
	add("config", "version", strconv.FormatInt(prev.ConfigVersion, 10), strconv.FormatInt(cur.ConfigVersion, 10))
	return out
}

// ChangeLine joins changes into one log line.
func ChangeLine(cs []Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func list(s []string) string { return strings.Join(s, ",") }

func speedWords(mbps int) string {
	if mbps <= 0 {
		return "unknown"
	}
	return strconv.Itoa(mbps) + "Mb/s"
}

func netByName(ns []wire.NetIf) map[string]*wire.NetIf {
	m := make(map[string]*wire.NetIf, len(ns))
	for i := range ns {
		m[ns[i].If] = &ns[i]
	}
	return m
}

func keys(ns []wire.NetIf) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.If
	}
	return out
}

func outByName(os []wire.OutputHealth) map[string]*wire.OutputHealth {
	m := make(map[string]*wire.OutputHealth, len(os))
	for i := range os {
		m[os[i].Name] = &os[i]
	}
	return m
}

func outNames(os []wire.OutputHealth) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.Name
	}
	return out
}

// union keeps a's order, then b's new names.
func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func captureDevice(c *wire.CaptureHealth) string {
	if c == nil {
		return ""
	}
	return c.Device
}

// format is like 1920x1080@60, empty without a size.
func format(c *wire.CaptureHealth) string {
	if c == nil || c.Width == 0 {
		return ""
	}
	return fmt.Sprintf("%dx%d@%s", c.Width, c.Height, strconv.FormatFloat(c.FPS, 'f', -1, 64))
}

func audioDevice(a *wire.AudioHealth) string {
	if a == nil {
		return ""
	}
	return a.Device
}

func encoder(e *wire.EncoderHealth) string {
	if e == nil {
		return ""
	}
	s := e.Element
	if e.Hardware {
		s += " (hardware"
		if e.ZeroCopy {
			s += ", zero-copy"
		}
		s += ")"
	}
	return s
}

func recPath(r *wire.RecordingHealth) string {
	if r == nil {
		return ""
	}
	return r.Path
}
