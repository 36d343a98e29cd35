package agent

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/board"
	"capbox/pipelines"
)

// Every condition of the input, with what it puts on air: the table the
// runtime's facts and the watchers' reports are judged by.
func TestInputStatesAndWhatGoesOnAir(t *testing.T) {
	locked := board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 30}
	slate := pipelines.OnAir{Slate: true}
	watching := pipelines.OnAir{Slate: true, Capture: true}
	for _, c := range []struct {
		name  string
		in    input
		state inputState
		onAir pipelines.OnAir
	}{
		{"locked receiver", input{signal: locked}, inputLive, pipelines.OnAir{}},
		{"input that cannot tell", input{}, inputLive, pipelines.OnAir{}},
		{"unknown signal", input{signal: board.Signal{State: board.SignalUnknown}}, inputLive, pipelines.OnAir{}},
		{"no signal", input{signal: board.Signal{State: board.SignalNone}}, inputNoSignal, slate},
		{"no sync", input{signal: board.Signal{State: board.SignalNoLock}}, inputNoSignal, slate},
		{"out of range", input{signal: board.Signal{State: board.SignalOutOfRange}}, inputNoSignal, slate},
		{"unplugged", input{signal: locked, gone: true}, inputUnplugged, slate},
		{"unplugged beats failing", input{gone: true, failed: true, flat: true}, inputUnplugged, slate},
		{"flat picture", input{flat: true}, inputFlat, watching},
		{"no signal beats flat", input{signal: board.Signal{State: board.SignalNone}, flat: true}, inputNoSignal, slate},
		{"capture failing", input{signal: locked, failed: true}, inputFailed, watching},
		{"flat beats failing", input{flat: true, failed: true}, inputFlat, watching},
	} {
		if got := c.in.state(); got != c.state {
			t.Errorf("%s: state %q, want %q", c.name, got, c.state)
		}
		if got := c.in.state().onAir(); got != c.onAir {
			t.Errorf("%s: on air %+v, want %+v", c.name, got, c.onAir)
		}
	}
}

// A capture that fails at run time: the agent puts the slate on air and
// keeps the capture being retried, the capture is reported failing (sad,
// not "no signal": the cable is in), and when the runtime says the capture
// delivers again the live picture returns. The fleet hears no signal_lost.
func TestFailingCaptureShowsTheSlateUntilItDeliversAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		live := pipelines.Stats{Video: pipelines.FrontStats{Frames: 10, Running: true, LastFrame: time.Now()}}
		rt.setStats(live)
		time.Sleep(tickEvery)
		synctest.Wait()

		rt.events <- pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "video", Msg: "Could not read from resource"}
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartCapture] != wire.MoodSad || st.Mode == wire.ModeNoSignal {
			t.Errorf("while the capture fails: %+v", st)
		}
		rt.events <- pipelines.Event{Kind: pipelines.EventCaptureRunning, Part: "video"}
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartCapture] != wire.MoodHappy {
			t.Errorf("capture back: %+v", st)
		}
		if got := rt.Calls(); !slices.Equal(got, []string{"slate true capture", "slate false"}) {
			t.Errorf("on-air choices %v, want the slate with the capture retried, then live", got)
		}
		for len(r.a.pub.events) > 0 {
			if ev := <-r.a.pub.events; ev.Type == wire.EvtSignalLost || ev.Type == wire.EvtSignalLocked {
				t.Errorf("a failing capture was reported as %s", ev.Type)
			}
		}
	})
}

// The device unplugged while its receiver had no signal already: the fleet
// hears that it is gone (a second signal_lost, saying unplugged), and the
// slate stays on without the capture.
func TestUnplugWhileWithoutSignalIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalNone}}
		synctest.Wait()
		r.signal <- board.SignalEvent{Device: "/dev/video0", Gone: true}
		synctest.Wait()
		var got []string
		for len(r.a.pub.events) > 0 {
			ev := <-r.a.pub.events
			got = append(got, ev.Type+":"+ev.Msg)
			if ev.Msg == "unplugged" && ev.Data["gone"] != true {
				t.Errorf("unplugged without gone: %+v", ev)
			}
		}
		if want := []string{wire.EvtSignalLost + ":no_signal", wire.EvtSignalLost + ":unplugged"}; !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		if calls := r.rt().Calls(); !slices.Equal(calls, []string{"slate true"}) {
			t.Errorf("on-air choices %v, want one switch to the slate", calls)
		}
		if st := r.state(); st.Mode != wire.ModeNoSignal || st.Capture.Signal != "no_signal" {
			t.Errorf("unplugged: %+v", st)
		}
	})
}
