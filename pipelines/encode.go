package pipelines

import (
	"fmt"
	"strings"

	"capbox/board"
)

// The encoder: which one runs and on which rung (the families it is chosen
// from are in encoders.go), at what size and rate, and the chain that
// feeds it.

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
