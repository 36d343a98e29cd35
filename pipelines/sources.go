package pipelines

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"capbox/board"
)

// The sources: which video input and format to capture, and the video,
// slate and audio fronts that encode them.

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

// markupEscaper makes text literal in Pango markup (as GLib's
// g_markup_escape_text does).
var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")

// slateSource is a still frame with the slate text and a clock.
func slateSource(req Request, w, h, fps int) []Element {
	// textoverlay reads its text as Pango markup: "Q&A" would blank it.
	text := markupEscaper.Replace(req.SlateText)
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
		// Five level messages a second: peak and RMS per channel, dBFS (the
		// fleet's audio meters show them while someone watches).
		Element{Factory: "level", Name: "level", Props: []Prop{{Name: "interval", Value: "200000000"}}},
		Element{Factory: aac, Props: []Prop{{Name: "bitrate", Value: itoa(AudioBitrate)}}},
		Element{Factory: "aacparse"},
	)
	return f, nil
}
