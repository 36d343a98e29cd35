package board

import (
	"fmt"
	"strings"
)

// Config values for capture.video / encode.encoder.
const (
	PinAuto = "auto"
	PinTest = "test"
	PinNone = "none"
)

// TestInput is Choice.VideoInput when the agent uses its test pattern.
const TestInput = "test"

// assumedWidth/Height stand for the signal format before it locks: the
// default EDID's preferred mode, which a source normally sends.
const assumedWidth, assumedHeight = 1920, 1080

// inputScore orders capture inputs: a locked HDMI input beats a USB dongle
// beats an HDMI input without signal beats a camera.
func inputScore(in VideoInput) int {
	hdmi := in.Kind == KindHDMICSI || in.Kind == KindPCIe
	locked := in.Signal.State == SignalLocked
	switch {
	case hdmi && locked:
		return 100
	case in.Kind == KindVirtual && locked:
		return 90
	case in.Kind == KindUSB:
		return 60
	case hdmi:
		return 50
	case in.Kind == KindVirtual:
		return 40
	}
	return 10
}

func describeInput(in VideoInput) string {
	var kind string
	switch in.Kind {
	case KindHDMICSI:
		kind = "HDMI receiver"
	case KindUSB:
		kind = "USB capture " + in.USBID
	case KindPCIe:
		kind = "PCIe capture card"
	case KindVirtual:
		kind = "virtual capture"
	default:
		kind = "camera"
	}
	s := fmt.Sprintf("%s (%s %s)", in.Device, kind, in.Driver)
	switch in.Signal.State {
	case SignalLocked:
		s += fmt.Sprintf(", signal locked %dx%d@%d", in.Signal.Width, in.Signal.Height, in.Signal.FPS)
	case SignalUnknown:
		if !in.Probed {
			s += ", signal unknown (not probed)"
		}
	default:
		s += ", " + strings.ReplaceAll(string(in.Signal.State), "_", " ")
	}
	return s
}

// captureFormat is the raw format and size the input will most likely
// deliver, for the zero-copy judgement.
func captureFormat(in VideoInput) (w, h int, fourcc string, assumed bool) {
	w, h = in.Signal.Width, in.Signal.Height
	if in.Signal.State != SignalLocked || w == 0 {
		w, h, assumed = assumedWidth, assumedHeight, true
	}
	prefer := []string{"UYVY", "YUYV", "NV12", "YU12", "RGB3", "BGR3"}
	for _, p := range prefer {
		for _, f := range in.Formats {
			if f.FourCC == p {
				return w, h, p, assumed
			}
		}
	}
	for _, f := range in.Formats {
		if !f.Compressed {
			return w, h, f.FourCC, assumed
		}
	}
	if len(in.Formats) > 0 {
		return w, h, in.Formats[0].FourCC, assumed
	}
	return w, h, defaultFourCC(in), assumed
}

// defaultFourCC is what a driver is known to deliver when it was not
// probed: TC358743 gives UYVY (HARDWARE.md section 5), MS2109 only MJPEG,
// MS2130 YUYV.
func defaultFourCC(in VideoInput) string {
	switch {
	case in.Kind == KindHDMICSI && in.Driver == "unicam":
		return "UYVY"
	case in.USBID == "534d:2109":
		return "MJPG"
	case in.USBID == "345f:2130" || in.USBID == "345f:2131":
		return "YUYV"
	case in.Driver == "vivid":
		return "YUYV" // vivid's default capture format
	}
	return ""
}

// choose picks the input and encoder, honouring config pins.
func choose(d *Detection, prof Profile, pinVideo, pinEncoder string) error {
	var errs []error
	var reasons []string
	c := &d.Chosen

	var input *VideoInput
	switch pinVideo {
	case "", PinAuto:
		for i := range d.VideoInputs {
			if input == nil || inputScore(d.VideoInputs[i]) > inputScore(*input) {
				input = &d.VideoInputs[i]
			}
		}
		if input == nil {
			c.VideoInput = TestInput
			reasons = append(reasons, "no capture input found: test pattern")
		} else {
			c.VideoInput = input.Device
			reasons = append(reasons, "input "+describeInput(*input))
		}
	case PinTest:
		c.VideoInput = TestInput
		reasons = append(reasons, "test pattern (capture.video: test)")
	case PinNone:
		reasons = append(reasons, "no video (capture.video: none)")
	default:
		c.VideoInput = pinVideo
		for i := range d.VideoInputs {
			if d.VideoInputs[i].Device == pinVideo || d.VideoInputs[i].StablePath == pinVideo {
				input = &d.VideoInputs[i]
			}
		}
		if input == nil {
			errs = append(errs, fmt.Errorf("capture.video %s: %w", pinVideo, ErrNoDevice))
			reasons = append(reasons, "input "+pinVideo+" pinned by config but not found")
		} else {
			reasons = append(reasons, "input "+describeInput(*input)+" pinned by config")
		}
	}
	if input != nil {
		for _, a := range d.AudioInputs {
			if a.VideoDevice == input.Device {
				c.AudioInput = a.Device
				break
			}
		}
	}

	enc, why, err := chooseEncoder(d, prof, pinEncoder)
	if err != nil {
		errs = append(errs, err)
	}
	reasons = append(reasons, why)
	if enc != nil {
		c.Encoder = enc.Element
		if input != nil {
			w, h, fourcc, assumed := captureFormat(*input)
			ok, zr := ZeroCopyPossible(*input, *enc, w, h, fourcc)
			if assumed && strings.Contains(zr, fmt.Sprintf("%dx%d", w, h)) {
				zr += fmt.Sprintf(" (assuming %dx%d until the signal locks)", w, h)
			}
			c.ZeroCopy = ok
			reasons = append(reasons, "zero-copy: "+zr)
		} else {
			reasons = append(reasons, "zero-copy: no capture buffers to share (test pattern)")
		}
	}
	c.Reason = strings.Join(reasons, "; ")
	return joinErrs(errs)
}

func chooseEncoder(d *Detection, prof Profile, pin string) (*Encoder, string, error) {
	if pin != "" && pin != PinAuto {
		for i := range d.Encoders {
			e := &d.Encoders[i]
			if e.Element == pin && e.Available {
				return e, "encoder " + e.String() + " pinned by config", nil
			}
		}
		err := fmt.Errorf("encode.encoder %s: not found or its GStreamer element is missing", pin)
		e, why, _ := chooseEncoder(d, prof, PinAuto)
		return e, why + " (pinned " + pin + " not available)", err
	}
	var missing []string
	var best *Encoder
	for i := range d.Encoders {
		e := &d.Encoders[i]
		if !e.Hardware || e.Codec != "h264" || e.Family == FamilyOMX {
			continue
		}
		if !e.Available {
			missing = append(missing, e.Element)
			continue
		}
		// The board profile's own encoder first (vpuenc_h264 on i.MX8M,
		// mpph264enc on Rockchip), else the first by family.
		if best == nil || (e.Element == prof.Encoder && best.Element != prof.Encoder) {
			best = e
		}
	}
	if best != nil {
		return best, "encoder " + best.String() + ": hardware H.264", nil
	}
	why := noHardwareReason(d, prof)
	if len(missing) > 0 {
		why = "hardware encoder found but its GStreamer element is missing (" + strings.Join(missing, ", ") + ")"
	}
	for i := range d.Encoders {
		e := &d.Encoders[i]
		if e.Family == FamilySoftware && e.Codec == "h264" && e.Available {
			return e, "encoder " + e.Element + " (software): " + why, nil
		}
	}
	return nil, "no H.264 encoder available: " + why, fmt.Errorf("no H.264 encoder: %s", why)
}

func noHardwareReason(d *Detection, prof Profile) string {
	switch {
	case prof.ID == "unknown":
		return "unknown board and no hardware H.264 encoder found"
	case prof.EncoderFamily == "" && prof.ID != "x86":
		return fmt.Sprintf("the %s has no hardware H.264 encoder", boardName(d.Board))
	case prof.ID == "x86":
		return "no VA-API or NVENC render node found"
	}
	return fmt.Sprintf("the %s profile expects %s but no encoder device was found (driver not loaded?)", boardName(d.Board), prof.Encoder)
}

func boardName(b Board) string {
	if b.Model != "" {
		return b.Model
	}
	return b.ID
}
