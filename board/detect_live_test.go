package board

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// vicodecEncoder is vicodec's stateful encoder as the real driver answered
// in the virtual capture box (testdata/vm-vivid-vicodec/capbox-probes.json).
func vicodecEncoder() *fakeDev {
	return &fakeDev{
		cap: Capability{Driver: "vicodec", Card: "vicodec", BusInfo: "platform:vicodec",
			Capabilities: capVideoM2MMPlane | capStreaming | capDeviceCaps, DeviceCaps: capVideoM2MMPlane | capStreaming},
		formats: map[uint32][]FmtDesc{bufTypeVideoCaptureMPlane: {{FourCC: "FWHT", Flags: fmtFlagCompressed}},
			bufTypeVideoOutputMPlane: {{FourCC: "YU12"}, {FourCC: "NV12"}, {FourCC: "YUYV"}}},
	}
}

func vmHW() *fakeHW {
	hw := newFakeHW()
	hw.add("/dev/video0", vividHDMI())
	hw.add("/dev/video1", vicodecEncoder())
	dec := vicodecEncoder()
	dec.formats = map[uint32][]FmtDesc{bufTypeVideoCaptureMPlane: {{FourCC: "YU12"}}, bufTypeVideoOutputMPlane: {{FourCC: "FWHT", Flags: fmtFlagCompressed}}}
	hw.add("/dev/video2", dec)
	hw.add("/dev/video3", dec)
	return hw
}

func detectVM(t *testing.T, hw *fakeHW, o Options) (Detection, error) {
	t.Helper()
	o.Root = filepath.Join("testdata", "vm-vivid-vicodec")
	o.open = hw.open
	return Detect(context.Background(), o)
}

func TestDetectLiveProbe(t *testing.T) {
	d, err := detectVM(t, vmHW(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.VideoInputs) != 1 {
		t.Fatalf("inputs %+v", d.VideoInputs)
	}
	in := d.VideoInputs[0]
	if !in.Probed || in.Recorded || in.Kind != KindVirtual || !in.DVTimings || !in.EDID || in.Signal.State != SignalLocked || in.Signal.Width != 1280 {
		t.Errorf("input %+v", in)
	}
	var fwht *Encoder
	for i := range d.Encoders {
		if d.Encoders[i].Element == "v4l2fwhtenc" {
			fwht = &d.Encoders[i]
		}
	}
	if fwht == nil || fwht.Device != "/dev/video1" || fwht.Codec != "fwht" {
		t.Fatalf("encoders %+v", d.Encoders)
	}
	// vicodec takes vivid's vmalloc buffers: the VM's zero-copy path.
	ok, why := ZeroCopyPossible(in, *fwht, 1280, 720, "YUYV")
	if !ok || !strings.Contains(why, "dmabuf-import into v4l2fwhtenc") {
		t.Errorf("vivid -> vicodec zero-copy: %v %s", ok, why)
	}
	// H.264 is what streams: the software encoder is chosen, with reason.
	if d.Chosen.Encoder != "x264enc" || !strings.Contains(d.Chosen.Reason, "no VA-API or NVENC") {
		t.Errorf("chosen %+v", d.Chosen)
	}
}

func TestDetectSignalStatesFromProbe(t *testing.T) {
	for errno, want := range map[unix.Errno]SignalState{unix.ENOLINK: SignalNone, unix.ENOLCK: SignalNoLock, unix.ERANGE: SignalOutOfRange} {
		hw := vmHW()
		hw.set("/dev/video0", func(d *fakeDev) { d.timingsErr = errno })
		d, err := detectVM(t, hw, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.VideoInputs[0].Signal.State; got != want || !d.VideoInputs[0].DVTimings {
			t.Errorf("%v: %s, want %s", errno, got, want)
		}
	}
}

func TestDetectBadDevicesGivePartialResults(t *testing.T) {
	hw := vmHW()
	hw.remove("/dev/video1")                                                 // vanished between listing and opening
	hw.set("/dev/video2", func(d *fakeDev) { d.hang = make(chan struct{}) }) // stuck in an ioctl
	hw.add("/dev/video3", &fakeDev{})
	hw.set("/dev/video3", func(d *fakeDev) { d.gone = true })
	start := time.Now()
	d, err := detectVM(t, hw, Options{ProbeTimeout: 200 * time.Millisecond})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("detection took %v with one hung device", elapsed)
	}
	hw.set("/dev/video2", func(d *fakeDev) { close(d.hang) })
	for _, want := range []error{ErrNoDevice, ErrTimeout, ErrGone} {
		if !errors.Is(err, want) {
			t.Errorf("joined error lacks %v: %v", want, err)
		}
	}
	if len(d.Errors) != 3 {
		t.Errorf("errors %q", d.Errors)
	}
	if len(d.VideoInputs) != 1 || d.VideoInputs[0].Signal.State != SignalLocked {
		t.Errorf("the good device is still reported: %+v", d.VideoInputs)
	}
	// The vanished encoder is still known from sysfs (probed or not).
	found := false
	for _, e := range d.Encoders {
		found = found || e.Element == "v4l2fwhtenc"
	}
	if !found {
		t.Errorf("encoders %+v", d.Encoders)
	}
}

func TestDetectPins(t *testing.T) {
	for _, c := range []struct {
		video, enc   string
		wantIn       string
		wantEnc      string
		wantErr      error
		reasonSubstr string
	}{
		{"test", "auto", TestInput, "x264enc", nil, "capture.video: test"},
		{"none", "auto", "", "x264enc", nil, "capture.video: none"},
		{"/dev/v4l/by-path/platform-vivid.0-video-index0", "auto", "/dev/v4l/by-path/platform-vivid.0-video-index0", "x264enc", nil, "pinned by config"},
		{"/dev/video9", "auto", "/dev/video9", "x264enc", ErrNoDevice, "not found"},
		{"auto", "openh264enc", "/dev/video0", "openh264enc", nil, "openh264enc pinned"},
		{"auto", "v4l2fwhtenc", "/dev/video0", "v4l2fwhtenc", nil, "pinned by config"},
		{"auto", "nvh264enc", "/dev/video0", "x264enc", nil, "pinned nvh264enc not available"},
	} {
		d, err := detectVM(t, vmHW(), Options{PinVideo: c.video, PinEncoder: c.enc})
		if c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Errorf("%s/%s: err %v, want %v", c.video, c.enc, err, c.wantErr)
		}
		if d.Chosen.VideoInput != c.wantIn || d.Chosen.Encoder != c.wantEnc || !strings.Contains(d.Chosen.Reason, c.reasonSubstr) {
			t.Errorf("%s/%s: chosen %+v", c.video, c.enc, d.Chosen)
		}
	}
}

type onlyElements map[string]bool

func (o onlyElements) HasElement(n string) bool { return o[n] }

func TestDetectMissingElements(t *testing.T) {
	root := filepath.Join("testdata", "rpi4-ms2109")
	// The Pi's encoder node exists but GStreamer lacks v4l2h264enc.
	d, _ := Detect(context.Background(), Options{Root: root, Elements: onlyElements{"x264enc": true}})
	if d.Chosen.Encoder != "x264enc" || !strings.Contains(d.Chosen.Reason, "GStreamer element is missing (v4l2h264enc)") {
		t.Errorf("chosen %+v", d.Chosen)
	}
	d, err := Detect(context.Background(), Options{Root: root, Elements: onlyElements{}})
	if d.Chosen.Encoder != "" || err == nil {
		t.Errorf("no encoder at all: %+v, %v", d.Chosen, err)
	}
}

func TestDetectEmptyRoot(t *testing.T) {
	d, err := Detect(context.Background(), Options{Root: t.TempDir()})
	if err != nil {
		t.Errorf("an empty tree is a box without hardware, not an error: %v", err)
	}
	if d.Board.ID != "unknown" || d.Chosen.VideoInput != TestInput || d.Chosen.Encoder != "x264enc" {
		t.Errorf("%+v", d)
	}
	if !strings.Contains(d.Chosen.Reason, "no capture input found") || !strings.Contains(d.Chosen.Reason, "unknown board") {
		t.Errorf("reason %q", d.Chosen.Reason)
	}
}

func TestInputRanking(t *testing.T) {
	locked := Signal{State: SignalLocked, Width: 1920, Height: 1080, FPS: 60}
	hdmiLocked := VideoInput{Device: "/dev/video0", Kind: KindHDMICSI, Signal: locked}
	hdmiNone := VideoInput{Device: "/dev/video0", Kind: KindHDMICSI, Signal: Signal{State: SignalNone}}
	dongle := VideoInput{Device: "/dev/video4", Kind: KindUSB, Signal: Signal{State: SignalUnknown}}
	camera := VideoInput{Device: "/dev/video8", Kind: KindCamera}
	for _, c := range []struct {
		ins  []VideoInput
		want string
	}{
		{[]VideoInput{camera, dongle, hdmiLocked}, "/dev/video0"},
		{[]VideoInput{hdmiNone, dongle}, "/dev/video4"},
		{[]VideoInput{camera, hdmiNone}, "/dev/video0"},
		{[]VideoInput{camera}, "/dev/video8"},
	} {
		d := Detection{VideoInputs: c.ins, Encoders: softwareEncoders}
		for i := range d.Encoders {
			d.Encoders[i].Available = true
		}
		_ = choose(&d, unknownProfile, PinAuto, PinAuto)
		if d.Chosen.VideoInput != c.want {
			t.Errorf("%v: chose %s, want %s", c.ins, d.Chosen.VideoInput, c.want)
		}
	}
}

func TestZeroCopyRules(t *testing.T) {
	unicam := VideoInput{Device: "/dev/video0", Driver: "unicam", Kind: KindHDMICSI}
	uvc := VideoInput{Device: "/dev/video0", Driver: "uvcvideo", Kind: KindUSB}
	vivid := VideoInput{Device: "/dev/video0", Driver: "vivid", Kind: KindVirtual}
	pi := Encoder{Element: "v4l2h264enc", Driver: "bcm2835-codec", Family: FamilyV4L2M2M, Hardware: true}
	x264 := Encoder{Element: "x264enc", Family: FamilySoftware}
	for _, c := range []struct {
		in     VideoInput
		enc    Encoder
		w, h   int
		fourcc string
		ok     bool
		why    string
	}{
		{unicam, pi, 1920, 1080, "UYVY", true, "3840 bytes meet bcm2835-codec's 64-byte"},
		{unicam, pi, 1280, 720, "UYVY", true, "2560 bytes"},
		{unicam, pi, 720, 576, "UYVY", false, "1440 bytes (stride 1440)"},
		{unicam, pi, 1366, 768, "UYVY", false, "2732 bytes (stride 2752)"},
		{unicam, pi, 1280, 720, "NV12", true, "32-byte"},
		{unicam, pi, 1920, 1080, "RGB3", true, "5760 bytes"},
		{unicam, pi, 2560, 1440, "UYVY", false, "exceeds"},
		{unicam, pi, 1920, 1080, "MJPG", false, "not a raw format"},
		{unicam, pi, 1920, 1080, "", false, "unknown until the signal locks"},
		{uvc, pi, 1920, 1080, "YUYV", false, "UVC capture uses vmalloc"},
		{vivid, pi, 1280, 720, "YUYV", false, "vivid buffers are vmalloc and bcm2835-codec needs contiguous"},
		{unicam, x264, 1920, 1080, "UYVY", false, "software encoder"},
		{unicam, Encoder{Element: "nvv4l2h264enc", Family: FamilyNVENC, Hardware: true}, 1920, 1080, "UYVY", false, "NVMM"},
	} {
		ok, why := ZeroCopyPossible(c.in, c.enc, c.w, c.h, c.fourcc)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("%s %dx%d %s -> %s: %v %q", c.in.Driver, c.w, c.h, c.fourcc, c.enc.Element, ok, why)
		}
	}
}
