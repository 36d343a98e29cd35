// Package wire is the capbox fleet protocol, version 1, over MQTT 3.1.1
// (PROTOCOL.md): the payload types both sides use, the topic rules, the
// broker ACL, and the checked parsers of everything a box receives. It
// imports nothing of the agent, so capboxctl builds on any OS; the box's
// side of the link is the parent package, agent/fleet.
package wire

import (
	"encoding/json"
	"fmt"
)

// SchemaVersion is the payload schema major ("v").
const SchemaVersion = 1

// Size limits (PROTOCOL.md "Payloads").
const (
	// MaxPayload bounds every payload, both ways, in bytes.
	MaxPayload = 16 << 10
	// MaxSnapshotB64 bounds a snapshot's base64 text; MaxSnapshotJPEG is the
	// JPEG size that encodes to it.
	MaxSnapshotB64  = 12 << 10
	MaxSnapshotJPEG = MaxSnapshotB64 / 4 * 3
	// maxDepth bounds JSON nesting of inbound payloads; the deepest real
	// payload (a config document) is five levels.
	maxDepth = 32
)

// DefaultPrefix is the topic prefix when the config names none.
const DefaultPrefix = "capbox"

// Header is carried by every box -> fleet payload except the will.
// Readers order by (Sess, Seq), never by arrival.
type Header struct {
	V int `json:"v"`
	// TS is unix milliseconds on the box's clock (see sys.clock_synced).
	TS int64 `json:"ts"`
	// Sess is +1 on every connect, persisted across reboots.
	Sess int64 `json:"sess"`
	// Seq counts the messages of one session, from 1.
	Seq int64 `json:"seq"`
}

// Before reports whether h was sent before o by the same box.
func (h Header) Before(o Header) bool {
	return h.Sess < o.Sess || (h.Sess == o.Sess && h.Seq < o.Seq)
}

// Stamp fills the header at send time; TS keeps the creation time.
func (h *Header) Stamp(sess, seq, nowMS int64) {
	h.V, h.Sess, h.Seq = SchemaVersion, sess, seq
	if h.TS == 0 {
		h.TS = nowMS
	}
}

// Status states.
const (
	StatusInit         = "init"
	StatusReady        = "ready"
	StatusAlert        = "alert"
	StatusDisconnected = "disconnected"
	StatusLost         = "lost"
)

// Reasons for a graceful offline status.
const (
	ReasonShutdown = "shutdown"
	ReasonReboot   = "reboot"
	ReasonOTA      = "ota"
)

// Status is the retained `status`: the birth, the will and the graceful
// offline message. The will carries neither ts nor seq (it is written at
// connect time): it ranks after every message of its session.
type Status struct {
	V      int    `json:"v"`
	Online bool   `json:"online"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Sess   int64  `json:"sess"`
	Seq    int64  `json:"seq,omitempty"`
	BootID string `json:"boot_id,omitempty"`
	Agent  string `json:"agent,omitempty"`
	TS     int64  `json:"ts,omitempty"`
}

// Order is the status's place in the box's history: a will (no seq) comes
// after everything else of its session.
func (s Status) Order() Header {
	seq := s.Seq
	if !s.Online && s.Seq == 0 {
		seq = 1<<63 - 1
	}
	return Header{Sess: s.Sess, Seq: seq}
}

// Stamp fills the status at send time; TS keeps the creation time.
func (s *Status) Stamp(sess, seq, nowMS int64) {
	s.V, s.Sess, s.Seq = SchemaVersion, sess, seq
	if s.TS == 0 {
		s.TS = nowMS
	}
}

// Mood is the health of one part of the box (after Flumotion).
type Mood string

// Moods, best to worst when ranked by MoodRank.
const (
	MoodSleeping Mood = "sleeping" // disabled
	MoodHappy    Mood = "happy"    // working
	MoodWaking   Mood = "waking"   // starting
	MoodHungry   Mood = "hungry"   // waiting for input: no signal, server unreachable
	MoodSad      Mood = "sad"      // failed, will retry
	MoodLost     Mood = "lost"     // stopped reporting (the watchdog says so)
)

// MoodRank orders moods from harmless (0) to worst.
func MoodRank(m Mood) int {
	switch m {
	case MoodSleeping:
		return 0
	case MoodHappy:
		return 1
	case MoodWaking:
		return 2
	case MoodHungry:
		return 3
	case MoodSad:
		return 4
	case MoodLost:
		return 5
	}
	return 3 // unknown: as bad as waiting, not hidden
}

// WorstMood is the box mood: the worst of its parts (happy when empty).
func WorstMood(moods map[string]Mood) Mood {
	worst := MoodHappy
	first := true
	for _, m := range moods {
		if first || MoodRank(m) > MoodRank(worst) {
			worst, first = m, false
		}
	}
	return worst
}

// Parts whose moods State carries; each output is OutputPart(name).
const (
	PartCapture  = "capture"
	PartEncoder  = "encoder"
	PartRecorder = "recorder"
	PartFleet    = "fleet"
)

// OutputPart names an output's part in State.Moods.
func OutputPart(name string) string { return "output:" + name }

// Modes of the box.
const (
	ModeIdle      = "idle"
	ModeStarting  = "starting"
	ModeStreaming = "streaming"
	ModeDegraded  = "degraded"
	ModeNoSignal  = "no_signal"
	ModeError     = "error"
)

// Output states in State.Outputs.
const (
	OutputUp         = "up"
	OutputConnecting = "connecting"
	OutputDown       = "down"
	OutputDisabled   = "disabled"
)

// State is the retained, compact operational state, sent on change and at
// most once a second.
type State struct {
	Header
	Mode string `json:"mode"`
	// Mood is the worst of Moods; the link fills it when empty.
	Mood  Mood            `json:"mood"`
	Moods map[string]Mood `json:"moods"`
	// Capture.Signal is a board.SignalState (locked, no_signal, no_lock,
	// out_of_range, unknown).
	Capture   CaptureState      `json:"capture"`
	Outputs   map[string]string `json:"outputs"`
	Recording bool              `json:"recording"`
	Alerts    []string          `json:"alerts"`
	// ConfigVersion is the applied config/desired version, 0 for the file.
	ConfigVersion int64 `json:"config_version"`
}

// CaptureState is the input in State.
type CaptureState struct {
	Signal string `json:"signal"`
	// Format is like 1080p59.94 or 720p50, empty without signal.
	Format string `json:"format,omitempty"`
}

// Meta is the retained description of the box: hardware, versions and
// capabilities.
type Meta struct {
	Header
	Agent string `json:"agent"`
	// Versions are component versions: go, gstreamer, kernel, os.
	Versions map[string]string `json:"versions,omitempty"`
	BootID   string            `json:"boot_id,omitempty"`
	// Detection is `capboxd detect --json` (board.Detection), kept as raw
	// JSON so this package, and capboxctl with it, builds on any OS.
	Detection json.RawMessage `json:"detection,omitempty"`
	// Commands are the command names this box answers (the link adds ping
	// and rebirth).
	Commands []string     `json:"commands"`
	Outputs  []OutputInfo `json:"outputs,omitempty"`
	// TelemetryIntervalS lets readers judge staleness (3 intervals).
	TelemetryIntervalS int `json:"telemetry_interval_s"`
}

// OutputInfo is one configured output; URL is always redacted.
type OutputInfo struct {
	Name    string `json:"name"`
	Proto   string `json:"proto,omitempty"`
	URL     string `json:"url"`
	Enabled bool   `json:"enabled"`
}

// Telemetry is the periodic health sample (QoS 0). Counters are cumulative
// since the session started, so a lost sample loses nothing.
type Telemetry struct {
	Header
	UptimeS       int64            `json:"uptime_s"`
	IntervalS     int              `json:"interval_s,omitempty"`
	Sys           SysHealth        `json:"sys"`
	Net           []NetIf          `json:"net,omitempty"`
	Capture       *CaptureHealth   `json:"capture,omitempty"`
	Audio         *AudioHealth     `json:"audio,omitempty"`
	Encoder       *EncoderHealth   `json:"encoder,omitempty"`
	Outputs       []OutputHealth   `json:"outputs,omitempty"`
	Recording     *RecordingHealth `json:"recording,omitempty"`
	ConfigVersion int64            `json:"config_version"`
}

// SysHealth is the machine.
type SysHealth struct {
	CPUPct      float64            `json:"cpu_pct"`
	Load1       float64            `json:"load1"`
	MemTotalMB  int64              `json:"mem_total_mb"`
	MemAvailMB  int64              `json:"mem_avail_mb"`
	Disks       []Disk             `json:"disks,omitempty"`
	TempsC      map[string]float64 `json:"temps_c,omitempty"`
	Throttle    Throttle           `json:"throttle"`
	ClockSynced bool               `json:"clock_synced"`
}

// MaxTempC is the hottest sensor, and false when there is none.
func (s SysHealth) MaxTempC() (float64, bool) {
	var t float64
	ok := false
	for _, v := range s.TempsC {
		if !ok || v > t {
			t, ok = v, true
		}
	}
	return t, ok
}

// Disk is one mounted filesystem.
type Disk struct {
	Mount   string `json:"mount"`
	TotalMB int64  `json:"total_mb"`
	FreeMB  int64  `json:"free_mb"`
}

// Throttle lists throttling reasons now and since boot (Raspberry Pi
// get_throttled bits by name: under_voltage, arm_freq_capped, throttled,
// soft_temp_limit).
type Throttle struct {
	Now       []string `json:"now"`
	SinceBoot []string `json:"since_boot"`
}

// NetIf is one network interface; counters are the kernel's.
type NetIf struct {
	If        string   `json:"if"`
	Oper      string   `json:"oper"`
	Carrier   bool     `json:"carrier"`
	SpeedMbps int      `json:"speed_mbps,omitempty"`
	Addrs     []string `json:"addrs,omitempty"`
	RxBytes   uint64   `json:"rx_bytes"`
	TxBytes   uint64   `json:"tx_bytes"`
	RxErrors  uint64   `json:"rx_errors"`
	TxErrors  uint64   `json:"tx_errors"`
}

// CaptureHealth is the video input.
type CaptureHealth struct {
	Device  string  `json:"device"`
	Signal  bool    `json:"signal"`
	Width   int     `json:"width,omitempty"`
	Height  int     `json:"height,omitempty"`
	FPS     float64 `json:"fps,omitempty"`
	Frames  uint64  `json:"frames"`
	Dropped uint64  `json:"dropped"`
}

// AudioHealth is the audio input's level.
type AudioHealth struct {
	Device   string  `json:"device"`
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
	Silent   bool    `json:"silent"`
}

// EncoderHealth is the video encoder.
type EncoderHealth struct {
	Element     string `json:"element"`
	Hardware    bool   `json:"hardware"`
	ZeroCopy    bool   `json:"zero_copy"`
	BitrateKbps int    `json:"bitrate_kbps"`
	Frames      uint64 `json:"frames"`
}

// OutputHealth is one output's counters.
type OutputHealth struct {
	Name        string  `json:"name"`
	Proto       string  `json:"proto"`
	State       string  `json:"state"`
	Bytes       uint64  `json:"bytes"`
	BitrateKbps int     `json:"bitrate_kbps"`
	Reconnects  uint64  `json:"reconnects"`
	RTTMs       float64 `json:"rtt_ms,omitempty"`
	LossPct     float64 `json:"loss_pct,omitempty"`
}

// RecordingHealth is the local recording.
type RecordingHealth struct {
	Path     string `json:"path"`
	Segments int    `json:"segments"`
	Bytes    uint64 `json:"bytes"`
	FreeMB   int64  `json:"free_mb"`
}

// Event types the agent sends (more may come; readers keep unknown ones).
const (
	EvtSignalLost      = "signal_lost"
	EvtSignalLocked    = "signal_locked"
	EvtOutputDown      = "output_down"
	EvtOutputUp        = "output_up"
	EvtEncoderFallback = "encoder_fallback"
	EvtConfigRejected  = "config_rejected"
	EvtConfigApplied   = "config_applied"
	EvtThermalThrottle = "thermal_throttle"
)

// Event is one discrete event, sent on evt/{type}.
type Event struct {
	Header
	Type   string `json:"type"`
	Part   string `json:"part,omitempty"`
	Output string `json:"output,omitempty"`
	Msg    string `json:"msg,omitempty"`
	// Data holds small extra values (numbers, strings); never secrets.
	Data map[string]any `json:"data,omitempty"`
}

// CmdRequest is what the fleet publishes on cmd/req/{name}.
type CmdRequest struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`
	Args json.RawMessage `json:"args,omitempty"`
	// Exp is unix milliseconds; a request seen after it gets "expired".
	Exp int64 `json:"exp,omitempty"`
}

// Command response statuses.
const (
	ResAccepted    = "accepted"
	ResOK          = "ok"
	ResError       = "error"
	ResRejected    = "rejected"
	ResExpired     = "expired"
	ResDuplicate   = "duplicate"
	ResUnsupported = "unsupported"
)

// Error codes in responses.
const (
	CodeBadRequest  = "E_BAD_REQUEST"  // not JSON, wrong types, unknown keys
	CodeTooLarge    = "E_TOO_LARGE"    // over MaxPayload (or a result over its limit)
	CodeBadArgs     = "E_BAD_ARGS"     // arguments missing or out of range
	CodeVersion     = "E_VERSION"      // unknown schema major
	CodeBusy        = "E_BUSY"         // too many commands running
	CodeFailed      = "E_FAILED"       // the box tried and failed
	CodeTimeout     = "E_TIMEOUT"      // the box did not finish in time
	CodeUnsupported = "E_UNSUPPORTED"  // unknown command
	CodeExpired     = "E_EXPIRED"      // seen after exp
	CodeShutdown    = "E_SHUTDOWN"     // the agent is stopping
	CodeNoOutput    = "E_NO_OUTPUT"    // no output by that name
	CodeNoSignal    = "E_NO_SIGNAL"    // nothing to snapshot
	CodeNotRunning  = "E_NOT_RUNNING"  // the part is not running
	CodeUnavailable = "E_UNAVAILABLE"  // the part exists but cannot do it now
	CodeInternal    = "E_INTERNAL"     // a bug: the box said so rather than crash
	CodeStale       = "E_STALE_CONFIG" // desired version not newer than applied
)

// CmdResponse is what the box publishes on cmd/res/{name}.
type CmdResponse struct {
	Header
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Code   string          `json:"code,omitempty"`
	Msg    string          `json:"msg,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	// FirstStatus is the first answer's status in a "duplicate" response.
	FirstStatus string `json:"first_status,omitempty"`
}

// Final reports whether the response ends the request (anything but
// "accepted").
func (r CmdResponse) Final() bool { return r.Status != ResAccepted }

// Succeeded reports whether the command did what was asked, including a
// duplicate whose first answer was ok.
func (r CmdResponse) Succeeded() bool {
	return r.Status == ResOK || (r.Status == ResDuplicate && r.FirstStatus == ResOK)
}

// ConfigDesired is the retained config/desired document.
type ConfigDesired struct {
	V       int             `json:"v"`
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
}

// Config report statuses.
const (
	ConfigApplied  = "applied"
	ConfigRejected = "rejected"
)

// FieldError is one problem of a rejected config, by path; it has the JSON
// shape of agent/config's FieldError.
type FieldError struct {
	Path string `json:"path"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"msg"`
}

func (e FieldError) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

// ConfigReported is the retained config/reported answer.
type ConfigReported struct {
	Header
	DesiredVersion  int64        `json:"desired_version"`
	AppliedVersion  int64        `json:"applied_version"`
	Status          string       `json:"status"`
	Errors          []FieldError `json:"errors,omitempty"`
	EffectiveSHA256 string       `json:"effective_sha256,omitempty"`
}

// SnapshotResult is the result of the snapshot command.
type SnapshotResult struct {
	// JPEG is base64 in JSON (encoding/json's []byte form).
	JPEG  []byte `json:"jpeg"`
	Bytes int    `json:"bytes"`
}
