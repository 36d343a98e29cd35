package board

import (
	"context"
	"errors"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// v4l2Node is a real V4L2 device node.
type v4l2Node struct {
	fd   int
	path string
}

// openNode opens a V4L2 node non-blocking, so that no ioctl waits for a
// frame, and close-on-exec, so GStreamer children never inherit it.
func openNode(path string) (videoDevice, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &v4l2Node{fd: fd, path: path}, nil
	}
}

func (n *v4l2Node) ioctl(req uint, buf []byte) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(n.fd), uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
		runtime.KeepAlive(buf)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func (n *v4l2Node) Close() error { return unix.Close(n.fd) }

func (n *v4l2Node) QueryCap() (Capability, error) {
	b := make([]byte, sizeCapability)
	if err := n.ioctl(vidiocQueryCap, b); err != nil {
		return Capability{}, err
	}
	return decodeCapability(b), nil
}

// maxEnum bounds every enumeration: a buggy driver that never returns
// EINVAL must not keep detection busy.
const maxEnum = 256

func (n *v4l2Node) EnumFormats(bufType uint32) ([]FmtDesc, error) {
	var out []FmtDesc
	for i := uint32(0); i < maxEnum; i++ {
		b := make([]byte, sizeFmtDesc)
		le.PutUint32(b[0:], i)
		le.PutUint32(b[4:], bufType)
		if err := n.ioctl(vidiocEnumFmt, b); err != nil {
			if err == unix.EINVAL && i > 0 {
				break
			}
			return out, err
		}
		out = append(out, FmtDesc{FourCC: fourccString(le.Uint32(b[44:])), Flags: le.Uint32(b[8:]), Description: cstr(b[12:44])})
	}
	return out, nil
}

func (n *v4l2Node) EnumFrameSizes(fourcc uint32) ([]FrameSize, error) {
	var out []FrameSize
	for i := uint32(0); i < maxEnum; i++ {
		b := make([]byte, sizeFrmSizeEnum)
		le.PutUint32(b[0:], i)
		le.PutUint32(b[4:], fourcc)
		if err := n.ioctl(vidiocEnumFrmSizes, b); err != nil {
			if err == unix.EINVAL && i > 0 {
				break
			}
			return out, err
		}
		if le.Uint32(b[8:]) != frmsizeTypeDiscrete {
			// Stepwise or continuous (HDMI receivers, vivid's HDMI input):
			// the signal decides the size, a range says nothing useful.
			break
		}
		out = append(out, FrameSize{Width: int(le.Uint32(b[12:])), Height: int(le.Uint32(b[16:]))})
	}
	return out, nil
}

func (n *v4l2Node) EnumFrameIntervals(fourcc, width, height uint32) ([]float64, error) {
	var out []float64
	for i := uint32(0); i < maxEnum; i++ {
		b := make([]byte, sizeFrmIvalEnum)
		le.PutUint32(b[0:], i)
		le.PutUint32(b[4:], fourcc)
		le.PutUint32(b[8:], width)
		le.PutUint32(b[12:], height)
		if err := n.ioctl(vidiocEnumFrmIvals, b); err != nil {
			if err == unix.EINVAL && i > 0 {
				break
			}
			return out, err
		}
		// discrete interval num/den at 20; stepwise min interval at the same place.
		num, den := le.Uint32(b[20:]), le.Uint32(b[24:])
		if num != 0 {
			out = append(out, roundFPS(float64(den)/float64(num)))
		}
		if le.Uint32(b[16:]) != frmivalTypeDiscrete {
			break
		}
	}
	return out, nil
}

func roundFPS(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

func (n *v4l2Node) EnumInputs() ([]InputInfo, error) {
	var out []InputInfo
	for i := uint32(0); i < 64; i++ {
		b := make([]byte, sizeInput)
		le.PutUint32(b[0:], i)
		if err := n.ioctl(vidiocEnumInput, b); err != nil {
			if err == unix.EINVAL && i > 0 {
				break
			}
			return out, err
		}
		out = append(out, decodeInput(b))
	}
	return out, nil
}

func (n *v4l2Node) Input() (int, error) {
	b := make([]byte, sizeInt)
	if err := n.ioctl(vidiocGInput, b); err != nil {
		return 0, err
	}
	return int(int32(le.Uint32(b))), nil
}

func (n *v4l2Node) QueryDVTimings() (DVTimings, error) {
	b := make([]byte, sizeDVTimings)
	if err := n.ioctl(vidiocQueryDVTimgs, b); err != nil {
		return DVTimings{}, err
	}
	if le.Uint32(b) != dvBT656_1120 {
		return DVTimings{}, unix.EINVAL
	}
	return decodeDVTimings(b), nil
}

// edidCall runs G_EDID/S_EDID. The struct carries a pointer to data; the
// Go GC does not move heap memory and KeepAlive holds it through the call.
func (n *v4l2Node) edidCall(req uint, pad uint32, blocks int, data []byte) (int, error) {
	b := make([]byte, sizeEDID)
	le.PutUint32(b[0:], pad)
	le.PutUint32(b[8:], uint32(blocks))
	if len(data) > 0 {
		p := uintptr(unsafe.Pointer(&data[0]))
		if ptrSize == 8 {
			le.PutUint64(b[32:], uint64(p))
		} else {
			le.PutUint32(b[32:], uint32(p))
		}
	}
	err := n.ioctl(req, b)
	runtime.KeepAlive(data)
	return int(le.Uint32(b[8:])), err
}

func (n *v4l2Node) EDIDBlocks(pad uint32) (int, error) {
	return n.edidCall(vidiocGEDID, pad, 0, nil)
}

func (n *v4l2Node) GetEDID(pad uint32, blocks int) ([]byte, error) {
	if blocks <= 0 {
		return nil, nil
	}
	data := make([]byte, blocks*edidBlockSize)
	got, err := n.edidCall(vidiocGEDID, pad, blocks, data)
	if err != nil {
		return nil, err
	}
	if got < blocks {
		data = data[:got*edidBlockSize]
	}
	return data, nil
}

func (n *v4l2Node) SetEDID(pad uint32, edid []byte) error {
	if len(edid)%edidBlockSize != 0 {
		return unix.EINVAL
	}
	if len(edid) == 0 {
		// Clearing: blocks = 0 (the receiver then pulls hot-plug low).
		_, err := n.edidCall(vidiocSEDID, pad, 0, nil)
		return err
	}
	_, err := n.edidCall(vidiocSEDID, pad, len(edid)/edidBlockSize, edid)
	return err
}

func (n *v4l2Node) SubscribeSourceChange(input uint32) error {
	b := make([]byte, sizeEventSub)
	le.PutUint32(b[0:], eventSourceChange)
	le.PutUint32(b[4:], input)
	return n.ioctl(vidiocSubscribe, b)
}

// WaitEvent polls for POLLPRI (pending V4L2 events) in short slices so a
// cancelled context ends the wait quickly, then dequeues one event.
func (n *v4l2Node) WaitEvent(ctx context.Context, timeout time.Duration) (Event, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		if ctx.Err() != nil {
			return Event{}, false, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return Event{}, false, nil
		}
		slice := min(left, 100*time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(n.fd), Events: unix.POLLPRI}}
		k, err := unix.Poll(fds, int(slice/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Event{}, false, err
		}
		if k == 0 {
			continue
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLPRI == 0 {
			// A disconnected node reports POLLERR; the next ioctl tells why.
			if _, err := n.QueryCap(); err != nil {
				return Event{}, false, err
			}
			return Event{}, false, errors.New("poll error on device")
		}
		b := make([]byte, sizeEvent)
		if err := n.ioctl(vidiocDQEvent, b); err != nil {
			if err == unix.ENOENT || err == unix.EAGAIN {
				continue
			}
			return Event{}, false, err
		}
		return Event{Type: le.Uint32(b[0:]), Changes: le.Uint32(b[8:])}, true, nil
	}
}
