package board

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// V4L2 ABI, from include/uapi/linux/videodev2.h. Struct sizes were checked
// against the kernel headers for amd64, arm64 and armhf; structs are built
// as byte buffers so Go's layout rules (uint64 alignment on 32-bit ARM)
// cannot drift from the kernel's.
const (
	capVideoCapture       = 0x00000001
	capVideoOutput        = 0x00000002
	capVideoCaptureMPlane = 0x00001000
	capVideoOutputMPlane  = 0x00002000
	capVideoM2MMPlane     = 0x00004000
	capVideoM2M           = 0x00008000
	capMetaCapture        = 0x00800000
	capStreaming          = 0x04000000
	capIOMC               = 0x20000000
	capDeviceCaps         = 0x80000000

	bufTypeVideoCapture       = 1
	bufTypeVideoOutput        = 2
	bufTypeVideoCaptureMPlane = 9
	bufTypeVideoOutputMPlane  = 10

	fmtFlagCompressed = 0x0001

	frmsizeTypeDiscrete = 1
	frmivalTypeDiscrete = 1

	inputTypeCamera = 2

	inStNoPower  = 0x00000001
	inStNoSignal = 0x00000002
	inStNoHLock  = 0x00000100
	inStNoVLock  = 0x00000400
	inStNoSync   = 0x00010000

	inCapDVTimings = 0x00000002

	eventSourceChange = 5
	srcChResolution   = 1

	dvBT656_1120 = 0 // v4l2_dv_timings.type for BT.656/1120 timings
)

// Struct sizes (bytes) as the kernel sees them on this architecture.
var (
	ptrSize            = int(unsafe.Sizeof(uintptr(0)))
	sizeCapability     = 104
	sizeFmtDesc        = 64
	sizeFrmSizeEnum    = 44
	sizeFrmIvalEnum    = 52
	sizeInput          = 80
	sizeDVTimings      = 132
	sizeEventSub       = 32
	sizeEDID           = 32 + ptrSize
	sizeEvent          = align8(8 + 64 + 8 + 2*ptrSize + 4 + 32) // timespec is two longs
	sizeInt            = 4
	vidiocQueryCap     = ior('V', 0, sizeCapability)
	vidiocEnumFmt      = iowr('V', 2, sizeFmtDesc)
	vidiocEnumInput    = iowr('V', 26, sizeInput)
	vidiocGInput       = ior('V', 38, sizeInt)
	vidiocGEDID        = iowr('V', 40, sizeEDID)
	vidiocSEDID        = iowr('V', 41, sizeEDID)
	vidiocEnumFrmSizes = iowr('V', 74, sizeFrmSizeEnum)
	vidiocEnumFrmIvals = iowr('V', 75, sizeFrmIvalEnum)
	vidiocDQEvent      = ior('V', 89, sizeEvent)
	vidiocSubscribe    = iow('V', 90, sizeEventSub)
	vidiocQueryDVTimgs = ior('V', 99, sizeDVTimings)
)

func align8(n int) int { return (n + 7) &^ 7 }

// _IOC encoding of asm-generic/ioctl.h (x86, ARM, arm64).
func ioc(dir, typ, nr, size int) uint { return uint(dir<<30 | size<<16 | typ<<8 | nr) }
func ior(t byte, nr, size int) uint   { return ioc(2, int(t), nr, size) }
func iow(t byte, nr, size int) uint   { return ioc(1, int(t), nr, size) }
func iowr(t byte, nr, size int) uint  { return ioc(3, int(t), nr, size) }

var le = binary.LittleEndian // every architecture capbox targets is little-endian

// Capability is VIDIOC_QUERYCAP's answer.
type Capability struct {
	Driver       string `json:"driver"`
	Card         string `json:"card"`
	BusInfo      string `json:"bus_info"`
	Version      uint32 `json:"version"`
	Capabilities uint32 `json:"capabilities"`
	DeviceCaps   uint32 `json:"device_caps"`
}

// Caps returns the capabilities of this node: device_caps when the driver
// fills it (every driver since 3.4), not the whole device's.
func (c Capability) Caps() uint32 {
	if c.Capabilities&capDeviceCaps != 0 {
		return c.DeviceCaps
	}
	return c.Capabilities
}

func decodeCapability(b []byte) Capability {
	return Capability{
		Driver:       cstr(b[0:16]),
		Card:         cstr(b[16:48]),
		BusInfo:      cstr(b[48:80]),
		Version:      le.Uint32(b[80:]),
		Capabilities: le.Uint32(b[84:]),
		DeviceCaps:   le.Uint32(b[88:]),
	}
}

func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// FmtDesc is one VIDIOC_ENUM_FMT answer.
type FmtDesc struct {
	FourCC      string `json:"fourcc"`
	Flags       uint32 `json:"flags,omitempty"`
	Description string `json:"description,omitempty"`
}

// fourccString prints a pixel format like v4l2-ctl: "YUYV", "Y16-BE" for
// big-endian variants (V4L2_PIX_FMT_FLAG_BE), hex when not printable.
func fourccString(v uint32) string {
	if v&(1<<31) != 0 {
		return fourccString(v&^(1<<31)) + "-BE"
	}
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08x", v)
		}
	}
	return strings.TrimRight(string(b), " ")
}

func fourccValue(s string) uint32 {
	b := []byte((s + "    ")[:4])
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// InputInfo is one VIDIOC_ENUMINPUT answer.
type InputInfo struct {
	Index        uint32 `json:"index"`
	Name         string `json:"name"`
	Type         uint32 `json:"type"`
	Status       uint32 `json:"status"`
	Capabilities uint32 `json:"capabilities"`
}

func decodeInput(b []byte) InputInfo {
	return InputInfo{
		Index:        le.Uint32(b[0:]),
		Name:         cstr(b[4:36]),
		Type:         le.Uint32(b[36:]),
		Status:       le.Uint32(b[56:]),
		Capabilities: le.Uint32(b[60:]),
	}
}

// DVTimings is the BT.656/1120 part of struct v4l2_dv_timings that
// decides the signal format.
type DVTimings struct {
	Width       uint32 `json:"width"`
	Height      uint32 `json:"height"`
	Interlaced  bool   `json:"interlaced,omitempty"`
	PixelClock  uint64 `json:"pixelclock"` // Hz
	HFrontPorch uint32 `json:"hfrontporch"`
	HSync       uint32 `json:"hsync"`
	HBackPorch  uint32 `json:"hbackporch"`
	VFrontPorch uint32 `json:"vfrontporch"`
	VSync       uint32 `json:"vsync"`
	VBackPorch  uint32 `json:"vbackporch"`
	ILVFront    uint32 `json:"il_vfrontporch,omitempty"`
	ILVSync     uint32 `json:"il_vsync,omitempty"`
	ILVBack     uint32 `json:"il_vbackporch,omitempty"`
}

// v4l2_dv_timings is packed: type at 0, v4l2_bt_timings from 4.
func decodeDVTimings(b []byte) DVTimings {
	bt := b[4:]
	return DVTimings{
		Width:       le.Uint32(bt[0:]),
		Height:      le.Uint32(bt[4:]),
		Interlaced:  le.Uint32(bt[8:]) != 0,
		PixelClock:  le.Uint64(bt[16:]),
		HFrontPorch: le.Uint32(bt[24:]),
		HSync:       le.Uint32(bt[28:]),
		HBackPorch:  le.Uint32(bt[32:]),
		VFrontPorch: le.Uint32(bt[36:]),
		VSync:       le.Uint32(bt[40:]),
		VBackPorch:  le.Uint32(bt[44:]),
		ILVFront:    le.Uint32(bt[48:]),
		ILVSync:     le.Uint32(bt[52:]),
		ILVBack:     le.Uint32(bt[56:]),
	}
}

// FPS is the frame rate (frames, not fields) the timings give, as the
// kernel's V4L2_DV_BT_FRAME_WIDTH/HEIGHT define the totals.
func (t DVTimings) FPS() float64 {
	htot := float64(t.Width + t.HFrontPorch + t.HSync + t.HBackPorch)
	vtot := float64(t.Height + t.VFrontPorch + t.VSync + t.VBackPorch)
	if t.Interlaced {
		vtot += float64(t.ILVFront + t.ILVSync + t.ILVBack)
	}
	if htot == 0 || vtot == 0 {
		return 0
	}
	return float64(t.PixelClock) / (htot * vtot)
}

// Signal returns the locked signal the timings describe.
func (t DVTimings) Signal() Signal {
	fps := t.FPS()
	return Signal{
		State:      SignalLocked,
		Width:      int(t.Width),
		Height:     int(t.Height),
		FPS:        int(fps + 0.5),
		FPSExact:   float64(int(fps*1000+0.5)) / 1000,
		Interlaced: t.Interlaced,
	}
}

// Event is a dequeued V4L2 event.
type Event struct {
	Type    uint32
	Changes uint32 // for V4L2_EVENT_SOURCE_CHANGE
}

// videoDevice is the V4L2 ioctl layer. The real implementation is
// v4l2Node (ioctls through x/sys/unix); tests use a fake that returns real
// kernel errnos. Errors are raw errnos; callers map them with deviceError.
type videoDevice interface {
	QueryCap() (Capability, error)
	EnumFormats(bufType uint32) ([]FmtDesc, error)
	EnumFrameSizes(fourcc uint32) ([]FrameSize, error)
	EnumFrameIntervals(fourcc, width, height uint32) ([]float64, error)
	EnumInputs() ([]InputInfo, error)
	Input() (int, error)
	QueryDVTimings() (DVTimings, error)
	EDIDBlocks(pad uint32) (int, error)
	GetEDID(pad uint32, blocks int) ([]byte, error)
	SetEDID(pad uint32, edid []byte) error
	SubscribeSourceChange(input uint32) error
	// WaitEvent waits up to timeout for an event; ok is false on timeout.
	WaitEvent(ctx context.Context, timeout time.Duration) (ev Event, ok bool, err error)
	Close() error
}

// opener opens a device node.
type opener func(path string) (videoDevice, error)
