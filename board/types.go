// Package board finds out what the hardware is: board identity, video and
// audio inputs, encoders, HDMI signal state, EDID, hotplug and health
// readings. Pure Go: ioctls through golang.org/x/sys/unix, no cgo.
package board

// Detection is what `capboxd detect --json` prints (DESIGN.md contract).
type Detection struct {
	Board       Board        `json:"board"`
	VideoInputs []VideoInput `json:"video_inputs"`
	AudioInputs []AudioInput `json:"audio_inputs"`
	Encoders    []Encoder    `json:"encoders"`
	Chosen      Choice       `json:"chosen"`
	// Errors are what could not be read; the rest is still valid.
	Errors []string `json:"errors,omitempty"`
}

// Board is the identified board.
type Board struct {
	ID         string   `json:"id"` // HARDWARE.md ids: rpi4, rpi5, imx8mp, x86, ..., unknown
	Family     string   `json:"family"`
	Model      string   `json:"model"`
	Compatible []string `json:"compatible,omitempty"`
	// SoC is the system-on-chip (bcm2711, imx8mp, ...), or the DMI board
	// name on x86.
	SoC string `json:"soc,omitempty"`
	// ExpectedEncoder is the hardware encoder element the board profile
	// expects; the probe decides what is really there.
	ExpectedEncoder string `json:"expected_encoder,omitempty"`
	// CSILanes is how many CSI-2 lanes an HDMI bridge gets on this board.
	CSILanes int `json:"csi_lanes,omitempty"`
	// MaxHDMIFPS is the highest 1080p rate an HDMI-to-CSI bridge can
	// deliver here (Pi 4: 30); the default EDID offers no more.
	MaxHDMIFPS int `json:"max_hdmi_fps,omitempty"`
	// Limits are known limits of the board, in words.
	Limits []string `json:"limits,omitempty"`
}

// InputKind classifies a video input.
type InputKind string

// Input kinds.
const (
	KindHDMICSI InputKind = "hdmi-csi"
	KindUSB     InputKind = "usb"
	KindPCIe    InputKind = "pcie"
	KindVirtual InputKind = "virtual"
	KindCamera  InputKind = "camera"
)

// SignalState is the HDMI signal as the receiver reports it.
type SignalState string

// Signal states; the kernel errnos behind them are mapped in one place
// (VIDIOC_QUERY_DV_TIMINGS: ENOLINK, ENOLCK, ERANGE).
const (
	SignalLocked     SignalState = "locked"
	SignalNone       SignalState = "no_signal"
	SignalNoLock     SignalState = "no_lock"
	SignalOutOfRange SignalState = "out_of_range"
	SignalUnknown    SignalState = "unknown"
)

// Signal is the state and, when locked, the format.
type Signal struct {
	State  SignalState `json:"state"`
	Width  int         `json:"width,omitempty"`
	Height int         `json:"height,omitempty"`
	// FPS is frames per second, rounded (59.94 reports 60; see FPSExact).
	FPS        int     `json:"fps,omitempty"`
	FPSExact   float64 `json:"fps_exact,omitempty"`
	Interlaced bool    `json:"interlaced,omitempty"`
}

// Format is one pixel format a capture node offers.
type Format struct {
	FourCC     string      `json:"fourcc"` // V4L2 fourcc: UYVY, YUYV, MJPG, NV12, RGB3, ...
	Compressed bool        `json:"compressed,omitempty"`
	Sizes      []FrameSize `json:"sizes,omitempty"`
}

// FrameSize is one discrete size with its frame rates.
type FrameSize struct {
	Width  int       `json:"width"`
	Height int       `json:"height"`
	FPS    []float64 `json:"fps,omitempty"`
}

// VideoInput is one capture node.
type VideoInput struct {
	Device     string    `json:"device"`
	StablePath string    `json:"stable_path,omitempty"`
	Driver     string    `json:"driver"`
	Card       string    `json:"card"`
	BusInfo    string    `json:"bus_info,omitempty"`
	Kind       InputKind `json:"kind"`
	USBID      string    `json:"usb_id,omitempty"`
	Probed     bool      `json:"probed"`
	Signal     Signal    `json:"signal"`
	Formats    []Format  `json:"formats,omitempty"`
	// DVTimings is true when the node answers VIDIOC_QUERY_DV_TIMINGS (an
	// HDMI receiver), so signal state is known rather than guessed.
	DVTimings bool `json:"dv_timings,omitempty"`
	// EDID is true when the node accepts VIDIOC_S_EDID.
	EDID bool `json:"edid,omitempty"`
	// Recorded is true when the V4L2 answers (driver, formats, signal)
	// come from a snapshot's capbox-probes.json rather than from opening
	// the node now (`detect --sysroot` on a `capboxd snapshot` folder).
	Recorded bool `json:"recorded,omitempty"`
}

// AudioInput is one ALSA capture PCM.
type AudioInput struct {
	Device string `json:"device"` // hw:CARD=<id>,DEV=<n>
	Card   string `json:"card"`
	USBID  string `json:"usb_id,omitempty"`
	// VideoDevice is the video input this audio belongs to, if any.
	VideoDevice string `json:"video_device,omitempty"`
}

// EncoderFamily groups encoders that take the same settings.
type EncoderFamily string

// Encoder families (HARDWARE.md section 2).
const (
	FamilyV4L2M2M  EncoderFamily = "v4l2-m2m"
	FamilyOMX      EncoderFamily = "omx"
	FamilyVendor   EncoderFamily = "vendor"
	FamilyVAAPI    EncoderFamily = "vaapi"
	FamilyNVENC    EncoderFamily = "nvenc"
	FamilySoftware EncoderFamily = "software"
)

// Encoder is one encoder the box has, with the GStreamer element that drives it.
type Encoder struct {
	Element   string        `json:"element"`
	Device    string        `json:"device,omitempty"`
	Driver    string        `json:"driver,omitempty"`
	Codec     string        `json:"codec"` // h264, hevc, fwht
	Family    EncoderFamily `json:"family"`
	Hardware  bool          `json:"hardware"`
	Available bool          `json:"available"`
}

// Choice is what the agent would run, and why.
type Choice struct {
	VideoInput string `json:"video_input"`
	AudioInput string `json:"audio_input,omitempty"`
	Encoder    string `json:"encoder"`
	ZeroCopy   bool   `json:"zero_copy"`
	Reason     string `json:"reason"`
}

// ElementChecker answers whether a GStreamer element exists on this
// machine. pipelines/gst implements it; board stays free of cgo.
type ElementChecker interface {
	HasElement(name string) bool
}
