package agent

import (
	"context"
	"log/slog"

	"capbox/agent/config"

	"capbox/agent/fleet/wire"
	"capbox/board"
	"capbox/pipelines"
)

// input is what the agent knows of the chosen capture input. It is the one
// owner of "is there a picture to put on air": the pipeline runtime and the
// watchers report facts, setInput alone decides between the live picture
// and the slate.
type input struct {
	// signal is the receiver's last report; "" or unknown for inputs that
	// cannot tell (the test pattern, USB dongles).
	signal board.Signal
	// gone: the capture device is unplugged.
	gone bool
	// flat: the runtime judged the live picture flat for a while (a
	// dongle's black or blue "no signal" screen); flatMsg says how.
	flat    bool
	flatMsg string
	// failed: the live capture fails and the runtime retries it.
	failed bool
}

// inputState names the input's condition; the first that applies wins.
type inputState string

const (
	inputUnplugged inputState = "unplugged"
	inputNoSignal  inputState = "no signal"
	inputFlat      inputState = "flat picture"
	inputFailed    inputState = "failed"
	inputLive      inputState = "live"
)

func (in input) state() inputState {
	switch {
	case in.gone:
		return inputUnplugged
	case !in.signalUsable():
		return inputNoSignal
	case in.flat:
		return inputFlat
	case in.failed:
		return inputFailed
	}
	return inputLive
}

// signalUsable: the receiver reports a picture, or cannot tell. A trial of
// a rung needs frames, which a receiver without signal has none of.
func (in input) signalUsable() bool {
	s := in.signal.State
	return s == "" || s == board.SignalLocked || s == board.SignalUnknown
}

// hasSignal: the input is plugged in and its receiver has (or may have) a
// signal, so a failing capture is a failure, not an empty cable.
func (in input) hasSignal() bool { return !in.gone && in.signalUsable() }

// onAir is what the video track carries in each state. A flat picture and a
// failing capture keep the capture running off air, so the runtime sees
// the picture (or the capture) come back; no signal or no device has
// nothing to capture.
func (s inputState) onAir() pipelines.OnAir {
	switch s {
	case inputLive:
		return pipelines.OnAir{}
	case inputFlat, inputFailed:
		return pipelines.OnAir{Slate: true, Capture: true}
	}
	return pipelines.OnAir{Slate: true}
}

// hasPicture: states in which the fleet counts the signal as present (a
// failing capture is reported as a failure, not as a lost signal).
func (s inputState) hasPicture() bool { return s == inputLive || s == inputFailed }

// setInput moves the input to next: it reports a change once (log, fleet
// event, state), re-plans the video when asked (a new format or device:
// before the live picture returns), and puts on air what next calls for.
func (a *Agent) setInput(next input, replan string) {
	prev := a.in
	a.in = next
	from, to := prev.state(), next.state()
	if from != to && a.announce(from, to) {
		// The state goes out before the pipeline is asked to switch:
		// building the slate's encoder can take seconds on a busy box.
		a.publish()
	}
	if replan != "" {
		a.replanVideo(replan)
	}
	if on := to.onAir(); on != from.onAir() {
		if rt := a.run.rt; rt != nil {
			a.rtCall(func(ctx context.Context) error { return rt.SetOnAir(ctx, on) })
		}
	}
}

// announce logs a change of state and tells the fleet when the signal was
// lost or came back; false when the fleet hears nothing of it.
func (a *Agent) announce(from, to inputState) bool {
	in := a.in
	switch {
	case to == inputUnplugged:
		a.log.Warn("capture input unplugged", "device", a.plan.Video.Device)
		a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: "unplugged", Data: map[string]any{"gone": true}})
	case to == inputNoSignal && from.hasPicture():
		a.log.Warn("signal lost", "state", in.signal.State)
		a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: string(in.signal.State), Data: map[string]any{"gone": false}})
	case to == inputFlat && from.hasPicture():
		a.log.Warn("no picture: the input sends a flat picture", "detail", in.flatMsg)
		a.emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: in.flatMsg, Data: map[string]any{"gone": false, "picture": "flat"}})
	case to.hasPicture() && !from.hasPicture():
		msg := formatName(in.signal)
		switch from {
		case inputUnplugged:
			a.log.Info("capture input back", "device", a.plan.Video.Device, "format", msg)
		case inputFlat:
			a.log.Info("picture back")
			msg = "picture back"
		default:
			a.log.Info("signal locked", "format", msg)
		}
		a.emit(wire.Event{Type: wire.EvtSignalLocked, Part: wire.PartCapture, Msg: msg})
	default:
		a.log.Info("capture input", "from", from, "to", to)
		return false
	}
	return true
}

// ---- detection -------------------------------------------------------------

// loadEDID puts the configured EDID into the receivers (without one a
// TC358743 shows the source a dead display).
func loadEDID(deps Deps, cfg config.Config, det board.Detection, log *slog.Logger) {
	if deps.ApplyEDID == nil || cfg.Capture.EDID == "none" {
		return
	}
	done, err := deps.ApplyEDID(det, cfg.Capture.EDID)
	if err != nil {
		log.Warn("EDID not loaded", "err", err)
	}
	for _, d := range done {
		log.Info("EDID loaded", "device", d)
	}
}

// inputOf is the detected input a plan on device uses (its stable path
// counts too); device "" means the detection's choice. Zero when none
// matches (the test pattern).
func inputOf(det board.Detection, device string) board.VideoInput {
	if device == "" {
		device = det.Chosen.VideoInput
	}
	for _, in := range det.VideoInputs {
		if in.Device == device || (in.StablePath != "" && in.StablePath == device) {
			return in
		}
	}
	return board.VideoInput{}
}

// chosenInput is the detected input the plan uses.
func (a *Agent) chosenInput() board.VideoInput { return inputOf(a.det, a.plan.Video.Device) }

// ---- signal and hotplug ----------------------------------------------------

// signalWatch follows the chosen HDMI receiver's signal.
type signalWatch struct {
	stop   context.CancelFunc
	device string
	events <-chan board.SignalEvent
}

// watchInput follows the chosen input's signal when it is an HDMI receiver.
func (a *Agent) watchInput() {
	in := a.chosenInput()
	dev := in.Device
	if a.deps.NewSignalWatcher == nil || !in.DVTimings || a.plan.Video.Kind != pipelines.SourceV4L2 {
		a.stopWatch()
		return
	}
	if dev == a.watch.device && a.watch.stop != nil {
		return
	}
	a.stopWatch()
	w := a.deps.NewSignalWatcher(dev, in.StablePath, a.log.With("component", "signal", "device", dev))
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	go func() { _ = w.Run(ctx) }()
	a.watch = signalWatch{stop: cancel, device: dev, events: w.Events()}
}

func (a *Agent) stopWatch() {
	if a.watch.stop != nil {
		a.watch.stop()
	}
	a.watch = signalWatch{}
}

func (a *Agent) onSignal(ev board.SignalEvent) {
	next := a.in
	next.gone = ev.Gone
	next.signal = ev.Signal
	if ev.Gone {
		next.signal.State = board.SignalNone
	}
	if next.signal.State == board.SignalLocked {
		// Keep detection in step, so a re-plan uses the live format and a
		// device that came back under a new node.
		for i := range a.det.VideoInputs {
			if in := &a.det.VideoInputs[i]; in.Device == a.watch.device || in.Device == ev.Device {
				in.Signal, in.Device = next.signal, ev.Device
			}
		}
	}
	replan := ""
	switch {
	case !next.hasSignal():
	case !a.in.hasSignal():
		replan = "signal locked"
	case formatName(a.in.signal) != formatName(next.signal):
		a.log.Info("input format changed", "from", formatName(a.in.signal), "to", formatName(next.signal))
		replan = "format changed"
	}
	a.setInput(next, replan)
}

// onHotplug re-detects after a video device came or went (debounced by
// board), off the loop, and follows the input by its stable path.
func (a *Agent) onHotplug(ev board.HotplugEvent) {
	if ev.Subsystem != "video4linux" || a.detecting {
		return
	}
	a.log.Info("device change", "action", ev.Action, "device", ev.Device)
	a.detecting = true
	cfg := a.cfg
	go func() {
		var det board.Detection
		var err error
		if a.deps.Detect != nil {
			det, err = a.deps.Detect(a.ctx, cfg)
			loadEDID(a.deps, cfg, det, a.log)
		}
		a.post(func() { a.detected(det, err) })
	}()
}

func (a *Agent) detected(det board.Detection, err error) {
	a.detecting = false
	if err != nil {
		a.log.Warn("detection incomplete", "err", err)
	}
	a.det = det
	a.setMeta()
	next := a.in
	in := a.chosenInput()
	if in.Device == "" && a.plan.Video.Kind == pipelines.SourceV4L2 {
		// Our input is gone: show the slate until it is back.
		next.gone = true
		a.setInput(next, "")
		return
	}
	next.gone, next.signal = false, in.Signal
	a.setInput(next, "device change")
	a.watchInput()
}

// ---- facts from the runtime ---------------------------------------------------

// onPicture records the runtime's judgement of a picture that cannot say
// whether it has a signal: flat (msg says how) or back.
func (a *Agent) onPicture(flat bool, msg string) {
	next := a.in
	next.flat, next.flatMsg = flat, msg
	a.setInput(next, "")
}

// onCapture records that the live capture fails (and is being retried by
// the runtime) or delivers frames again.
func (a *Agent) onCapture(failed bool) {
	next := a.in
	next.failed = failed
	a.setInput(next, "")
}
