package board

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func TestErrnoMapping(t *testing.T) {
	for _, c := range []struct {
		errno unix.Errno
		want  error
		state SignalState
	}{
		{unix.ENOENT, ErrNoDevice, SignalNone},
		{unix.ENOLINK, ErrNoCable, SignalNone},
		{unix.ENOLCK, ErrNoSync, SignalNoLock},
		{unix.ERANGE, ErrOutOfRange, SignalOutOfRange},
		{unix.EBUSY, ErrBusy, SignalUnknown},
		{unix.ENODEV, ErrGone, SignalNone},
		{unix.EIO, ErrIO, SignalUnknown},
		{unix.ENOTTY, ErrNotSupported, SignalUnknown},
	} {
		err := deviceError("VIDIOC_QUERY_DV_TIMINGS", "/dev/video0", c.errno)
		if !errors.Is(err, c.want) || !errors.Is(err, c.errno) {
			t.Errorf("%v: %v does not match %v and the errno", c.errno, err, c.want)
		}
		wrapped := fmt.Errorf("capture: %w", err)
		if got := SignalFromError(wrapped); got != c.state {
			t.Errorf("%v: state %s, want %s", c.errno, got, c.state)
		}
	}
	if SignalFromError(nil) != SignalLocked {
		t.Error("nil is locked")
	}
	err := deviceError("open", "/dev/video9", unix.ENOLINK)
	if got := err.Error(); got != "/dev/video9 open: no signal: no cable or source off (ENOLINK)" {
		t.Errorf("message %q", got)
	}
	if deviceError("x", "y", nil) != nil {
		t.Error("nil stays nil")
	}
	if e, ok := errnoByName("ENOLCK"); !ok || e != unix.ENOLCK {
		t.Error("errnoByName")
	}
}
