package board

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sentinel errors for capture hardware states. Every errno a capture device
// returns is mapped here and nowhere else, so callers test hardware states
// with errors.Is(err, board.ErrNoCable) instead of comparing errnos.
var (
	// ErrNoDevice: the node does not exist (ENOENT, ENXIO).
	ErrNoDevice = errors.New("no such capture device")
	// ErrNoCable: no cable or no +5V from the source (ENOLINK from
	// VIDIOC_QUERY_DV_TIMINGS, tc358743/adv76xx/vivid).
	ErrNoCable = errors.New("no signal: no cable or source off")
	// ErrNoSync: a signal is present but the receiver cannot lock (ENOLCK).
	ErrNoSync = errors.New("no lock: signal present but unstable")
	// ErrOutOfRange: the receiver locked but cannot capture the format (ERANGE).
	ErrOutOfRange = errors.New("signal out of range for the receiver")
	// ErrBusy: another process streams from the node, or buffers are
	// allocated (EBUSY; S_DV_TIMINGS while streaming).
	ErrBusy = errors.New("device busy")
	// ErrGone: the device vanished while open (ENODEV: unplugged, driver
	// unbound, vivid "disconnect").
	ErrGone = errors.New("device gone")
	// ErrIO: the device failed an operation (EIO: USB errors, vivid
	// inject_fatal_streaming_error).
	ErrIO = errors.New("device I/O error")
	// ErrNotSupported: the node does not implement the ioctl (ENOTTY, or
	// EINVAL for some old drivers).
	ErrNotSupported = errors.New("not supported by the device")
	// ErrPermission: the node exists but may not be opened (EACCES, EPERM).
	ErrPermission = errors.New("permission denied on device")
	// ErrTimeout: the device did not answer within the per-device bound.
	ErrTimeout = errors.New("device did not answer in time")
)

// errnoStates is the one table from kernel errno to hardware state.
var errnoStates = map[unix.Errno]error{
	unix.ENOENT:  ErrNoDevice,
	unix.ENXIO:   ErrNoDevice,
	unix.ENOLINK: ErrNoCable,
	unix.ENOLCK:  ErrNoSync,
	unix.ERANGE:  ErrOutOfRange,
	unix.EBUSY:   ErrBusy,
	unix.ENODEV:  ErrGone,
	unix.EIO:     ErrIO,
	unix.ENOTTY:  ErrNotSupported,
	unix.EACCES:  ErrPermission,
	unix.EPERM:   ErrPermission,
}

// DeviceError is a failed operation on a device node. It matches both the
// hardware-state sentinel and the raw errno with errors.Is.
type DeviceError struct {
	Op     string // ioctl or syscall name, e.g. "VIDIOC_QUERY_DV_TIMINGS"
	Device string
	State  error // one of the Err* sentinels, or nil when unmapped
	Err    error // the underlying error (usually a unix.Errno)
}

func (e *DeviceError) Error() string {
	if e.State != nil {
		return fmt.Sprintf("%s %s: %v (%v)", e.Device, e.Op, e.State, errnoName(e.Err))
	}
	return fmt.Sprintf("%s %s: %v", e.Device, e.Op, e.Err)
}

// Unwrap lets errors.Is see both the state and the errno.
func (e *DeviceError) Unwrap() []error {
	if e.State == nil {
		return []error{e.Err}
	}
	return []error{e.State, e.Err}
}

// deviceError wraps err (nil stays nil) with the operation and the mapped
// hardware state.
func deviceError(op, device string, err error) error {
	if err == nil {
		return nil
	}
	var de *DeviceError
	if errors.As(err, &de) {
		return err
	}
	return &DeviceError{Op: op, Device: device, State: stateOf(err), Err: err}
}

// stateOf maps an error to its sentinel, or nil.
func stateOf(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if errno == unix.EINVAL {
			return nil
		}
		return errnoStates[errno]
	}
	for _, s := range []error{ErrNoDevice, ErrNoCable, ErrNoSync, ErrOutOfRange, ErrBusy, ErrGone, ErrIO, ErrNotSupported, ErrPermission, ErrTimeout} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// SignalFromError turns the result of a timings query into a signal state:
// nil is locked, ENOLINK no signal, ENOLCK no lock, ERANGE out of range,
// a vanished device no signal, anything else unknown.
func SignalFromError(err error) SignalState {
	switch {
	case err == nil:
		return SignalLocked
	case errors.Is(err, ErrNoCable), errors.Is(err, ErrGone), errors.Is(err, ErrNoDevice):
		return SignalNone
	case errors.Is(err, ErrNoSync):
		return SignalNoLock
	case errors.Is(err, ErrOutOfRange):
		return SignalOutOfRange
	}
	return SignalUnknown
}

// errnoName returns the symbolic name of an errno ("ENOLINK"), or the
// error text for other errors.
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(errno))
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// errnoByName is the reverse of errnoName for recorded probe answers.
func errnoByName(name string) (unix.Errno, bool) {
	for e := unix.Errno(1); e < 200; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	return 0, false
}
