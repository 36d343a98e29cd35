package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Controls are set with VIDIOC_S_CTRL from the runner itself, not through v4l2-ctl: with the
// agent's encoder filling the one emulated CPU, starting v4l2-ctl takes a second or two,
// which would count against the agent's 1.5 s to report a change. videodev2.h (6.1).
const (
	vidiocQueryCtrl   = 0xc0445624 // _IOWR('V', 36, struct v4l2_queryctrl), 68 bytes
	vidiocSCtrl       = 0xc008561c // _IOWR('V', 28, struct v4l2_control), 8 bytes
	ctrlFlagNextCtrl  = 0x80000000
	ctrlFlagDisabled  = 0x0001
	ctrlTypeCtrlClass = 6
)

// ctrlVar is v4l2-ctl's short name for a control ("DV Timings Signal Mode" ->
// dv_timings_signal_mode): lower case, runs of other characters as one underscore.
func ctrlVar(name string) string {
	var b strings.Builder
	under := false
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			under = b.Len() > 0
			continue
		}
		if under {
			b.WriteByte('_')
			under = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ctrlIDs enumerates a device's controls by their short names.
func ctrlIDs(fd int) (map[string]uint32, error) {
	ids := map[string]uint32{}
	id := uint32(0)
	for {
		q := make([]byte, 68)
		binary.LittleEndian.PutUint32(q[0:], id|ctrlFlagNextCtrl)
		if err := ioctl(fd, vidiocQueryCtrl, q); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return ids, nil // past the last control
			}
			return ids, fmt.Errorf("VIDIOC_QUERYCTRL: %w", err)
		}
		id = binary.LittleEndian.Uint32(q[0:])
		typ, flags := binary.LittleEndian.Uint32(q[4:]), binary.LittleEndian.Uint32(q[56:])
		if typ != ctrlTypeCtrlClass && flags&ctrlFlagDisabled == 0 {
			ids[ctrlVar(cstr(q[8:40]))] = id
		}
	}
}

// setCtrl sets controls by their v4l2-ctl names (name=value, ...), in order.
func setCtrl(_ context.Context, dev string, ctrls ...string) error {
	fd, err := openDev(dev)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ids, err := ctrlIDs(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	for _, c := range ctrls {
		name, val, ok := strings.Cut(c, "=")
		v, err := strconv.ParseInt(val, 0, 32)
		if !ok || err != nil {
			return fmt.Errorf("control %q: want name=integer", c)
		}
		id, ok := ids[name]
		if !ok {
			return fmt.Errorf("%s has no control %q", dev, name)
		}
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b[0:], id)
		binary.LittleEndian.PutUint32(b[4:], uint32(int32(v)))
		if err := ioctl(fd, vidiocSCtrl, b); err != nil {
			return fmt.Errorf("%s: VIDIOC_S_CTRL %s=%d: %w", dev, name, v, err)
		}
	}
	return nil
}
