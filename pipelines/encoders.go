package pipelines

import (
	"fmt"
	"strconv"
	"strings"

	"capbox/board"
)

// EncodeSettings are the encode settings every family translates into its
// own properties and units.
type EncodeSettings struct {
	BitrateKbps int
	// KeyframeFrames is the keyframe interval in frames (config's
	// keyframe_interval times the frame rate).
	KeyframeFrames int
	Width, Height  int
	FPS            int
}

// encoderFamily is one row of the encoder table: how an element is set.
type encoderFamily struct {
	element string
	// codec is what it makes: h264, or fwht (vicodec, the virtual capture
	// box's stand-in for a hardware encoder).
	codec    string
	family   board.EncoderFamily
	hardware bool
	// zeroCopy: the element can import dmabuf capture buffers
	// (output-io-mode=dmabuf-import).
	zeroCopy bool
	// before is what the encoder wants in front of it, after conversion.
	before func(s EncodeSettings) []Element
	// props sets bitrate, keyframe interval and streaming headers.
	props func(s EncodeSettings) []Prop
	// after is the caps right after the encoder (level and profile for
	// v4l2h264enc go here, HARDWARE.md section 3).
	after func(s EncodeSettings) string
	// unverified names settings the element may ignore without an error.
	unverified []string
}

func itoa(n int) string { return strconv.Itoa(n) }

// h264Level picks the lowest H.264 level that carries the format
// (ITU-T H.264 table A-1: max macroblocks per second).
func h264Level(s EncodeSettings) string {
	mbs := ((s.Width + 15) / 16) * ((s.Height + 15) / 16) * max(s.FPS, 1)
	switch {
	case mbs <= 108000:
		return "3.1"
	case mbs <= 216000:
		return "3.2"
	case mbs <= 245760:
		return "4"
	case mbs <= 522240:
		return "4.2"
	default:
		return "5.1"
	}
}

// i420 is the raw format software and most hardware encoders take; x264enc
// must get it explicitly or it may pick 4:4:4 (TOOLCHAIN.md).
func i420(EncodeSettings) []Element { return []Element{Caps("video/x-raw,format=I420")} }

func nv12(EncodeSettings) []Element { return []Element{Caps("video/x-raw,format=NV12")} }

// encoderTable is every encoder family capbox drives (HARDWARE.md 2-3).
// Units differ: kbit/s for x264enc, vah264enc, qsvh264enc, nvh264enc,
// vpuenc_h264; bit/s for openh264enc, nvv4l2h264enc, mpph264enc, omx and the
// V4L2 video_bitrate control.
var encoderTable = []encoderFamily{
	{
		element: "v4l2h264enc", family: board.FamilyV4L2M2M, hardware: true, zeroCopy: true,
		props: func(s EncodeSettings) []Prop {
			// repeat_sequence_header: SPS/PPS before every IDR, needed by
			// players joining a live stream. video_bitrate_mode=1 is CBR.
			return []Prop{{Name: "extra-controls", Value: fmt.Sprintf(
				"controls,video_bitrate=%d,video_bitrate_mode=1,h264_i_frame_period=%d,repeat_sequence_header=1",
				s.BitrateKbps*1000, max(s.KeyframeFrames, 2))}}
		},
		after: func(s EncodeSettings) string {
			// Without the level in the caps STREAMON fails with "No such
			// process" on the Pi (raspberrypi/linux#3974).
			return "video/x-h264,level=(string)" + h264Level(s) + ",profile=(string)high"
		},
		unverified: []string{"video_bitrate", "h264_i_frame_period", "repeat_sequence_header"},
	},
	{
		element: "omxh264enc", family: board.FamilyOMX, hardware: true,
		before: i420,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "target-bitrate", Value: itoa(s.BitrateKbps * 1000)},
				{Name: "control-rate", Value: "variable"},
				{Name: "periodicity-idr", Value: itoa(s.KeyframeFrames)},
				{Name: "interval-intraframes", Value: itoa(s.KeyframeFrames)},
			}
		},
		after:      func(EncodeSettings) string { return "video/x-h264,profile=(string)high" },
		unverified: []string{"periodicity-idr"},
	},
	{
		element: "vpuenc_h264", family: board.FamilyVendor, hardware: true,
		before: nv12,
		props: func(s EncodeSettings) []Prop {
			return []Prop{{Name: "bitrate", Value: itoa(s.BitrateKbps)}, {Name: "gop-size", Value: itoa(s.KeyframeFrames)}}
		},
	},
	{
		element: "mpph264enc", family: board.FamilyVendor, hardware: true,
		before: nv12,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bps", Value: itoa(s.BitrateKbps * 1000)},
				{Name: "gop", Value: itoa(s.KeyframeFrames)},
				{Name: "rc-mode", Value: "cbr"},
				{Name: "header-mode", Value: "each-idr"},
			}
		},
	},
	{
		element: "nvv4l2h264enc", family: board.FamilyNVENC, hardware: true,
		before: func(EncodeSettings) []Element {
			// Jetson's encoder reads NVMM memory only: nvvidconv copies
			// into it in hardware.
			return []Element{{Factory: "nvvidconv"}, Caps("video/x-raw(memory:NVMM),format=NV12")}
		},
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps * 1000)},
				{Name: "iframeinterval", Value: itoa(s.KeyframeFrames)},
				{Name: "idrinterval", Value: itoa(s.KeyframeFrames)},
				{Name: "insert-sps-pps", Value: "true"},
			}
		},
	},
	{
		element: "vah264enc", family: board.FamilyVAAPI, hardware: true,
		before: nv12,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps)},
				{Name: "key-int-max", Value: itoa(s.KeyframeFrames)},
				{Name: "rate-control", Value: "cbr"},
			}
		},
	},
	{
		element: "qsvh264enc", family: board.FamilyVAAPI, hardware: true,
		before: nv12,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps)},
				{Name: "gop-size", Value: itoa(s.KeyframeFrames)},
				{Name: "rate-control", Value: "cbr"},
			}
		},
	},
	{
		element: "nvh264enc", family: board.FamilyNVENC, hardware: true,
		before: nv12,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps)},
				{Name: "gop-size", Value: itoa(s.KeyframeFrames)},
				{Name: "rc-mode", Value: "cbr"},
				{Name: "zerolatency", Value: "true"},
			}
		},
	},
	{
		// vicodec's FWHT encoder: a stateful V4L2 M2M codec driven exactly
		// like a Pi's bcm2835-codec, for the virtual capture box only.
		element: "v4l2fwhtenc", codec: "fwht", family: board.FamilyV4L2M2M, hardware: true, zeroCopy: true,
		props: func(EncodeSettings) []Prop { return nil },
	},
	{
		element: "x264enc", family: board.FamilySoftware,
		before: i420,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps)},
				{Name: "key-int-max", Value: itoa(s.KeyframeFrames)},
				{Name: "tune", Value: "zerolatency"},
				{Name: "speed-preset", Value: "veryfast"},
			}
		},
		after: func(EncodeSettings) string { return "video/x-h264,profile=(string)high" },
	},
	{
		element: "openh264enc", family: board.FamilySoftware,
		before: i420,
		props: func(s EncodeSettings) []Prop {
			return []Prop{
				{Name: "bitrate", Value: itoa(s.BitrateKbps * 1000)},
				{Name: "gop-size", Value: itoa(s.KeyframeFrames)},
				{Name: "rate-control", Value: "bitrate"},
			}
		},
	},
}

// familyFor finds the table row for an element. V4L2 encoders on a second
// node are named like v4l2video11h264enc and take v4l2h264enc's settings.
func familyFor(element string) (encoderFamily, bool) {
	for _, f := range encoderTable {
		if f.element == element {
			if f.codec == "" {
				f.codec = "h264"
			}
			return f, true
		}
	}
	if strings.HasPrefix(element, "v4l2") && strings.HasSuffix(element, "h264enc") {
		f := encoderTable[0]
		f.element, f.codec = element, "h264"
		return f, true
	}
	return encoderFamily{}, false
}

// softwareEncoders are tried in order when no hardware encoder is usable.
var softwareEncoders = []string{"x264enc", "openh264enc"}
