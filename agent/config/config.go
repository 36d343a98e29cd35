// Package config is the agent's configuration: one strict YAML document
// (DESIGN.md "Config"), built as defaults -> YAML -> CAPBOX_* environment ->
// validation. The same document arrives over MQTT in config/desired.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the whole document. Field tags name the YAML keys; every key
// not named here is rejected with its line.
type Config struct {
	Device  Device   `yaml:"device" json:"device"`
	Capture Capture  `yaml:"capture" json:"capture"`
	Encode  Encode   `yaml:"encode" json:"encode"`
	Outputs []Output `yaml:"outputs" json:"outputs"`
	Record  Record   `yaml:"record" json:"record"`
	Slate   Slate    `yaml:"slate" json:"slate"`
	Fleet   Fleet    `yaml:"fleet" json:"fleet"`
	Log     Log      `yaml:"log" json:"log"`
	Metrics Metrics  `yaml:"metrics" json:"metrics"`
	Upload  Upload   `yaml:"upload" json:"upload"`
}

// Device identifies the box.
type Device struct {
	// ID is the fleet identity; "auto" derives it from the board serial or
	// /etc/machine-id (PROTOCOL.md "Identity").
	ID string `yaml:"id" json:"id"`
}

// Capture selects inputs. Each is "auto", a device path, "test" or "none".
type Capture struct {
	Video string `yaml:"video" json:"video"`
	Audio string `yaml:"audio" json:"audio"`
	// EDID is "default" (the built-in 1080p60 EDID with audio), "none"
	// (leave the receiver alone) or a path to a binary or hex EDID file.
	EDID string `yaml:"edid" json:"edid"`
}

// Encode is the one encode every output shares.
type Encode struct {
	// Codec is h264. fwht is for the virtual capture box only (vicodec
	// standing in for a hardware encoder; raw recording, no outputs).
	Codec            string   `yaml:"codec" json:"codec"`
	Encoder          string   `yaml:"encoder" json:"encoder"` // auto or a GStreamer element name
	BitrateKbps      int      `yaml:"bitrate_kbps" json:"bitrate_kbps"`
	KeyframeInterval Duration `yaml:"keyframe_interval" json:"keyframe_interval"`
	MaxWidth         int      `yaml:"max_width" json:"max_width"`
	MaxHeight        int      `yaml:"max_height" json:"max_height"`
	MaxFPS           int      `yaml:"max_fps" json:"max_fps"`
	// ThermalGuard lowers bitrate and frame rate while the SoC is near its
	// throttle point, instead of only reporting it.
	ThermalGuard bool `yaml:"thermal_guard" json:"thermal_guard"`
	// ZeroCopy lets a hardware encoder import the capture buffers
	// (dmabuf). false keeps the copying rung: for a driver whose dmabuf
	// path misbehaves (HARDWARE.md lists some), or to compare the two.
	ZeroCopy bool `yaml:"zero_copy" json:"zero_copy"`
	// TrialTimeout is how long a hardware rung may take for its first
	// encoded frame before the next rung is tried.
	TrialTimeout Duration `yaml:"trial_timeout" json:"trial_timeout"`
}

// Output is one destination. Secrets go in Key/KeyFile (RTMP stream keys)
// or in the URL query (passphrase, passphrase_file for SRT).
type Output struct {
	Name    string `yaml:"name" json:"name"`
	URL     string `yaml:"url" json:"url"`
	Key     string `yaml:"key,omitempty" json:"key,omitempty"`
	KeyFile string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// Enabled defaults to true; a disabled output is planned but not started.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// IsEnabled reports whether the output should run.
func (o Output) IsEnabled() bool { return o.Enabled == nil || *o.Enabled }

// Record is the local recording.
type Record struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Path "auto" is /data/recordings on a box (when /data exists) and
	// ./recordings elsewhere.
	Path     string   `yaml:"path" json:"path"`
	Segment  Duration `yaml:"segment" json:"segment"`
	KeepFree ByteSize `yaml:"keep_free" json:"keep_free"`
	// Format is "ts" (MPEG-TS) or "mp4" (fragmented MP4); both stay playable
	// after a power cut.
	Format string `yaml:"format" json:"format"`
}

// Slate is what the outputs carry while the input has no signal.
type Slate struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Text    string `yaml:"text" json:"text"`
}

// Fleet is the MQTT link (PROTOCOL.md). An empty broker disables it.
type Fleet struct {
	Broker            string   `yaml:"broker" json:"broker"`
	Prefix            string   `yaml:"prefix" json:"prefix"`
	CA                string   `yaml:"ca" json:"ca"`
	Cert              string   `yaml:"cert" json:"cert"`
	Key               string   `yaml:"key" json:"key"`
	Username          string   `yaml:"username" json:"username"`
	Password          string   `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile      string   `yaml:"password_file" json:"password_file"`
	TelemetryInterval Duration `yaml:"telemetry_interval" json:"telemetry_interval"`
	AllowInsecure     bool     `yaml:"allow_insecure" json:"allow_insecure"`
}

// Log sets the agent's verbosity.
type Log struct {
	Level string `yaml:"level" json:"level"`
}

// Metrics is the optional Prometheus endpoint.
type Metrics struct {
	// Listen is empty (off), a port (":9101", bound to loopback) or host:port.
	Listen string `yaml:"listen" json:"listen"`
}

// Upload sends finished segments to archives (agent/upload). No targets:
// nothing leaves the box.
type Upload struct {
	// BandwidthKbps caps the uploads; 0 sets no cap of their own (they
	// still yield to the live outputs).
	BandwidthKbps int `yaml:"bandwidth_kbps" json:"bandwidth_kbps"`
	// DeleteAfterUpload removes a segment once every target has it.
	DeleteAfterUpload bool           `yaml:"delete_after_upload" json:"delete_after_upload"`
	Targets           []UploadTarget `yaml:"targets" json:"targets,omitempty"`
}

// UploadTarget is one archive: sftp://user@host[:port]/path with a key and
// known_hosts file, or s3://bucket/prefix with an endpoint and key files.
// Secrets are only ever files, read when an upload starts.
type UploadTarget struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
	// SFTP: the client's private key and the server's host keys.
	KeyFile    string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	KnownHosts string `yaml:"known_hosts,omitempty" json:"known_hosts,omitempty"`
	// S3: https://host[:port] (http:// only for loopback); empty is AWS.
	Endpoint      string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	Region        string `yaml:"region,omitempty" json:"region,omitempty"`
	AccessKeyFile string `yaml:"access_key_file,omitempty" json:"access_key_file,omitempty"`
	SecretKeyFile string `yaml:"secret_key_file,omitempty" json:"secret_key_file,omitempty"`
}

// DefaultSRTPort is where the embedded default serves its SRT listener.
const DefaultSRTPort = 8890

// Default is the embedded default (DESIGN.md "Embedded default"): it does
// the whole job with no file at all. overlay/etc/capbox/capbox.yaml must
// say the same (a test keeps them equal).
func Default() Config {
	return Config{
		Device:  Device{ID: "auto"},
		Capture: Capture{Video: "auto", Audio: "auto", EDID: "default"},
		Encode: Encode{
			Codec: "h264", Encoder: "auto", BitrateKbps: 4000,
			KeyframeInterval: Duration(2 * time.Second),
			MaxWidth:         1920, MaxHeight: 1080, MaxFPS: 60, ZeroCopy: true,
			TrialTimeout: Duration(5 * time.Second),
		},
		Outputs: []Output{{Name: "live", URL: fmt.Sprintf("srt://:%d?mode=listener", DefaultSRTPort)}},
		Record: Record{
			Enabled: true, Path: "auto", Segment: Duration(5 * time.Minute),
			KeepFree: 2 * GB, Format: "ts",
		},
		Slate: Slate{Enabled: true, Text: "Back soon"},
		Fleet: Fleet{Prefix: "capbox", TelemetryInterval: Duration(10 * time.Second)},
		Log:   Log{Level: "info"},
	}
}

// RecordPath resolves Record.Path "auto".
func (c *Config) RecordPath() string {
	if c.Record.Path != "auto" {
		return c.Record.Path
	}
	if st, err := os.Stat("/data"); err == nil && st.IsDir() {
		return "/data/recordings"
	}
	return "recordings"
}

// Duration is a time.Duration written as "10s", "5m", "1h30m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the Go duration form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the Go duration form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("not a duration like 10s or 5m: %q", b)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes written as "2GB", "500MB", "1.5GiB" or a plain number.
type ByteSize int64

// Size units: decimal (KB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB).
const (
	KB ByteSize = 1000
	MB          = 1000 * KB
	GB          = 1000 * MB
	TB          = 1000 * GB
)

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// MarshalText writes the largest decimal unit that divides the value.
func (s ByteSize) MarshalText() ([]byte, error) {
	for _, u := range []struct {
		suffix string
		v      ByteSize
	}{{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB}} {
		if s != 0 && s%u.v == 0 {
			return []byte(strconv.FormatInt(int64(s/u.v), 10) + u.suffix), nil
		}
	}
	return []byte(strconv.FormatInt(int64(s), 10)), nil
}

// UnmarshalText parses a size with an optional unit.
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.ToUpper(strings.TrimSpace(string(b)))
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil || v < 0 || v*mult > float64(1<<62) {
		return fmt.Errorf("not a size like 2GB or 500MiB: %q", b)
	}
	*s = ByteSize(v * mult)
	return nil
}

// isLoopbackHost reports whether a URL host is a loopback address or name.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BrokerIsLoopback reports whether the fleet broker URL points at this box.
func BrokerIsLoopback(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && isLoopbackHost(u.Hostname())
}
