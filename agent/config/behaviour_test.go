package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fieldsIn lists the paths Validate names.
func fieldsIn(es Errors) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

// Every bound `capboxd check` enforces: the limit itself passes and one step
// beyond is refused, naming the field.
func TestValidationBounds(t *testing.T) {
	cases := []struct {
		path     string
		set      func(c *Config)
		accepted bool
	}{
		{"encode.bitrate_kbps", func(c *Config) { c.Encode.BitrateKbps = 100 }, true},
		{"encode.bitrate_kbps", func(c *Config) { c.Encode.BitrateKbps = 99 }, false},
		{"encode.bitrate_kbps", func(c *Config) { c.Encode.BitrateKbps = 50000 }, true},
		{"encode.bitrate_kbps", func(c *Config) { c.Encode.BitrateKbps = 50001 }, false},
		{"encode.keyframe_interval", func(c *Config) { c.Encode.KeyframeInterval = Duration(500 * time.Millisecond) }, true},
		{"encode.keyframe_interval", func(c *Config) { c.Encode.KeyframeInterval = Duration(499 * time.Millisecond) }, false},
		{"encode.keyframe_interval", func(c *Config) { c.Encode.KeyframeInterval = Duration(10 * time.Second) }, true},
		{"encode.keyframe_interval", func(c *Config) { c.Encode.KeyframeInterval = Duration(10*time.Second + 1) }, false},
		{"encode.trial_timeout", func(c *Config) { c.Encode.TrialTimeout = Duration(time.Second) }, true},
		{"encode.trial_timeout", func(c *Config) { c.Encode.TrialTimeout = Duration(time.Second - 1) }, false},
		{"encode.trial_timeout", func(c *Config) { c.Encode.TrialTimeout = Duration(time.Minute) }, true},
		{"encode.trial_timeout", func(c *Config) { c.Encode.TrialTimeout = Duration(time.Minute + 1) }, false},
		{"encode.max_width", func(c *Config) { c.Encode.MaxWidth = 160 }, true},
		{"encode.max_width", func(c *Config) { c.Encode.MaxWidth = 158 }, false},
		{"encode.max_width", func(c *Config) { c.Encode.MaxWidth = 4096 }, true},
		{"encode.max_width", func(c *Config) { c.Encode.MaxWidth = 4098 }, false},
		{"encode.max_width", func(c *Config) { c.Encode.MaxWidth = 1281 }, false},
		{"encode.max_height", func(c *Config) { c.Encode.MaxHeight = 120 }, true},
		{"encode.max_height", func(c *Config) { c.Encode.MaxHeight = 118 }, false},
		{"encode.max_height", func(c *Config) { c.Encode.MaxHeight = 2304 }, true},
		{"encode.max_height", func(c *Config) { c.Encode.MaxHeight = 2306 }, false},
		{"encode.max_height", func(c *Config) { c.Encode.MaxHeight = 721 }, false},
		{"encode.max_fps", func(c *Config) { c.Encode.MaxFPS = 1 }, true},
		{"encode.max_fps", func(c *Config) { c.Encode.MaxFPS = 0 }, false},
		{"encode.max_fps", func(c *Config) { c.Encode.MaxFPS = 120 }, true},
		{"encode.max_fps", func(c *Config) { c.Encode.MaxFPS = 121 }, false},
		{"encode.encoder", func(c *Config) { c.Encode.Encoder = "v4l2h264enc" }, true},
		{"encode.encoder", func(c *Config) { c.Encode.Encoder = "x264enc ! filesink" }, false},
		{"encode.codec", func(c *Config) { c.Encode.Codec = "h265" }, false},
		{"encode.codec", func(c *Config) { c.Encode.Codec = "fwht" }, false}, // the default has an output
		{"encode.codec", func(c *Config) { c.Encode.Codec, c.Outputs = "fwht", nil }, true},
		{"record.segment", func(c *Config) { c.Record.Segment = Duration(10 * time.Second) }, true},
		{"record.segment", func(c *Config) { c.Record.Segment = Duration(10*time.Second - 1) }, false},
		{"record.segment", func(c *Config) { c.Record.Segment = Duration(24 * time.Hour) }, true},
		{"record.segment", func(c *Config) { c.Record.Segment = Duration(24*time.Hour + 1) }, false},
		{"record.keep_free", func(c *Config) { c.Record.KeepFree = 0 }, true},
		{"record.keep_free", func(c *Config) { c.Record.KeepFree = -1 }, false},
		{"record.format", func(c *Config) { c.Record.Format = "mp4" }, true},
		{"record.format", func(c *Config) { c.Record.Format = "mkv" }, false},
		{"record.path", func(c *Config) { c.Record.Path = "" }, false},
		{"slate.text", func(c *Config) { c.Slate.Text = strings.Repeat("a", 200) }, true},
		{"slate.text", func(c *Config) { c.Slate.Text = strings.Repeat("a", 201) }, false},
		{"slate.text", func(c *Config) { c.Slate.Text = "Zurück um 14:00 ☕" }, true},
		{"slate.text", func(c *Config) { c.Slate.Text = "back\nsoon" }, false},
		{"fleet.telemetry_interval", func(c *Config) { c.Fleet.TelemetryInterval = Duration(time.Second) }, true},
		{"fleet.telemetry_interval", func(c *Config) { c.Fleet.TelemetryInterval = Duration(time.Second - 1) }, false},
		{"fleet.telemetry_interval", func(c *Config) { c.Fleet.TelemetryInterval = Duration(time.Hour) }, true},
		{"fleet.telemetry_interval", func(c *Config) { c.Fleet.TelemetryInterval = Duration(time.Hour + 1) }, false},
		{"fleet.prefix", func(c *Config) { c.Fleet.Prefix = "capbox/+" }, false},
		{"fleet.password", func(c *Config) { c.Fleet.Password, c.Fleet.PasswordFile = "x", "/etc/capbox/pw" }, false},
		{"fleet.cert", func(c *Config) { c.Fleet.Cert = "/etc/capbox/cert.pem" }, false},
		{"fleet.cert", func(c *Config) { c.Fleet.Key = "/etc/capbox/key.pem" }, false},
		{"fleet.cert", func(c *Config) { c.Fleet.Cert, c.Fleet.Key = "/etc/capbox/cert.pem", "/etc/capbox/key.pem" }, true},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "mqtts://fleet.example.org:8883" }, true},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "mqtt://127.0.0.1:1883" }, true},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "mqtt://fleet.example.org" }, false},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker, c.Fleet.AllowInsecure = "mqtt://fleet.example.org", true }, true},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "https://fleet.example.org" }, false},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "mqtts://u:p@fleet.example.org" }, false},
		{"fleet.broker", func(c *Config) { c.Fleet.Broker = "mqtts://" }, false},
		{"log.level", func(c *Config) { c.Log.Level = "warn" }, true},
		{"log.level", func(c *Config) { c.Log.Level = "trace" }, false},
		{"metrics.listen", func(c *Config) { c.Metrics.Listen = ":9101" }, true},
		{"metrics.listen", func(c *Config) { c.Metrics.Listen = "127.0.0.1:" }, false},
		{"metrics.listen", func(c *Config) { c.Metrics.Listen = "9101" }, false},
		{"device.id", func(c *Config) { c.Device.ID = "room-1" }, true},
		{"device.id", func(c *Config) { c.Device.ID = "Room 1" }, false},
		{"capture.video", func(c *Config) { c.Capture.Video = "/dev/video0" }, true},
		{"capture.video", func(c *Config) { c.Capture.Video = "hw:1" }, false},
		{"capture.video", func(c *Config) { c.Capture.Video = "none" }, true},
		{"capture.audio", func(c *Config) { c.Capture.Audio = "hw:1,0" }, true},
		{"capture.audio", func(c *Config) { c.Capture.Audio = "test" }, true},
		{"capture.audio", func(c *Config) { c.Capture.Audio = "usb" }, false},
		{"capture.edid", func(c *Config) { c.Capture.EDID = "" }, false},
	}
	for _, c := range cases {
		cfg := Default()
		c.set(&cfg)
		es := cfg.Validate()
		paths := fieldsIn(es)
		refused := false
		for _, p := range paths {
			refused = refused || p == c.path
		}
		if refused == c.accepted {
			t.Errorf("%s: accepted=%v, errors %v", c.path, !refused, es)
		}
		if c.accepted && len(es) > 0 {
			t.Errorf("%s: other errors %v", c.path, es)
		}
	}
}

func TestOutputsValidation(t *testing.T) {
	cfg := Default()
	cfg.Outputs = nil
	for i := range MaxOutputs {
		cfg.Outputs = append(cfg.Outputs, Output{Name: "o" + string(rune('a'+i)), URL: "srt://127.0.0.1:9000"})
	}
	if es := cfg.Validate(); len(es) > 0 {
		t.Errorf("%d outputs: %v", MaxOutputs, es)
	}
	cfg.Outputs = append(cfg.Outputs, Output{Name: "one-too-many", URL: "srt://127.0.0.1:9000"})
	if es := cfg.Validate(); len(es) != 1 || es[0].Path != "outputs" {
		t.Errorf("%d outputs: %v", MaxOutputs+1, es)
	}
	cfg.Outputs = []Output{
		{Name: "a", URL: "srt://127.0.0.1:9000"},
		{Name: "a", URL: "srt://127.0.0.1:9001"},
		{Name: "Bad Name", URL: "srt://127.0.0.1:9002"},
		{Name: "b", URL: "ftp://127.0.0.1/x"},
	}
	got := fieldsIn(cfg.Validate())
	want := []string{"outputs[1].name", "outputs[2].name", "outputs[3].url"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v", got, want)
	}
}

// Output.IsEnabled: outputs are on unless switched off.
func TestOutputEnabled(t *testing.T) {
	on, off := true, false
	if !(Output{}).IsEnabled() || !(Output{Enabled: &on}).IsEnabled() || (Output{Enabled: &off}).IsEnabled() {
		t.Error("IsEnabled")
	}
	cfg, err := Parse([]byte("outputs:\n  - {name: a, url: \"srt://127.0.0.1:9000\", enabled: false}\n  - {name: b, url: \"srt://127.0.0.1:9001\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Outputs[0].IsEnabled() || !cfg.Outputs[1].IsEnabled() {
		t.Errorf("outputs %+v", cfg.Outputs)
	}
}

func TestRecordPath(t *testing.T) {
	cfg := Default()
	cfg.Record.Path = "/srv/rec"
	if got := cfg.RecordPath(); got != "/srv/rec" {
		t.Errorf("a set path: %s", got)
	}
	cfg.Record.Path = "auto"
	want := "recordings"
	if st, err := os.Stat("/data"); err == nil && st.IsDir() {
		want = "/data/recordings"
	}
	if got := cfg.RecordPath(); got != want {
		t.Errorf("auto: %s, want %s", got, want)
	}
}

// Sizes are read in decimal and binary units and written back in the
// largest decimal unit that divides them.
func TestByteSizes(t *testing.T) {
	read := map[string]ByteSize{
		"2GB": 2 * GB, "500MB": 500 * MB, "3KB": 3 * KB, "1TB": TB, "1.5GiB": 3 << 29, "10MiB": 10 << 20,
		"4KiB": 4 << 10, "2TiB": 2 << 40, "512": 512, "512B": 512, " 7 gb ": 7 * GB, "0": 0,
	}
	for s, want := range read {
		var got ByteSize
		if err := got.UnmarshalText([]byte(s)); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1GB", "lots", "1e30TB", "GB"} {
		var got ByteSize
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q read as %d", bad, got)
		}
	}
	written := map[ByteSize]string{2 * GB: "2GB", 1500 * MB: "1500MB", 3 * TB: "3TB", 7 * KB: "7KB", 1024: "1024", 0: "0", 1 << 20: "1048576"}
	for v, want := range written {
		if got, _ := v.MarshalText(); string(got) != want {
			t.Errorf("%d written %q, want %q", int64(v), got, want)
		}
	}
	if KB != 1000 || MB != 1000*1000 || GB != 1000*1000*1000 || TB != 1000*1000*1000*1000 {
		t.Error("decimal units")
	}
}

func TestBrokerIsLoopback(t *testing.T) {
	for broker, want := range map[string]bool{
		"mqtt://127.0.0.1:1883": true, "mqtt://localhost": true, "mqtt://[::1]:1883": true,
		"mqtts://fleet.example.org": false, "mqtt://10.1.2.3": false, "::": false,
	} {
		if got := BrokerIsLoopback(broker); got != want {
			t.Errorf("%s: %v", broker, got)
		}
	}
}

// A file over MaxSize is refused before it is parsed; one at it is read.
func TestLoadFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	at := filepath.Join(dir, "at.yaml")
	pad := "# " + strings.Repeat("x", MaxSize-len("# \nlog: {level: warn}\n")) + "\nlog: {level: warn}\n"
	if err := os.WriteFile(at, []byte(pad), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(at, true, nil)
	if err != nil || cfg.Log.Level != "warn" {
		t.Errorf("a file of %d bytes: %v", len(pad), err)
	}
	over := filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(over, []byte(pad+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(over, true, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file over the limit: %v", err)
	}
	if _, err := Load(dir, true, nil); err == nil {
		t.Error("a directory read as a config")
	}
	if _, err := Load(filepath.Join(dir, "absent.yaml"), true, nil); err == nil {
		t.Error("a missing file that must exist")
	}
	if cfg, err := Load(filepath.Join(dir, "absent.yaml"), false, nil); err != nil || cfg.Log.Level != "info" {
		t.Errorf("a missing default file: %v", err)
	}
}

// Nesting up to maxDepth levels is parsed (and judged on its content);
// deeper is refused before decoding, in mappings and lists alike.
func TestNestingDepth(t *testing.T) {
	nestMap := func(levels int) string {
		// Levels of mappings under an unknown key: refused for the key when
		// shallow enough, for the depth when not.
		return "x: " + strings.Repeat("{a: ", levels-1) + "1" + strings.Repeat("}", levels-1) + "\n"
	}
	nestList := func(levels int) string {
		return "x: " + strings.Repeat("[", levels-1) + "1" + strings.Repeat("]", levels-1) + "\n"
	}
	for name, nest := range map[string]func(int) string{"mappings": nestMap, "lists": nestList} {
		_, err := Parse([]byte(nest(maxDepth)))
		if err == nil || strings.Contains(err.Error(), "nested deeper") || !strings.Contains(err.Error(), `unknown key "x"`) {
			t.Errorf("%s, %d levels: %v", name, maxDepth, err)
		}
		_, err = Parse([]byte(nest(maxDepth + 1)))
		if err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Errorf("%s, %d levels: %v", name, maxDepth+1, err)
		}
	}
	// Anchors add no level.
	doc := "log: &l {level: warn}\nslate: &s {text: hi}\n"
	if cfg, err := Parse([]byte(doc)); err != nil || cfg.Log.Level != "warn" || cfg.Slate.Text != "hi" {
		t.Errorf("anchors: %v", err)
	}
}

// Unknown keys are found under tags, anchors, quoted keys and in every
// element of a list.
func TestUnknownKeysEverywhere(t *testing.T) {
	doc := `log: !!map {levle: info}
slate: &s {txt: hi}
"encode": {"bitrate": 1}
outputs:
  - {name: a, url: "srt://127.0.0.1:9000"}
  - {name: b, url: "srt://127.0.0.1:9001", extra: 1}
`
	_, err := Parse([]byte(doc))
	got := fieldsIn(AsErrors(err))
	want := []string{"log.levle", "slate.txt", "encode.bitrate", "outputs[1].extra"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v (%v)", got, want, err)
	}
	for _, e := range AsErrors(err) {
		if e.Line == 0 {
			t.Errorf("%s: no line", e.Path)
		}
	}
	if AsErrors(nil) != nil {
		t.Error("AsErrors(nil)")
	}
}

// CAPBOX_OUTPUTS_<i>_<key> changes output i, or adds one right after the
// last; any other index is an error naming the variable.
func TestEnvOutputIndexes(t *testing.T) {
	cfg := Default() // one output, "live"
	if err := ApplyEnv(&cfg, []string{"CAPBOX_OUTPUTS_0_URL=srt://127.0.0.1:9100", "CAPBOX_OUTPUTS_1_NAME=b", "CAPBOX_OUTPUTS_1_URL=srt://127.0.0.1:9101"}); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Outputs) != 2 || cfg.Outputs[0].Name != "live" || cfg.Outputs[0].URL != "srt://127.0.0.1:9100" || cfg.Outputs[1].Name != "b" {
		t.Errorf("outputs %+v", cfg.Outputs)
	}
	for _, v := range []string{"CAPBOX_OUTPUTS_-1_URL=x", "CAPBOX_OUTPUTS_3_URL=x", "CAPBOX_OUTPUTS_X_URL=x", "CAPBOX_OUTPUTS_0=x", "CAPBOX_OUTPUTS_0_COLOUR=red"} {
		c := Default()
		c.Outputs = append(c.Outputs, Output{Name: "second", URL: "srt://127.0.0.1:9200"})
		es := AsErrors(ApplyEnv(&c, []string{v}))
		name, _, _ := strings.Cut(v, "=")
		if len(es) != 1 || es[0].Path != name {
			t.Errorf("%s: %v", v, es)
		}
	}
	// Environment values parse as the file's do; strings stay literal.
	c := Default()
	err := ApplyEnv(&c, []string{"CAPBOX_ENCODE_ZERO_COPY=false", "CAPBOX_SLATE_TEXT=42", "CAPBOX_RECORD_SEGMENT=90s", "CAPBOX_LOG_LEVEL=debug", "capbox_log_level=error"})
	if err != nil || c.Encode.ZeroCopy || c.Slate.Text != "42" || c.Record.Segment.D() != 90*time.Second || c.Log.Level != "debug" {
		t.Errorf("%v: %+v", err, c)
	}
}

// An error reads "line N: path: message", each part only when known.
func TestFieldErrorText(t *testing.T) {
	cases := map[FieldError]string{
		{Msg: "document is not valid UTF-8"}:             "document is not valid UTF-8",
		{Path: "encode.bitrate_kbps", Msg: "too low"}:    "encode.bitrate_kbps: too low",
		{Path: "speling", Line: 10, Msg: "unknown key"}:  "line 10: speling: unknown key",
		{Line: 1, Msg: "mapping values are not allowed"}: "line 1: mapping values are not allowed",
	}
	for e, want := range cases {
		if got := e.Error(); got != want {
			t.Errorf("%+v: %q, want %q", e, got, want)
		}
	}
	if got := (Errors{{Path: "a", Msg: "x"}, {Msg: "y"}}).Error(); got != "invalid config: a: x; y" {
		t.Errorf("Errors: %q", got)
	}
}

// The largest size read is 2^62 bytes.
func TestByteSizeLimit(t *testing.T) {
	var s ByteSize
	if err := s.UnmarshalText([]byte("4194304TiB")); err != nil || s != 1<<62 {
		t.Errorf("2^62 bytes: %d, %v", s, err)
	}
	if err := s.UnmarshalText([]byte("4194305TiB")); err == nil {
		t.Errorf("over 2^62 bytes read as %d", s)
	}
}

// A YAML syntax or type error names its line, on one line.
func TestYAMLErrorsNameTheLine(t *testing.T) {
	for doc, line := range map[string]string{
		"log:\n  level: info\nslate: {text: [\n": "line 3: ",
		"encode:\n  bitrate_kbps: lots\n":        "line 2: ",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), line) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want it at %q", doc, err, line)
		}
	}
}
