package board

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// HotplugEvent is a device appearing or going away.
type HotplugEvent struct {
	Action    string // add, remove, change, bind, unbind
	Subsystem string // video4linux, media, sound
	DevPath   string // /devices/... (sysfs path without /sys)
	Device    string // /dev/video0, /dev/media0, /dev/snd/pcmC1D0c; "" for a sound card
	At        time.Time
}

// hotplugSubsystems are the subsystems capture hardware shows up in.
var hotplugSubsystems = map[string]bool{"video4linux": true, "media": true, "sound": true}

// Hotplug reads kernel uevents from NETLINK_KOBJECT_UEVENT (group 1, the
// kernel's own broadcast, so it works without udev) and emits debounced
// events: a burst (a dongle brings a video node, a metadata node, a media
// node and a sound card within milliseconds) is delivered together once
// the bus has been quiet for the debounce time, last action per device.
type Hotplug struct {
	log      *slog.Logger
	debounce time.Duration
	source   func() (ueventSource, error)
	events   chan HotplugEvent
}

// ueventSource yields raw uevent datagrams; Close unblocks Read.
type ueventSource interface {
	Read(p []byte) (int, error)
	Close() error
}

// HotplugOption configures Hotplug.
type HotplugOption func(*Hotplug)

// WithDebounce sets the quiet time before a burst is delivered (default 500 ms).
func WithDebounce(d time.Duration) HotplugOption {
	return func(h *Hotplug) {
		if d > 0 {
			h.debounce = d
		}
	}
}

func withUeventSource(f func() (ueventSource, error)) HotplugOption {
	return func(h *Hotplug) { h.source = f }
}

// NewHotplug makes a hotplug listener.
func NewHotplug(logger *slog.Logger, opts ...HotplugOption) *Hotplug {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Hotplug{log: logger, debounce: 500 * time.Millisecond, source: openUeventSocket, events: make(chan HotplugEvent, 64)}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Events delivers debounced hotplug events.
func (h *Hotplug) Events() <-chan HotplugEvent { return h.events }

// openUeventSocket binds a NETLINK_KOBJECT_UEVENT socket to the kernel
// group. The kernel lets unprivileged processes receive it
// (NL_CFG_F_NONROOT_RECV in kobject_uevent.c). The fd is non-blocking and
// wrapped in an os.File so reads park in Go's poller and Close wakes them.
func openUeventSocket() (ueventSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// A burst of uevents must not overflow the default buffer (ENOBUFS).
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent bind: %w", err)
	}
	return os.NewFile(uintptr(fd), "uevent"), nil
}

// Run listens until ctx is cancelled (not an error). It fails only when
// the socket cannot be opened.
func (h *Hotplug) Run(ctx context.Context) error {
	src, err := h.source()
	if err != nil {
		return err
	}
	raw := make(chan Uevent, 256)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, maxUevent)
		for {
			n, err := src.Read(buf)
			if err != nil {
				if errors.Is(err, unix.ENOBUFS) {
					// The kernel dropped messages: say so, keep listening.
					h.log.Warn("uevents lost (receive buffer overflow)")
					continue
				}
				readErr <- err
				return
			}
			u, err := ParseUevent(buf[:n])
			if err != nil {
				h.log.Debug("ignored netlink message", "err", err)
				continue
			}
			if !hotplugSubsystems[u.Subsystem] {
				continue
			}
			select {
			case raw <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer src.Close()

	pending := map[string]HotplugEvent{}
	var order []string
	var timer *time.Timer
	var fire <-chan time.Time
	flush := func() {
		for _, k := range order {
			ev := pending[k]
			h.log.Info("hotplug", "action", ev.Action, "subsystem", ev.Subsystem, "device", ev.Device, "devpath", ev.DevPath)
			select {
			case h.events <- ev:
			case <-ctx.Done():
				return
			}
		}
		pending, order = map[string]HotplugEvent{}, nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("uevent read: %w", err)
		case u := <-raw:
			ev := HotplugEvent{Action: u.Action, Subsystem: u.Subsystem, DevPath: u.DevPath, At: time.Now()}
			if u.DevName != "" {
				ev.Device = path.Join("/dev", path.Clean("/"+u.DevName))
			}
			if _, seen := pending[u.DevPath]; !seen {
				order = append(order, u.DevPath)
			}
			pending[u.DevPath] = ev
			if timer == nil {
				timer = time.NewTimer(h.debounce)
			} else {
				timer.Reset(h.debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			flush()
		}
	}
}
