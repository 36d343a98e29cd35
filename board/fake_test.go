package board

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// fakeHW is a set of fake V4L2 nodes that answer like the kernel drivers
// they stand for, with real errnos (vivid's ENOLINK/ENOLCK/ERANGE from
// dv_timings_signal_mode, ENODEV after "disconnect", E2BIG for too many
// EDID blocks as in tc358743_s_edid).
type fakeHW struct {
	mu    sync.Mutex
	nodes map[string]*fakeDev
	opens int // open attempts
}

type fakeDev struct {
	cap        Capability
	formats    map[uint32][]FmtDesc
	sizes      map[string][]FrameSize
	fps        []float64
	inputs     []InputInfo
	input      int
	timings    DVTimings
	timingsErr error // nil: locked with timings
	noDV       bool  // QUERY_DV_TIMINGS is ENOTTY (UVC)
	edid       []byte
	edidBlocks int // most blocks accepted (0: S_EDID unsupported)
	gone       bool
	hang       chan struct{} // when set, QueryCap blocks until closed
	events     chan Event
	subscribed bool
	// framesFlowing is what vivid does during "no signal": buffers keep
	// arriving. The watcher must not care.
	framesFlowing bool
}

func newFakeHW() *fakeHW { return &fakeHW{nodes: map[string]*fakeDev{}} }

func (h *fakeHW) add(path string, d *fakeDev) *fakeDev {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d.events == nil {
		d.events = make(chan Event, 4)
	}
	h.nodes[path] = d
	return d
}

func (h *fakeHW) remove(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.nodes[path]; d != nil {
		d.gone = true // open handles now fail with ENODEV
	}
	delete(h.nodes, path)
}

func (h *fakeHW) set(path string, f func(d *fakeDev)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h.nodes[path])
}

func (h *fakeHW) open(path string) (videoDevice, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opens++
	d, ok := h.nodes[path]
	if !ok {
		return nil, unix.ENOENT
	}
	return &fakeHandle{hw: h, d: d}, nil
}

type fakeHandle struct {
	hw     *fakeHW
	d      *fakeDev
	closed bool
}

// lock returns the device state or the errno a dead handle gives.
func (f *fakeHandle) lock() (*fakeDev, error) {
	f.hw.mu.Lock()
	if f.closed {
		f.hw.mu.Unlock()
		return nil, unix.EBADF
	}
	if f.d.gone {
		f.hw.mu.Unlock()
		return nil, unix.ENODEV
	}
	return f.d, nil
}

func (f *fakeHandle) unlock() { f.hw.mu.Unlock() }

func (f *fakeHandle) QueryCap() (Capability, error) {
	f.hw.mu.Lock()
	hang := f.d.hang
	f.hw.mu.Unlock()
	if hang != nil {
		<-hang
	}
	d, err := f.lock()
	if err != nil {
		return Capability{}, err
	}
	defer f.unlock()
	return d.cap, nil
}

func (f *fakeHandle) EnumFormats(bt uint32) ([]FmtDesc, error) {
	d, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	if d.formats[bt] == nil {
		return nil, unix.EINVAL
	}
	return d.formats[bt], nil
}

func (f *fakeHandle) EnumFrameSizes(fourcc uint32) ([]FrameSize, error) {
	d, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	s := d.sizes[fourccString(fourcc)]
	if s == nil {
		return nil, unix.ENOTTY
	}
	return append([]FrameSize(nil), s...), nil
}

func (f *fakeHandle) EnumFrameIntervals(fourcc, w, h uint32) ([]float64, error) {
	d, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	if d.fps == nil {
		return nil, unix.ENOTTY
	}
	return d.fps, nil
}

func (f *fakeHandle) EnumInputs() ([]InputInfo, error) {
	d, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	if d.inputs == nil {
		return nil, unix.ENOTTY
	}
	out := append([]InputInfo(nil), d.inputs...)
	// Input status follows the signal, as vivid's vidioc_enum_input does.
	for i := range out {
		if i == d.input && !d.noDV {
			switch d.timingsErr {
			case unix.ENOLINK:
				out[i].Status = inStNoSignal
			case unix.ENOLCK:
				out[i].Status = inStNoHLock
			}
		}
	}
	return out, nil
}

func (f *fakeHandle) Input() (int, error) {
	d, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer f.unlock()
	if d.inputs == nil {
		return 0, unix.ENOTTY
	}
	return d.input, nil
}

func (f *fakeHandle) QueryDVTimings() (DVTimings, error) {
	d, err := f.lock()
	if err != nil {
		return DVTimings{}, err
	}
	defer f.unlock()
	if d.noDV {
		return DVTimings{}, unix.ENOTTY
	}
	if d.timingsErr != nil {
		return DVTimings{}, d.timingsErr
	}
	return d.timings, nil
}

func (f *fakeHandle) EDIDBlocks(pad uint32) (int, error) {
	d, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer f.unlock()
	if d.edidBlocks == 0 {
		return 0, unix.ENOTTY
	}
	return len(d.edid) / edidBlockSize, nil
}

func (f *fakeHandle) GetEDID(pad uint32, blocks int) ([]byte, error) {
	d, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	if d.edidBlocks == 0 {
		return nil, unix.ENOTTY
	}
	if len(d.edid) == 0 {
		return nil, unix.ENODATA
	}
	return append([]byte(nil), d.edid[:min(len(d.edid), blocks*edidBlockSize)]...), nil
}

func (f *fakeHandle) SetEDID(pad uint32, edid []byte) error {
	d, err := f.lock()
	if err != nil {
		return err
	}
	defer f.unlock()
	switch {
	case d.edidBlocks == 0:
		return unix.ENOTTY
	case pad != 0:
		return unix.EINVAL
	case len(edid)/edidBlockSize > d.edidBlocks:
		return unix.E2BIG
	}
	d.edid = append([]byte(nil), edid...)
	if len(edid) == 0 {
		d.timingsErr = unix.ENOLINK // no EDID: hot-plug low, the source stops
	}
	return nil
}

func (f *fakeHandle) SubscribeSourceChange(input uint32) error {
	d, err := f.lock()
	if err != nil {
		return err
	}
	defer f.unlock()
	if d.noDV {
		return unix.EINVAL
	}
	d.subscribed = true
	return nil
}

func (f *fakeHandle) WaitEvent(ctx context.Context, timeout time.Duration) (Event, bool, error) {
	d, err := f.lock()
	if err != nil {
		return Event{}, false, err
	}
	ch := d.events
	f.unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return Event{}, false, nil
	case ev, ok := <-ch:
		if !ok {
			return Event{}, false, unix.ENODEV
		}
		return ev, true, nil
	case <-t.C:
		return Event{}, false, nil
	}
}

func (f *fakeHandle) Close() error {
	f.hw.mu.Lock()
	defer f.hw.mu.Unlock()
	f.closed = true
	return nil
}

// Timings from the CEA-861 tables (what vivid/tc358743 report).
var (
	timing1080p60 = DVTimings{Width: 1920, Height: 1080, PixelClock: 148500000, HFrontPorch: 88, HSync: 44, HBackPorch: 148, VFrontPorch: 4, VSync: 5, VBackPorch: 36}
	timing1080p30 = DVTimings{Width: 1920, Height: 1080, PixelClock: 74250000, HFrontPorch: 88, HSync: 44, HBackPorch: 148, VFrontPorch: 4, VSync: 5, VBackPorch: 36}
	timing720p60  = DVTimings{Width: 1280, Height: 720, PixelClock: 74250000, HFrontPorch: 110, HSync: 40, HBackPorch: 220, VFrontPorch: 5, VSync: 5, VBackPorch: 20}
	// 1080p59.94: 148.5/1.001 MHz.
	timing1080p5994 = DVTimings{Width: 1920, Height: 1080, PixelClock: 148351648, HFrontPorch: 88, HSync: 44, HBackPorch: 148, VFrontPorch: 4, VSync: 5, VBackPorch: 36}
)

// vividHDMI is vivid with one HDMI input (input_types=0x3), as in the
// virtual capture box: QUERYCAP from vivid-core.c, input type camera
// with DV timings capability (vivid-vid-cap.c vidioc_enum_input).
func vividHDMI() *fakeDev {
	return &fakeDev{
		cap: Capability{Driver: "vivid", Card: "vivid", BusInfo: "platform:vivid-000",
			Capabilities: capVideoCapture | capStreaming | capDeviceCaps, DeviceCaps: capVideoCapture | capStreaming},
		formats:    map[uint32][]FmtDesc{bufTypeVideoCapture: {{FourCC: "YUYV"}, {FourCC: "UYVY"}, {FourCC: "NV12"}}},
		inputs:     []InputInfo{{Index: 0, Name: "HDMI 0", Type: inputTypeCamera, Capabilities: inCapDVTimings}},
		timings:    timing720p60,
		edid:       DefaultEDID(),
		edidBlocks: 2,
	}
}

// uvcDongle is a UVC capture node: no DV timings, status 0, no EDID.
func uvcDongle() *fakeDev {
	return &fakeDev{
		cap: Capability{Driver: "uvcvideo", Card: "USB Video: USB Video", BusInfo: "usb-0000:01:00.0-1.2",
			Capabilities: capVideoCapture | capMetaCapture | capStreaming | capDeviceCaps, DeviceCaps: capVideoCapture | capStreaming},
		formats: map[uint32][]FmtDesc{bufTypeVideoCapture: {{FourCC: "MJPG", Flags: fmtFlagCompressed}, {FourCC: "YUYV"}}},
		sizes:   map[string][]FrameSize{"MJPG": {{Width: 1920, Height: 1080}, {Width: 1280, Height: 720}}, "YUYV": {{Width: 1280, Height: 720}}},
		fps:     []float64{60, 30},
		inputs:  []InputInfo{{Index: 0, Name: "Camera 1", Type: inputTypeCamera}},
		noDV:    true,
	}
}
