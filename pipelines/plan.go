// Package pipelines turns what the box has (board.Detection) and what it
// is asked to do (config) into a Plan: plain data describing every
// GStreamer element and property, compared in tests without GStreamer.
// pipelines/gst runs a Plan.
//
// Shape: a video front (source -> convert -> encoder -> parse) and an audio
// front (source -> level -> AAC) each end in an encoded stream; a slate
// front encodes a still frame with text and a clock the same way. One
// encode feeds every output (mux -> sink) and the recorder, each
// independent, so a failing output never stops the others.
//
// Files: plan.go (the Plan's types), build.go (Request and Build),
// sources.go (the input, the video, slate and audio fronts), encode.go (the
// encoder's choice and chain; its families are in encoders.go), sinks.go
// (the outputs' and the recorder's sinks), output.go (output URLs and
// secrets), launch.go (the gst-launch-1.0 line), stats.go (what a
// running pipeline reports).
package pipelines

import (
	"time"
)

// Prop is one element property in its serialized form (what
// gst_util_set_object_arg and gst-launch-1.0 accept), or a secret that is
// resolved only when the element is created.
type Prop struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Secret, when set, replaces Value at run time; Value then holds ***.
	Secret *SecretRef `json:"-"`
	// Literal marks a string property set as a plain string (never parsed
	// as a GStreamer value), for text that comes from config.
	Literal bool `json:"literal,omitempty"`
}

// Element is one GStreamer element.
type Element struct {
	Factory string `json:"factory"`
	Name    string `json:"name,omitempty"`
	Props   []Prop `json:"props,omitempty"`
}

// Caps returns a capsfilter element.
func Caps(caps string) Element {
	return Element{Factory: "capsfilter", Props: []Prop{{Name: "caps", Value: caps}}}
}

// Prop returns the value of a property, and whether it is set.
func (e Element) Prop(name string) (string, bool) {
	for _, p := range e.Props {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Rung is a step of the zero-copy fallback ladder (HARDWARE.md section 4).
type Rung int

// The ladder, best first.
const (
	// RungDMABuf: capture buffers exported as dmabuf and imported by the
	// hardware encoder; no copy of the raw frames.
	RungDMABuf Rung = 1
	// RungMMAP: mmap capture, the hardware encoder copies each frame in.
	RungMMAP Rung = 2
	// RungSoftware: a software encoder.
	RungSoftware Rung = 3
)

func (r Rung) String() string {
	switch r {
	case RungDMABuf:
		return "dmabuf-import"
	case RungMMAP:
		return "mmap-copy"
	case RungSoftware:
		return "software"
	}
	return "unknown"
}

// MarshalText names the rung in JSON.
func (r Rung) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// SourceKind is where video or audio comes from.
type SourceKind string

// Source kinds.
const (
	SourceV4L2    SourceKind = "v4l2"
	SourceTest    SourceKind = "test"
	SourceSlate   SourceKind = "slate"
	SourceALSA    SourceKind = "alsa"
	SourceSilence SourceKind = "silence"
)

// Front is a chain that ends in an encoded stream: source, conversion,
// encoder, parser. The runtime appends its own sink.
type Front struct {
	Kind   SourceKind `json:"kind"`
	Device string     `json:"device,omitempty"`
	Chain  []Element  `json:"chain"`
	Width  int        `json:"width,omitempty"`
	Height int        `json:"height,omitempty"`
	FPS    int        `json:"fps,omitempty"`
	// WatchPicture: the input cannot say whether it has a signal (a USB
	// dongle has no DV timings), so the runtime judges the picture itself:
	// a flat one (a dongle's black or blue "no signal" screen) means none.
	WatchPicture bool `json:"watch_picture,omitempty"`
}

// EncoderInfo is what was chosen and how it is set.
type EncoderInfo struct {
	Element     string `json:"element"`
	Family      string `json:"family"`
	Hardware    bool   `json:"hardware"`
	Rung        Rung   `json:"rung"`
	ZeroCopy    bool   `json:"zero_copy"`
	Reason      string `json:"reason"`
	BitrateKbps int    `json:"bitrate_kbps"`
	// KeyframeFrames is the keyframe interval in frames.
	KeyframeFrames int `json:"keyframe_frames"`
	// Unverified lists settings this family may ignore silently and that
	// cannot be read back (V4L2 controls live in the driver's context).
	Unverified []string `json:"unverified,omitempty"`
	// Adjusted lists numeric settings the running encoder holds at another
	// value than asked (clamped or ignored), read back after start.
	Adjusted []string `json:"adjusted,omitempty"`
}

// Sink is one output or the recorder: what sits behind the tee.
type Sink struct {
	Name string `json:"name"`
	// Chain starts with the muxer (or splitmuxsink) and ends in the sink.
	// The runtime feeds video into "video" and audio into "audio" pads
	// through a parser each.
	Chain []Element `json:"chain"`
	// VideoParse and AudioParse convert the shared streams into what the
	// muxer wants (avc for FLV, adts/raw for AAC).
	VideoParse []Element `json:"video_parse"`
	AudioParse []Element `json:"audio_parse"`
	// VideoPad and AudioPad are the muxer's request pad templates.
	VideoPad string `json:"video_pad"`
	AudioPad string `json:"audio_pad"`
}

// OutputPlan is one destination.
type OutputPlan struct {
	Spec OutputSpec `json:"spec"`
	Sink Sink       `json:"sink"`
}

// RecorderPlan is the local recording.
type RecorderPlan struct {
	Dir      string        `json:"dir"`
	Format   string        `json:"format"` // ts or mp4
	Segment  time.Duration `json:"segment"`
	KeepFree int64         `json:"keep_free"`
	Sink     Sink          `json:"sink"`
}

// Plan is everything the runtime needs, as data.
type Plan struct {
	Video    Front         `json:"video"`
	Slate    *Front        `json:"slate,omitempty"`
	Audio    Front         `json:"audio"`
	Encoder  EncoderInfo   `json:"encoder"`
	Outputs  []OutputPlan  `json:"outputs"`
	Recorder *RecorderPlan `json:"recorder,omitempty"`
	// Launch is the equivalent gst-launch-1.0 line (one process, no slate
	// switching), secrets shown as ***.
	Launch string `json:"launch"`
}
