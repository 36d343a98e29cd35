package pipelines

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
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

// input is the chosen video input and the format to capture.
type input struct {
	kind   SourceKind
	vi     board.VideoInput
	fourcc string
	width  int
	height int
	fps    int
	// rate is the capture's exact frame rate as a fraction ("60000/1001").
	rate string
}

func pickInput(req Request) (input, error) {
	bound := func(w, h, fps int) (int, int, int) {
		return min(w, req.MaxWidth), min(h, req.MaxHeight), min(fps, req.MaxFPS)
	}
	test := func() input {
		w, h, f := bound(testWidth, testHeight, testFPS)
		return input{kind: SourceTest, width: w, height: h, fps: f}
	}
	device := req.VideoPin
	switch req.VideoPin {
	case "test":
		return test(), nil
	case "none":
		in := test()
		in.kind = SourceSlate
		return in, nil
	case "", "auto":
		device = req.Detection.Chosen.VideoInput
		if device == "" || device == "test" {
			return test(), nil
		}
	}
	i := slices.IndexFunc(req.Detection.VideoInputs, func(v board.VideoInput) bool {
		return v.Device == device || (v.StablePath != "" && v.StablePath == device)
	})
	if i < 0 {
		return input{}, fmt.Errorf("%w: %s", ErrUnknownInput, device)
	}
	vi := req.Detection.VideoInputs[i]
	maxFPS := req.MaxFPS
	if b := req.Detection.Board.MaxHDMIFPS; b > 0 && vi.Kind == board.KindHDMICSI {
		maxFPS = min(maxFPS, b) // the bridge's lanes bound the rate (Pi 4: 1080p30)
	}
	fourcc, w, h, rate, ok := pickFormat(vi, req.MaxWidth, req.MaxHeight, maxFPS)
	if !ok {
		return input{}, fmt.Errorf("%w: %s", ErrUnusableInput, device)
	}
	if w == 0 && (vi.DVTimings || vi.Kind == board.KindHDMICSI) {
		// An HDMI receiver without signal: plan for the largest format it
		// may get; the supervisor re-plans when the signal locks.
		w, h, rate = min(1920, req.MaxWidth), min(1080, req.MaxHeight), float64(maxFPS)
	}
	return input{kind: SourceV4L2, vi: vi, fourcc: fourcc, width: w, height: h, fps: int(rate + 0.5), rate: rateFraction(rate)}, nil
}

// rawPreference orders raw capture formats: packed 4:2:2 is what HDMI
// bridges emit and hardware encoders take directly.
var rawPreference = []string{"UYVY", "YUYV", "NV12", "YU12", "NV16", "RGB3", "BGR3", "MJPG"}

// pickFormat chooses what to capture. An HDMI receiver's live timings win;
// otherwise the largest size within bounds at the best rate.
func pickFormat(vi board.VideoInput, maxW, maxH, maxFPS int) (fourcc string, w, h int, fps float64, ok bool) {
	signalFPS := vi.Signal.FPSExact
	if signalFPS == 0 {
		signalFPS = float64(vi.Signal.FPS)
	}
	for _, want := range rawPreference {
		for _, f := range vi.Formats {
			if f.FourCC != want {
				continue
			}
			if vi.Signal.State == board.SignalLocked && vi.Signal.Width > 0 {
				return f.FourCC, vi.Signal.Width, vi.Signal.Height, signalFPS, true
			}
			best := board.FrameSize{}
			bestFPS := 0.0
			for _, s := range f.Sizes {
				if s.Width > maxW || s.Height > maxH {
					continue
				}
				rate := 0.0
				for _, r := range s.FPS {
					if r <= float64(maxFPS)+0.01 && r > rate {
						rate = r
					}
				}
				if s.Width*s.Height > best.Width*best.Height || (s.Width*s.Height == best.Width*best.Height && rate > bestFPS) {
					best, bestFPS = s, rate
				}
			}
			if best.Width > 0 {
				return f.FourCC, best.Width, best.Height, bestFPS, true
			}
			if len(f.Sizes) == 0 { // format without enumerated sizes: let caps negotiate
				return f.FourCC, 0, 0, 0, true
			}
		}
	}
	if len(vi.Formats) == 0 {
		// Not probed (a --sysroot fixture, or ENUM_FMT failed): let the
		// device and a decoder negotiate.
		if vi.Signal.State == board.SignalLocked {
			return "", vi.Signal.Width, vi.Signal.Height, signalFPS, true
		}
		return "", 0, 0, 0, true
	}
	return "", 0, 0, 0, false
}

// rawCaps maps V4L2 fourccs to GStreamer raw formats.
var rawCaps = map[string]string{
	"UYVY": "UYVY", "YUYV": "YUY2", "NV12": "NV12", "YU12": "I420", "NV16": "NV16",
	"RGB3": "RGB", "BGR3": "BGR",
}

type chosenEncoder struct {
	fam  encoderFamily
	info EncoderInfo
}

func pickEncoder(req Request, in input) (chosenEncoder, error) {
	candidates := []string{}
	reason := ""
	codec := req.codec()
	switch {
	case codec != "h264":
		for _, e := range req.Detection.Encoders {
			if e.Codec == codec && e.Available {
				candidates = append(candidates, e.Element)
			}
		}
		if req.EncoderPin != "" && req.EncoderPin != "auto" {
			candidates = []string{req.EncoderPin}
		}
		reason = codec + " encoder (test configuration)"
	case req.EncoderPin != "" && req.EncoderPin != "auto":
		candidates = append(candidates, req.EncoderPin)
		reason = "pinned by config"
	default:
		if req.Detection.Chosen.Encoder != "" {
			candidates = append(candidates, req.Detection.Chosen.Encoder)
			reason = req.Detection.Chosen.Reason
		}
		for _, e := range req.Detection.Encoders {
			if e.Hardware && e.Available && e.Codec == "h264" {
				candidates = append(candidates, e.Element)
			}
		}
	}
	if codec == "h264" {
		candidates = append(candidates, softwareEncoders...)
	}
	for _, name := range candidates {
		fam, ok := familyFor(name)
		if !ok || !req.has(name) || fam.codec != codec {
			continue
		}
		if req.Rung == RungSoftware && fam.hardware {
			continue
		}
		rung := RungSoftware
		zeroCopy := false
		if fam.hardware {
			rung = RungMMAP
			if zc, why := zeroCopyOK(req, in, fam); zc && req.Rung != RungMMAP {
				rung, zeroCopy = RungDMABuf, true
			} else if reason == "" {
				reason = why
			}
		} else if reason == "" || req.Rung == RungSoftware {
			reason = "software encoder: no usable hardware H.264 encoder"
			if req.Rung == RungSoftware {
				reason = "software rung requested"
			}
		}
		return chosenEncoder{fam: fam, info: EncoderInfo{
			Element: name, Family: string(fam.family), Hardware: fam.hardware,
			Rung: rung, ZeroCopy: zeroCopy, Reason: reason,
			BitrateKbps: req.BitrateKbps, Unverified: fam.unverified,
		}}, nil
	}
	return chosenEncoder{}, fmt.Errorf("%w (tried %s)", ErrNoEncoder, strings.Join(candidates, ", "))
}

// zeroCopyOK decides rung 1: only a V4L2 capture node feeding a dmabuf-
// importing encoder with a format it takes without conversion or scaling.
func zeroCopyOK(req Request, in input, fam encoderFamily) (bool, string) {
	switch {
	case !fam.zeroCopy:
		return false, fam.element + " cannot import dmabuf"
	case in.kind != SourceV4L2:
		return false, "no capture device: the test source is in system memory"
	case in.fourcc == "MJPG":
		return false, "MJPEG input is decoded in software first"
	case in.fourcc == "":
		return false, "capture format unknown (not probed)"
	case in.width > req.MaxWidth || in.height > req.MaxHeight || in.fps > req.MaxFPS:
		return false, "input is scaled to the configured maximum"
	}
	var enc board.Encoder
	for _, e := range req.Detection.Encoders {
		if e.Element == fam.element {
			enc = e
		}
	}
	return board.ZeroCopyPossible(in.vi, enc, in.width, in.height, in.fourcc)
}

// rateFraction writes a frame rate as GStreamer wants it: NTSC-style rates
// (59.94, 29.97) are N*1000/1001, or the caps will not match the device.
func rateFraction(fps float64) string {
	if fps <= 0 {
		return ""
	}
	if r := math.Round(fps); math.Abs(fps-r) < 0.005 {
		return fmt.Sprintf("%d/1", int(r))
	}
	if r := math.Round(fps * 1.001); math.Abs(fps*1.001-r) < 0.01 {
		return fmt.Sprintf("%d/1001", int(r)*1000)
	}
	return fmt.Sprintf("%d/1000", int(math.Round(fps*1000)))
}

func fpsCaps(fps int) string {
	if fps <= 0 {
		return ""
	}
	return fmt.Sprintf(",framerate=%d/1", fps)
}

func captureRate(in input) string {
	if in.rate == "" {
		return ""
	}
	return ",framerate=" + in.rate
}

func sizeCaps(w, h int) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	return fmt.Sprintf(",width=%d,height=%d", w, h)
}

func videoFront(req Request, in input, enc chosenEncoder) (Front, error) {
	f := Front{Kind: in.kind, Width: in.width, Height: in.height, FPS: in.fps}
	switch in.kind {
	case SourceTest:
		f.Chain = []Element{
			{Factory: "videotestsrc", Props: []Prop{
				{Name: "is-live", Value: "true"}, {Name: "pattern", Value: "smpte"},
				{Name: "horizontal-speed", Value: "2"},
			}},
			Caps("video/x-raw,format=I420" + sizeCaps(in.width, in.height) + fpsCaps(in.fps)),
		}
		if req.has("clockoverlay") {
			f.Chain = append(f.Chain, Element{Factory: "clockoverlay", Props: []Prop{
				{Name: "text", Value: "capbox test pattern", Literal: true},
				{Name: "time-format", Value: "%Y-%m-%d %H:%M:%S", Literal: true},
				{Name: "halignment", Value: "left"}, {Name: "valignment", Value: "bottom"},
				{Name: "font-desc", Value: "Sans 24", Literal: true},
			}})
		}
	case SourceSlate:
		f.Chain = slateSource(req, in.width, in.height, in.fps)
	case SourceV4L2:
		f.Device = in.vi.Device
		if in.vi.StablePath != "" {
			f.Device = in.vi.StablePath
		}
		f.WatchPicture = !in.vi.DVTimings && in.vi.Kind != board.KindHDMICSI
		ioMode := "mmap"
		if enc.info.Rung == RungDMABuf {
			ioMode = "dmabuf"
		}
		f.Chain = []Element{{Factory: "v4l2src", Props: []Prop{
			{Name: "device", Value: f.Device, Literal: true}, {Name: "io-mode", Value: ioMode},
		}}}
		switch {
		case in.fourcc == "":
			bound := fmt.Sprintf(",width=[1,%d],height=[1,%d]", req.MaxWidth, req.MaxHeight)
			f.Chain = append(f.Chain, Caps("video/x-raw"+bound+";image/jpeg"+bound), Element{Factory: "decodebin"})
		case in.fourcc == "MJPG":
			f.Chain = append(f.Chain, Caps("image/jpeg"+sizeCaps(in.width, in.height)+captureRate(in)))
			dec := "jpegdec"
			if req.has("v4l2jpegdec") && hasHardwareJPEG(req.Detection) {
				dec = "v4l2jpegdec"
			}
			f.Chain = append(f.Chain, Element{Factory: dec})
		default:
			f.Chain = append(f.Chain, Caps("video/x-raw,format="+rawCaps[in.fourcc]+sizeCaps(in.width, in.height)+captureRate(in)))
		}
	}
	ew, eh, efps := encodeSize(req, in.width, in.height, in.fps)
	s := settings(req, ew, eh, efps)
	f.Chain = append(f.Chain, encodeChain(enc, s, in.kind == SourceV4L2 && enc.info.Rung == RungDMABuf, needsScale(req, in))...)
	return f, nil
}

func hasHardwareJPEG(d board.Detection) bool {
	return strings.HasPrefix(d.Board.ID, "rpi")
}

// encodeSize is what the encoder gets from an input of w x h at fps: the
// config's maximum size (aspect ratio kept, even dimensions for 4:2:0) and
// rate. The front's own Width/Height/FPS stay the capture's.
func encodeSize(req Request, w, h, fps int) (int, int, int) {
	if req.MaxFPS > 0 && fps > req.MaxFPS {
		fps = req.MaxFPS
	}
	if w <= 0 || h <= 0 || req.MaxWidth <= 0 || req.MaxHeight <= 0 || (w <= req.MaxWidth && h <= req.MaxHeight) {
		return w, h, fps
	}
	r := min(float64(req.MaxWidth)/float64(w), float64(req.MaxHeight)/float64(h))
	return max(int(float64(w)*r)&^1, 2), max(int(float64(h)*r)&^1, 2), fps
}

func needsScale(req Request, in input) bool {
	return in.width > req.MaxWidth || in.height > req.MaxHeight || in.fps > req.MaxFPS
}

func settings(req Request, w, h, fps int) EncodeSettings {
	if fps <= 0 {
		fps = testFPS
	}
	frames := int(req.KeyframeInterval.Seconds()*float64(fps) + 0.5)
	return EncodeSettings{BitrateKbps: req.BitrateKbps, KeyframeFrames: max(frames, 1), Width: w, Height: h, FPS: fps}
}

// encodeChain is conversion (unless zero-copy), the encoder and the parser.
func encodeChain(enc chosenEncoder, s EncodeSettings, zeroCopy, scale bool) []Element {
	var chain []Element
	if !zeroCopy {
		chain = append(chain, Element{Factory: "videoconvert"})
		if scale {
			chain = append(chain, Element{Factory: "videoscale"}, Element{Factory: "videorate"},
				Caps("video/x-raw"+sizeCaps(s.Width, s.Height)+fpsCaps(s.FPS)))
		}
		if enc.fam.before != nil {
			chain = append(chain, enc.fam.before(s)...)
		}
	}
	props := enc.fam.props(s)
	if zeroCopy {
		props = append(props, Prop{Name: "output-io-mode", Value: "dmabuf-import"})
	}
	chain = append(chain, Element{Factory: enc.info.Element, Name: "encoder", Props: props})
	if enc.fam.after != nil {
		chain = append(chain, Caps(enc.fam.after(s)))
	}
	if enc.fam.codec != "h264" {
		return chain
	}
	chain = append(chain, Element{Factory: "h264parse", Props: []Prop{{Name: "config-interval", Value: "-1"}}},
		Caps("video/x-h264,stream-format=byte-stream,alignment=au"))
	return chain
}

// slateSource is a still frame with the slate text and a clock.
func slateSource(req Request, w, h, fps int) []Element {
	text := req.SlateText
	if text == "" {
		text = " "
	}
	chain := []Element{
		{Factory: "videotestsrc", Props: []Prop{
			{Name: "is-live", Value: "true"}, {Name: "pattern", Value: "solid-color"},
			{Name: "foreground-color", Value: "0xff202830"},
		}},
		Caps("video/x-raw,format=I420" + sizeCaps(w, h) + fpsCaps(fps)),
	}
	// The text and the clock come from GStreamer's pango plugin: without
	// it the slate is the plain background, which is still no dead stream.
	if req.has("textoverlay") {
		chain = append(chain, Element{Factory: "textoverlay", Props: []Prop{
			{Name: "text", Value: text, Literal: true},
			{Name: "font-desc", Value: "Sans 40", Literal: true},
			{Name: "halignment", Value: "center"}, {Name: "valignment", Value: "center"},
		}})
	}
	if req.has("clockoverlay") {
		chain = append(chain, Element{Factory: "clockoverlay", Props: []Prop{
			{Name: "time-format", Value: "%H:%M:%S", Literal: true},
			{Name: "halignment", Value: "right"}, {Name: "valignment", Value: "bottom"},
			{Name: "font-desc", Value: "Sans 24", Literal: true},
		}})
	}
	return chain
}

// slateFront encodes the slate like the live picture (same size and
// encoder family), from system memory.
func slateFront(req Request, enc chosenEncoder, w, h, fps int) Front {
	if w <= 0 || h <= 0 {
		w, h = min(testWidth, req.MaxWidth), min(testHeight, req.MaxHeight)
	}
	if fps <= 0 {
		fps = min(testFPS, req.MaxFPS)
	}
	s := settings(req, w, h, fps)
	chain := slateSource(req, w, h, fps)
	chain = append(chain, encodeChain(enc, s, false, false)...)
	return Front{Kind: SourceSlate, Chain: chain, Width: w, Height: h, FPS: fps}
}

// aacEncoders in order of preference: voaacenc is small and in every
// image; avenc_aac needs libav.
var aacEncoders = []struct {
	element string
	bitrate string // property name; both take bit/s
}{{"voaacenc", "bitrate"}, {"avenc_aac", "bitrate"}}

// AudioBitrate is the AAC bitrate in bit/s.
const AudioBitrate = 128000

func audioFront(req Request, in input) (Front, error) {
	f := Front{}
	pin := req.AudioPin
	device := ""
	switch pin {
	case "", "auto":
		if in.kind == SourceV4L2 {
			device = req.Detection.Chosen.AudioInput
		}
		switch {
		case device != "":
			f.Kind = SourceALSA
		case in.kind == SourceTest:
			f.Kind = SourceTest
		default:
			f.Kind = SourceSilence
		}
	case "test":
		f.Kind = SourceTest
	case "none":
		f.Kind = SourceSilence
	default:
		f.Kind, device = SourceALSA, pin
	}
	switch f.Kind {
	case SourceALSA:
		f.Device = device
		f.Chain = []Element{{Factory: "alsasrc", Props: []Prop{{Name: "device", Value: device, Literal: true}}}}
	case SourceTest:
		// A 1 kHz tone at -20 dBFS.
		f.Chain = []Element{{Factory: "audiotestsrc", Props: []Prop{
			{Name: "is-live", Value: "true"}, {Name: "wave", Value: "sine"},
			{Name: "freq", Value: "1000"}, {Name: "volume", Value: "0.1"},
		}}}
	default:
		f.Chain = []Element{{Factory: "audiotestsrc", Props: []Prop{
			{Name: "is-live", Value: "true"}, {Name: "wave", Value: "silence"},
		}}}
	}
	aac := ""
	for _, e := range aacEncoders {
		if req.has(e.element) {
			aac = e.element
			break
		}
	}
	if aac == "" {
		return f, ErrNoAACEncoder
	}
	f.Chain = append(f.Chain,
		Element{Factory: "audioconvert"}, Element{Factory: "audioresample"},
		Caps("audio/x-raw,rate=48000,channels=2"),
		// One level message a second: peak and RMS per channel, dBFS.
		Element{Factory: "level", Name: "level", Props: []Prop{{Name: "interval", Value: "1000000000"}}},
		Element{Factory: aac, Props: []Prop{{Name: "bitrate", Value: itoa(AudioBitrate)}}},
		Element{Factory: "aacparse"},
	)
	return f, nil
}

// Latency for SRT when the URL gives none, in milliseconds (libsrt's
// default is 120 ms; venue networks with Wi-Fi need more).
const defaultSRTLatency = 200 * time.Millisecond

func outputSink(o OutputSpec) (Sink, error) {
	h264 := []Element{{Factory: "h264parse", Props: []Prop{{Name: "config-interval", Value: "-1"}}}}
	aac := []Element{{Factory: "aacparse"}}
	switch o.Proto {
	case ProtoSRT:
		// The mode goes in the URI: set as a property after the URI, srtsink
		// keeps the caller's local port (7001) for a listener.
		mode := "caller"
		if o.Listener {
			mode = "listener"
		}
		uri := "srt://" + o.ListenAddr() + "?mode=" + mode
		lat := o.Latency
		if lat == 0 {
			lat = defaultSRTLatency
		}
		props := []Prop{
			{Name: "uri", Value: uri, Literal: true},
			{Name: "latency", Value: itoa(int(lat / time.Millisecond))},
			{Name: "wait-for-connection", Value: "false"},
			{Name: "sync", Value: "false"},
		}
		if o.StreamID != "" {
			props = append(props, Prop{Name: "streamid", Value: o.StreamID, Literal: true})
		}
		if o.Passphrase.Set() {
			ref := o.Passphrase
			props = append(props, Prop{Name: "passphrase", Value: Redacted, Secret: &ref, Literal: true})
			if o.PBKeyLen != 0 {
				props = append(props, Prop{Name: "pbkeylen", Value: itoa(o.PBKeyLen)})
			}
		}
		return Sink{
			Name: o.Name,
			// alignment=7: seven TS packets per write, and keyframes are
			// not dropped by srtsink (TOOLCHAIN.md).
			Chain: []Element{
				{Factory: "mpegtsmux", Props: []Prop{{Name: "alignment", Value: "7"}}},
				{Factory: "srtsink", Name: "sink", Props: props},
			},
			VideoParse: h264, AudioParse: aac, VideoPad: "sink_%d", AudioPad: "sink_%d",
		}, nil
	case ProtoRTMP, ProtoRTMPS:
		ref := o.StreamKey
		return Sink{
			Name: o.Name,
			Chain: []Element{
				{Factory: "flvmux", Props: []Prop{{Name: "streamable", Value: "true"}}},
				{Factory: "rtmp2sink", Name: "sink", Props: []Prop{
					{Name: "scheme", Value: string(o.Proto)},
					{Name: "host", Value: o.Host, Literal: true},
					{Name: "port", Value: itoa(o.Port)},
					{Name: "application", Value: o.Application, Literal: true},
					{Name: "stream", Value: Redacted, Secret: &ref, Literal: true},
					{Name: "sync", Value: "false"},
				}},
			},
			VideoParse: h264, AudioParse: aac, VideoPad: "video", AudioPad: "audio",
		}, nil
	case ProtoRTSP:
		loc := fmt.Sprintf("rtsp://%s/%s", o.ListenAddr(), o.Path)
		props := []Prop{{Name: "location", Value: loc, Literal: true}, {Name: "protocols", Value: "tcp"}}
		if o.User != "" {
			props = append(props, Prop{Name: "user-id", Value: o.User, Literal: true})
		}
		if o.Password.Set() {
			ref := o.Password
			props = append(props, Prop{Name: "user-pw", Value: Redacted, Secret: &ref, Literal: true})
		}
		return Sink{
			Name:       o.Name,
			Chain:      []Element{{Factory: "rtspclientsink", Name: "sink", Props: props}},
			VideoParse: h264, AudioParse: aac, VideoPad: "sink_%u", AudioPad: "sink_%u",
		}, nil
	}
	return Sink{}, fmt.Errorf("%w: unknown protocol %q", ErrOutputURL, o.Proto)
}

// RecordingPrefix starts every segment's file name; the rest is the start
// time (UTC) and a counter.
const RecordingPrefix = "capbox-"

func recorderPlan(r RecordSettings) *RecorderPlan {
	muxer, muxProps := "mpegtsmux", ""
	if r.Format == "mp4" {
		// Fragmented MP4: each second's fragment is complete on disk, so a
		// power cut loses at most the last one.
		muxer, muxProps = "mp4mux", "properties,fragment-duration=(uint)1000,streamable=(boolean)true"
	}
	props := []Prop{
		{Name: "location", Value: filepath.Join(r.Dir, RecordingPrefix+"%05d."+r.Format), Literal: true},
		{Name: "max-size-time", Value: fmt.Sprint(r.Segment.Nanoseconds())},
		// A muxer and a file sink per segment, made from the factories and
		// properties below (splitmuxsink applies muxer- and sink-properties
		// only this way); a segment's end is written off the stream's path.
		{Name: "async-finalize", Value: "true"},
		{Name: "muxer-factory", Value: muxer},
		// Unbuffered: each muxed frame goes to the kernel as it comes
		// rather than in 64 KiB blocks, which a slate at a few kbit/s would
		// fill only after minutes; what the process holds is lost in a crash.
		{Name: "sink-properties", Value: "properties,buffer-mode=(int)2"},
	}
	if muxProps != "" {
		props = append(props, Prop{Name: "muxer-properties", Value: muxProps})
	}
	return &RecorderPlan{
		Dir: r.Dir, Format: r.Format, Segment: r.Segment, KeepFree: r.KeepFree,
		Sink: Sink{
			Name:       "recorder",
			Chain:      []Element{{Factory: "splitmuxsink", Name: "sink", Props: props}},
			VideoParse: []Element{{Factory: "h264parse"}},
			AudioParse: []Element{{Factory: "aacparse"}},
			VideoPad:   "video", AudioPad: "audio_%u",
		},
	}
}

// rawRecorderPlan writes an encoded stream that no container carries
// (FWHT, in the virtual capture box) to one file as it comes; audio is
// dropped.
func rawRecorderPlan(r RecordSettings, codec string) *RecorderPlan {
	return &RecorderPlan{
		Dir: r.Dir, Format: codec, Segment: r.Segment, KeepFree: r.KeepFree,
		Sink: Sink{
			Name:  "recorder",
			Chain: []Element{{Factory: "filesink", Name: "sink", Props: []Prop{{Name: "location", Value: filepath.Join(r.Dir, RecordingPrefix+codec+"."+codec), Literal: true}}}},
		},
	}
}
