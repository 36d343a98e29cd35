package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"capbox/agent/fleet/wire"
	"capbox/internal/output"
)

// elementName is a GStreamer element name. The device id, output name and
// prefix patterns are the fleet protocol's (agent/fleet/wire).
var elementName = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{1,63}$`)

// MaxOutputs bounds the outputs one encode feeds.
const MaxOutputs = 16

// Validate checks the whole document and returns every problem found.
func (c *Config) Validate() Errors {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}

	if c.Device.ID != "auto" && !wire.DeviceIDPattern.MatchString(c.Device.ID) {
		add("device.id", "want auto or %s, got %q", wire.DeviceIDSyntax, c.Device.ID)
	}

	checkSource := func(path, v string) {
		switch {
		case v == "auto", v == "test", v == "none":
		case strings.HasPrefix(v, "/dev/"):
		case path == "capture.audio" && strings.HasPrefix(v, "hw:"):
		default:
			add(path, "want auto, test, none or a device, got %q", v)
		}
	}
	checkSource("capture.video", c.Capture.Video)
	checkSource("capture.audio", c.Capture.Audio)
	if c.Capture.EDID == "" {
		add("capture.edid", "want default, none or a file path")
	}

	e := c.Encode
	switch e.Codec {
	case "h264":
	case "fwht":
		// Test only: the kernel's vicodec stands in for a hardware encoder
		// in the virtual capture box; no container carries FWHT.
		if len(c.Outputs) > 0 {
			add("encode.codec", "fwht (test only) records raw FWHT and takes no outputs")
		}
	default:
		add("encode.codec", "want h264 (or fwht, test only), got %q", e.Codec)
	}
	if e.Encoder != "auto" && !elementName.MatchString(e.Encoder) {
		add("encode.encoder", "want auto or a GStreamer element name, got %q", e.Encoder)
	}
	if e.BitrateKbps < 100 || e.BitrateKbps > 50000 {
		add("encode.bitrate_kbps", "want 100..50000, got %d", e.BitrateKbps)
	}
	if k := e.KeyframeInterval.D(); k < 500*time.Millisecond || k > 10*time.Second {
		add("encode.keyframe_interval", "want 500ms..10s, got %s", k)
	}
	if k := e.TrialTimeout.D(); k < time.Second || k > time.Minute {
		add("encode.trial_timeout", "want 1s..1m, got %s", k)
	}
	if e.MaxWidth < 160 || e.MaxWidth > 4096 || e.MaxWidth%2 != 0 {
		add("encode.max_width", "want an even number 160..4096, got %d", e.MaxWidth)
	}
	if e.MaxHeight < 120 || e.MaxHeight > 2304 || e.MaxHeight%2 != 0 {
		add("encode.max_height", "want an even number 120..2304, got %d", e.MaxHeight)
	}
	if e.MaxFPS < 1 || e.MaxFPS > 120 {
		add("encode.max_fps", "want 1..120, got %d", e.MaxFPS)
	}

	if len(c.Outputs) > MaxOutputs {
		add("outputs", "at most %d outputs, got %d", MaxOutputs, len(c.Outputs))
	}
	seen := map[string]bool{}
	for i, o := range c.Outputs {
		p := fmt.Sprintf("outputs[%d]", i)
		if !wire.OutputNamePattern.MatchString(o.Name) {
			add(p+".name", "want %s, got %q", wire.OutputNameSyntax, o.Name)
		} else if seen[o.Name] {
			add(p+".name", "duplicate output name %q", o.Name)
		}
		seen[o.Name] = true
		if _, err := output.Parse(o.Name, o.URL, o.Key, o.KeyFile); err != nil {
			add(p+".url", "%v", err)
		}
	}

	r := c.Record
	if r.Path == "" {
		add("record.path", "want auto or a directory")
	}
	if s := r.Segment.D(); s < 10*time.Second || s > 24*time.Hour {
		add("record.segment", "want 10s..24h, got %s", s)
	}
	if r.KeepFree < 0 {
		add("record.keep_free", "must not be negative")
	}
	if r.Format != "ts" && r.Format != "mp4" {
		add("record.format", "want ts or mp4, got %q", r.Format)
	}

	if len(c.Slate.Text) > 200 {
		add("slate.text", "at most 200 bytes")
	}
	for _, ch := range c.Slate.Text {
		if !unicode.IsPrint(ch) {
			add("slate.text", "only printable characters")
			break
		}
	}

	es = append(es, c.Fleet.validate()...)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil || port == "" {
			add("metrics.listen", "want host:port or :port, got %q", c.Metrics.Listen)
		}
	}
	return es
}

func (f Fleet) validate() Errors {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if !wire.ValidPrefix(f.Prefix) {
		add("fleet.prefix", "want one topic level without wildcards, got %q", f.Prefix)
	}
	if t := f.TelemetryInterval.D(); t < time.Second || t > time.Hour {
		add("fleet.telemetry_interval", "want 1s..1h, got %s", t)
	}
	if f.Password != "" && f.PasswordFile != "" {
		add("fleet.password", "password and password_file both set")
	}
	if (f.Cert == "") != (f.Key == "") {
		add("fleet.cert", "cert and key go together")
	}
	if f.Broker == "" {
		return es
	}
	u, err := url.Parse(f.Broker)
	if err != nil || u.Hostname() == "" {
		add("fleet.broker", "want mqtt://host:port or mqtts://host:port")
		return es
	}
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
	case "mqtt", "tcp":
		if !isLoopbackHost(u.Hostname()) && !f.AllowInsecure {
			add("fleet.broker", "plain mqtt:// to a non-loopback broker is refused: use mqtts:// or set allow_insecure")
		}
	default:
		add("fleet.broker", "unknown scheme %q (want mqtt or mqtts)", u.Scheme)
	}
	if u.User != nil {
		add("fleet.broker", "put credentials in username/password_file, not in the URL")
	}
	return es
}
