package pipelines

import (
	"errors"
	"fmt"
	"time"

	"capbox/board"
)

// Request is what the planner needs: the detected hardware and the
// config's wishes, already parsed.
type Request struct {
	Detection board.Detection
	// VideoPin and AudioPin are config's capture.video / capture.audio:
	// auto, test, none or a device.
	VideoPin, AudioPin string
	// EncoderPin is config's encode.encoder: auto or an element name.
	EncoderPin string
	// Codec is config's encode.codec: h264 (default), or fwht for the
	// virtual capture box, where outputs are refused and the recording is
	// the raw FWHT stream.
	Codec string
	// BitrateKbps, KeyframeInterval and the Max* bounds are config's encode section.
	BitrateKbps                 int
	KeyframeInterval            time.Duration
	MaxWidth, MaxHeight, MaxFPS int
	Outputs                     []OutputSpec
	// Record is nil when recording is off.
	Record *RecordSettings
	// SlateText is shown while the input has no signal; SlateOff disables the slate.
	SlateText string
	SlateOff  bool
	// Rung forces a rung of the ladder (0: the best the hardware allows).
	Rung Rung
	// Elements says which GStreamer elements exist; nil assumes all do.
	Elements board.ElementChecker
}

// RecordSettings is config's record section, resolved.
type RecordSettings struct {
	Dir      string
	Format   string // ts or mp4
	Segment  time.Duration
	KeepFree int64
}

// Test pattern format when nothing bounds it otherwise.
const (
	testWidth  = 1280
	testHeight = 720
	testFPS    = 30
)

// Errors the planner names.
var (
	ErrNoEncoder     = errors.New("no usable H.264 encoder")
	ErrNoAACEncoder  = errors.New("no AAC encoder (voaacenc or avenc_aac)")
	ErrUnknownInput  = errors.New("video input not found")
	ErrUnusableInput = errors.New("video input has no format capbox can encode")
)

func (r *Request) codec() string {
	if r.Codec == "" {
		return "h264"
	}
	return r.Codec
}

func (r *Request) has(element string) bool {
	return r.Elements == nil || r.Elements.HasElement(element)
}

// Build makes the plan. It fails only when nothing sensible can run.
func Build(req Request) (Plan, error) {
	var p Plan
	in, err := pickInput(req)
	if err != nil {
		return p, err
	}
	enc, err := pickEncoder(req, in)
	if err != nil {
		return p, err
	}
	p.Encoder = enc.info

	video, err := videoFront(req, in, enc)
	if err != nil {
		return p, err
	}
	p.Video = video
	ew, eh, efps := encodeSize(req, video.Width, video.Height, video.FPS)
	p.Encoder.KeyframeFrames = settings(req, ew, eh, efps).KeyframeFrames
	if !req.SlateOff {
		s := slateFront(req, enc, ew, eh, efps)
		p.Slate = &s
	}
	audio, err := audioFront(req, in)
	if err != nil {
		return p, err
	}
	p.Audio = audio

	if req.codec() != "h264" && len(req.Outputs) > 0 {
		return p, fmt.Errorf("%w: outputs carry H.264 only, not %s", ErrOutputURL, req.codec())
	}
	for _, o := range req.Outputs {
		sink, err := outputSink(o)
		if err != nil {
			return p, fmt.Errorf("output %s: %w", o.Name, err)
		}
		p.Outputs = append(p.Outputs, OutputPlan{Spec: o, Sink: sink})
	}
	if req.Record != nil {
		if req.codec() == "h264" {
			p.Recorder = recorderPlan(*req.Record)
		} else {
			p.Recorder = rawRecorderPlan(*req.Record, req.codec())
		}
	}
	p.Launch = Launch(p)
	return p, nil
}
