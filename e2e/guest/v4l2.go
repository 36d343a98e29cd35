package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few V4L2 ioctls the scenarios assert on, from include/uapi/linux/videodev2.h (6.1).
// Structures are decoded from byte buffers, little-endian (x86_64 and arm64).
const (
	vidiocQueryCap       = 0x80685600 // _IOR('V', 0, struct v4l2_capability), 104 bytes
	vidiocEnumInput      = 0xc050561a // _IOWR('V', 26, struct v4l2_input), 80 bytes
	vidiocGInput         = 0x80045626 // _IOR('V', 38, int)
	vidiocQueryDVTimings = 0x80845663 // _IOR('V', 99, struct v4l2_dv_timings), 132 bytes (packed)

	capVideoCapture     = 0x00000001
	capVideoM2MMplane   = 0x00004000
	capVideoM2M         = 0x00008000
	capStreaming        = 0x04000000
	capDeviceCaps       = 0x80000000
	inCapDVTimings      = 0x00000002
	inStNoSignal        = 0x00000002
	inStNoHLock         = 0x00000100
	dvBTInterlacedField = 8 // offset of bt.interlaced in v4l2_dv_timings
)

type capability struct {
	Driver, Card, BusInfo string
	Caps, DeviceCaps      uint32
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func ioctl(fd int, req uintptr, buf []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&buf[0])))
	if e != 0 {
		return e
	}
	return nil
}

func openDev(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

func queryCap(fd int) (capability, error) {
	buf := make([]byte, 104)
	if err := ioctl(fd, vidiocQueryCap, buf); err != nil {
		return capability{}, fmt.Errorf("VIDIOC_QUERYCAP: %w", err)
	}
	c := capability{Driver: cstr(buf[0:16]), Card: cstr(buf[16:48]), BusInfo: cstr(buf[48:80]),
		Caps: binary.LittleEndian.Uint32(buf[84:88]), DeviceCaps: binary.LittleEndian.Uint32(buf[88:92])}
	if c.Caps&capDeviceCaps == 0 {
		c.DeviceCaps = c.Caps
	}
	return c, nil
}

type input struct {
	Name         string
	Status, Caps uint32
}

// currentInput is VIDIOC_G_INPUT then VIDIOC_ENUMINPUT of it: the status bits say whether
// the receiver sees a signal (V4L2_IN_ST_NO_SIGNAL, V4L2_IN_ST_NO_H_LOCK).
func currentInput(fd int) (input, error) {
	idx := make([]byte, 4)
	if err := ioctl(fd, vidiocGInput, idx); err != nil {
		return input{}, fmt.Errorf("VIDIOC_G_INPUT: %w", err)
	}
	buf := make([]byte, 80)
	copy(buf, idx)
	if err := ioctl(fd, vidiocEnumInput, buf); err != nil {
		return input{}, fmt.Errorf("VIDIOC_ENUMINPUT: %w", err)
	}
	return input{Name: cstr(buf[4:36]), Status: binary.LittleEndian.Uint32(buf[56:60]),
		Caps: binary.LittleEndian.Uint32(buf[60:64])}, nil
}

type dvTimings struct {
	Width, Height int
	Interlaced    bool
	FPS           float64
}

func (d dvTimings) String() string {
	scan := "p"
	if d.Interlaced {
		scan = "i"
	}
	return fmt.Sprintf("%dx%d%s%.2f", d.Width, d.Height, scan, d.FPS)
}

// queryDVTimings is VIDIOC_QUERY_DV_TIMINGS; its errno is the signal state
// (ENOLINK no signal, ENOLCK no lock, ERANGE out of range).
func queryDVTimings(fd int) (dvTimings, error) {
	buf := make([]byte, 132)
	if err := ioctl(fd, vidiocQueryDVTimings, buf); err != nil {
		return dvTimings{}, fmt.Errorf("VIDIOC_QUERY_DV_TIMINGS: %w", err)
	}
	bt := buf[4:]
	u32 := func(off int) uint64 { return uint64(binary.LittleEndian.Uint32(bt[off:])) }
	w, h := u32(0), u32(4)
	pix := binary.LittleEndian.Uint64(bt[16:24]) // Hz
	htot := w + u32(24) + u32(28) + u32(32)
	vtot := h + u32(36) + u32(40) + u32(44)
	il := u32(dvBTInterlacedField) != 0
	if il {
		vtot += u32(48) + u32(52) + u32(56)
	}
	d := dvTimings{Width: int(w), Height: int(h), Interlaced: il}
	if htot > 0 && vtot > 0 {
		d.FPS = float64(pix) / float64(htot*vtot)
	}
	return d, nil
}

func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	if err == nil {
		return "OK"
	}
	return err.Error()
}
