package pipelines

import (
	"errors"
	"time"
)

// ErrUnknownOutput names an output that is not configured.
var ErrUnknownOutput = errors.New("no such output")

// OutputState is an output's state as PROTOCOL.md's state message names it.
type OutputState string

// Output states.
const (
	OutputUp         OutputState = "up"
	OutputConnecting OutputState = "connecting"
	OutputDown       OutputState = "down"
	OutputDisabled   OutputState = "disabled"
)

// Stats is what the running pipeline reports; counters are cumulative
// since the runtime started.
type Stats struct {
	Video    FrontStats    `json:"video"`
	Audio    AudioStats    `json:"audio"`
	Encoder  EncoderInfo   `json:"encoder"`
	Slate    bool          `json:"slate"`
	Outputs  []OutputStats `json:"outputs"`
	Recorder RecorderStats `json:"recorder"`
}

// FrontStats counts the encoded video leaving the live front (or the slate).
type FrontStats struct {
	Kind   SourceKind `json:"kind"`
	Device string     `json:"device,omitempty"`
	Width  int        `json:"width"`
	Height int        `json:"height"`
	FPS    int        `json:"fps"`
	// Frames and Bytes are encoded frames delivered to the outputs.
	Frames uint64 `json:"frames"`
	Bytes  uint64 `json:"bytes"`
	// LastFrame is when the last encoded frame arrived (zero: none yet).
	LastFrame time.Time `json:"last_frame"`
	Running   bool      `json:"running"`
	// NoPicture: an input that cannot report its signal (Front.WatchPicture)
	// has sent a flat picture for a while; the slate is on air meanwhile.
	NoPicture bool `json:"no_picture,omitempty"`
}

// AudioStats is the level meter's latest reading.
type AudioStats struct {
	Kind     SourceKind `json:"kind"`
	Device   string     `json:"device,omitempty"`
	PeakDBFS float64    `json:"peak_dbfs"`
	RMSDBFS  float64    `json:"rms_dbfs"`
	// Silent is true when the RMS stayed under SilenceDBFS for SilenceFor.
	Silent    bool      `json:"silent"`
	Frames    uint64    `json:"frames"`
	LastFrame time.Time `json:"last_frame"`
}

// Silence detection: RMS under -60 dBFS for 10 s.
const (
	SilenceDBFS = -60.0
	SilenceFor  = 10 * time.Second
)

// OutputStats is one output's state and counters.
type OutputStats struct {
	Name        string      `json:"name"`
	Proto       Proto       `json:"proto"`
	URL         string      `json:"url"` // redacted
	State       OutputState `json:"state"`
	Bytes       uint64      `json:"bytes"`
	BitrateKbps int         `json:"bitrate_kbps"`
	Reconnects  uint64      `json:"reconnects"`
	RTTms       float64     `json:"rtt_ms,omitempty"`
	LossPct     float64     `json:"loss_pct,omitempty"`
	Dropped     uint64      `json:"dropped"`
	LastError   string      `json:"last_error,omitempty"`
	Since       time.Time   `json:"since"`
}

// RecorderStats is the local recording.
type RecorderStats struct {
	Enabled   bool      `json:"enabled"`
	Recording bool      `json:"recording"`
	Dir       string    `json:"dir,omitempty"`
	File      string    `json:"file,omitempty"`
	Segments  uint64    `json:"segments"`
	Bytes     uint64    `json:"bytes"`
	FreeBytes uint64    `json:"free_bytes"`
	Deleted   uint64    `json:"deleted"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	// SyncedAt is when the recording was last flushed to storage: what
	// was written before it survives a power cut.
	SyncedAt time.Time `json:"synced_at,omitzero"`
}

// EventKind names what happened.
type EventKind string

// Events the runtime reports (PROTOCOL.md evt/{type} uses the same names
// where they overlap).
const (
	EventOutputUp   EventKind = "output_up"
	EventOutputDown EventKind = "output_down"
	// EventVideoFailed: the live capture (or the slate, Part "slate")
	// failed; the runtime retries it while OnAir.Capture asks for it.
	EventVideoFailed EventKind = "video_failed"
	// EventVideoStarted: the live picture took over the video track.
	EventVideoStarted EventKind = "video_started"
	// EventCaptureRunning: a live capture that had failed delivers frames
	// again while the slate is on air (OnAir.Capture).
	EventCaptureRunning EventKind = "capture_running"
	EventAudioFailed    EventKind = "audio_failed"
	EventPictureLost    EventKind = "picture_lost"
	EventPictureBack    EventKind = "picture_back"
	EventSlateOn        EventKind = "slate_on"
	EventSlateOff       EventKind = "slate_off"
	EventRecorderError  EventKind = "recorder_error"
	EventSegment        EventKind = "segment_opened"
	EventSegmentDelete  EventKind = "segment_deleted"
)

// Event is one thing that happened in the runtime.
type Event struct {
	Kind EventKind `json:"kind"`
	// Part is the output name, "video", "audio", "slate" or "recorder".
	Part string    `json:"part"`
	Msg  string    `json:"msg,omitempty"`
	At   time.Time `json:"at"`
}
