package board

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SignalEvent is a change of an input's signal as the watcher sees it.
type SignalEvent struct {
	Device string // the node read (after a reopen, possibly a new /dev/videoN)
	Signal Signal
	At     time.Time
	// Gone is true while the node cannot be opened or answers ENODEV
	// (unplugged, driver unbound, vivid "disconnect"); Signal is then
	// no_signal and Err matches ErrGone or ErrNoDevice.
	Gone bool
	// Err is the errno-named reason behind a state other than locked
	// (ErrNoCable for ENOLINK, ErrNoSync, ErrOutOfRange, ErrGone...).
	Err error
}

// SignalWatcher follows one capture input's HDMI signal. It does not look
// at frames: vivid (and some bridges) keep delivering frames with no
// signal, so the truth comes from VIDIOC_QUERY_DV_TIMINGS and the input
// status, read on every V4L2_EVENT_SOURCE_CHANGE and polled about once a
// second because the event does not reach every node on every kernel.
type SignalWatcher struct {
	device  string
	stable  string
	log     *slog.Logger
	poll    time.Duration
	reopen  time.Duration
	open    opener
	resolve func(stable string) (string, error)
	events  chan SignalEvent

	mu   sync.Mutex
	last *SignalEvent
}

// WatcherOption configures a SignalWatcher.
type WatcherOption func(*SignalWatcher)

// WithPollInterval sets how often timings are polled (default 1 s).
func WithPollInterval(d time.Duration) WatcherOption {
	return func(w *SignalWatcher) {
		if d > 0 {
			w.poll = d
		}
	}
}

// WithReopenInterval sets how often a vanished node is looked for again
// (default 1 s).
func WithReopenInterval(d time.Duration) WatcherOption {
	return func(w *SignalWatcher) {
		if d > 0 {
			w.reopen = d
		}
	}
}

// WithStablePath makes the watcher reopen the input by its stable path
// (/dev/v4l/by-path/...; with or without udev), so a replugged dongle that
// comes back as another /dev/videoN is found again.
func WithStablePath(p string) WatcherOption { return func(w *SignalWatcher) { w.stable = p } }

func withOpener(o opener) WatcherOption { return func(w *SignalWatcher) { w.open = o } }

func withResolver(r func(string) (string, error)) WatcherOption {
	return func(w *SignalWatcher) { w.resolve = r }
}

// NewSignalWatcher watches device (a /dev/videoN or stable path).
func NewSignalWatcher(device string, logger *slog.Logger, opts ...WatcherOption) *SignalWatcher {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &SignalWatcher{
		device:  device,
		log:     logger.With("device", device),
		poll:    time.Second,
		reopen:  time.Second,
		open:    openNode,
		resolve: func(s string) (string, error) { return ResolveStablePath("/", s) },
		events:  make(chan SignalEvent, 8),
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Events delivers state changes. When the reader falls behind, older
// events are dropped so the newest state always arrives.
func (w *SignalWatcher) Events() <-chan SignalEvent { return w.events }

// Last returns the most recent state, and false before the first reading.
func (w *SignalWatcher) Last() (SignalEvent, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		return SignalEvent{}, false
	}
	return *w.last, true
}

// Run watches until ctx is cancelled (which is not an error).
func (w *SignalWatcher) Run(ctx context.Context) error {
	var dev videoDevice
	defer func() {
		if dev != nil {
			dev.Close()
		}
	}()
	path := w.device
	for ctx.Err() == nil {
		if dev == nil {
			path = w.target()
			d, err := w.open(path)
			if err != nil {
				w.report(path, Signal{State: SignalNone}, true, deviceError("open", path, err))
				sleep(ctx, w.reopen)
				continue
			}
			dev = d
			in, _ := dev.Input()
			if err := dev.SubscribeSourceChange(uint32(max(in, 0))); err != nil {
				// Not every node raises source-change events: polling covers it.
				w.log.Debug("no source-change events", "err", errnoName(err))
			}
		}
		sig, err := readSignal(dev, path)
		if gone(err) {
			w.report(path, Signal{State: SignalNone}, true, err)
			dev.Close()
			dev = nil
			sleep(ctx, w.reopen)
			continue
		}
		w.report(path, sig, false, err)
		ev, ok, err := dev.WaitEvent(ctx, w.poll)
		if err != nil {
			err = deviceError("VIDIOC_DQEVENT", path, err)
			if gone(err) {
				w.report(path, Signal{State: SignalNone}, true, err)
				dev.Close()
				dev = nil
				sleep(ctx, w.reopen)
				continue
			}
			w.log.Debug("event wait failed", "err", err)
			sleep(ctx, w.poll)
		}
		if ok && ev.Type == eventSourceChange {
			w.log.Debug("source change", "changes", ev.Changes)
		}
	}
	return nil
}

// target is the node to open: the stable path's current node when it
// resolves, else the device given.
func (w *SignalWatcher) target() string {
	if w.stable != "" {
		if p, err := w.resolve(w.stable); err == nil {
			return p
		}
	}
	return w.device
}

func gone(err error) bool { return errors.Is(err, ErrGone) || errors.Is(err, ErrNoDevice) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// readSignal reads one node's signal: the DV timings errno decides; the
// input status overrides a stale timing; nodes without DV timings (UVC)
// only have the status.
func readSignal(d videoDevice, path string) (Signal, error) {
	t, terr := d.QueryDVTimings()
	status, serr := inputStatus(d)
	if gone(deviceError("VIDIOC_ENUMINPUT", path, serr)) {
		return Signal{State: SignalNone}, deviceError("VIDIOC_ENUMINPUT", path, serr)
	}
	st := statusToSignal(status)
	if serr != nil {
		st = SignalUnknown
	}
	if terr == nil {
		if st == SignalNone || st == SignalNoLock {
			return Signal{State: st}, statusErr(st)
		}
		return t.Signal(), nil
	}
	err := deviceError("VIDIOC_QUERY_DV_TIMINGS", path, terr)
	switch {
	case gone(err):
		return Signal{State: SignalNone}, err
	case errors.Is(terr, unix.ENOTTY), errors.Is(terr, unix.EINVAL), errors.Is(terr, unix.ENODATA):
		return Signal{State: st}, statusErr(st)
	}
	return Signal{State: SignalFromError(err)}, err
}

func statusErr(st SignalState) error {
	switch st {
	case SignalNone:
		return ErrNoCable
	case SignalNoLock:
		return ErrNoSync
	}
	return nil
}

// inputStatus is the V4L2_IN_ST_* bits of the current input.
func inputStatus(d videoDevice) (uint32, error) {
	cur, err := d.Input()
	if err != nil {
		return 0, err
	}
	ins, err := d.EnumInputs()
	for _, in := range ins {
		if int(in.Index) == cur {
			return in.Status, nil
		}
	}
	if err == nil {
		err = unix.EINVAL
	}
	return 0, err
}

// report emits an event when the state differs from the last one.
func (w *SignalWatcher) report(path string, sig Signal, isGone bool, err error) {
	ev := SignalEvent{Device: path, Signal: sig, At: time.Now(), Gone: isGone, Err: err}
	w.mu.Lock()
	same := w.last != nil && w.last.Signal == sig && w.last.Gone == isGone && w.last.Device == path
	if !same {
		w.last = &ev
	}
	w.mu.Unlock()
	if same {
		return
	}
	w.log.Info("signal", "state", sig.State, "width", sig.Width, "height", sig.Height, "fps", sig.FPSExact, "gone", isGone, "err", err)
	for {
		select {
		case w.events <- ev:
			return
		default:
		}
		select { // full: drop the oldest so the newest state gets through
		case <-w.events:
		default:
		}
	}
}
