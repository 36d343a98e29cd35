package agent

// Behaviour of the supervisor as the fleet and the operator see it: the
// published state (moods, mode, alerts, signal, format), the events, the
// plan each runtime is given and what commands answer. The agent runs on
// fakes for the runtime, the signal watcher, hotplug and the encoder trial.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
	"capbox/pipelines"
)

// fleetSide is the agent as its fleet link sees it.
func fleetSide(a *Agent) fleet.Box { return box{a} }

// frontRuntime is a fakeRuntime that keeps every video front it is given
// and can fail snapshots and output commands.
type frontRuntime struct {
	*fakeRuntime
	fmu         sync.Mutex
	fronts      []pipelines.Front
	slate       *pipelines.Front
	snapshotErr error
	// snapshotTakes is how long a snapshot's decode takes.
	snapshotTakes time.Duration
	outputErr     error
}

func (f *frontRuntime) ReplaceVideo(ctx context.Context, v pipelines.Front, e pipelines.EncoderInfo, s *pipelines.Front) error {
	f.fmu.Lock()
	f.fronts = append(f.fronts, v)
	f.slate = s
	f.fmu.Unlock()
	return f.fakeRuntime.ReplaceVideo(ctx, v, e, s)
}

func (f *frontRuntime) lastFront() pipelines.Front {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if len(f.fronts) == 0 {
		return f.plan.Video
	}
	return f.fronts[len(f.fronts)-1]
}

func (f *frontRuntime) Snapshot(ctx context.Context) ([]byte, error) {
	if f.snapshotErr != nil {
		return nil, f.snapshotErr
	}
	// A decode takes its time, and gives up when asked to.
	select {
	case <-time.After(f.snapshotTakes):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f.fakeRuntime.Snapshot(ctx)
}

func (f *frontRuntime) StartOutput(ctx context.Context, name string) error {
	if f.outputErr != nil {
		return f.outputErr
	}
	return f.fakeRuntime.StartOutput(ctx, name)
}

type fakeHotplug struct{ ch chan board.HotplugEvent }

func (h fakeHotplug) Run(ctx context.Context) error     { <-ctx.Done(); return nil }
func (h fakeHotplug) Events() <-chan board.HotplugEvent { return h.ch }

// bRig is an agent on fakes, with the runtimes as frontRuntimes.
type bRig struct {
	*rig
	fronts []*frontRuntime
	hot    chan board.HotplugEvent
}

func newBRig(t *testing.T, cfg config.Config, det board.Detection, tweak func(*Deps)) *bRig {
	r := &bRig{rig: &rig{t: t, signal: make(chan board.SignalEvent, 16), det: det}, hot: make(chan board.HotplugEvent, 4)}
	deps := Deps{
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
		// Each detection is new, as the real one is: the agent keeps its
		// copy in step with the signal.
		Detect: func(context.Context, config.Config) (board.Detection, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			det := r.det
			det.VideoInputs = slices.Clone(det.VideoInputs)
			return det, nil
		},
		NewRuntime: func(p pipelines.Plan, _ *slog.Logger) Runtime {
			f := &frontRuntime{fakeRuntime: &fakeRuntime{plan: p, events: make(chan pipelines.Event, 16), crash: make(chan error, 1)}}
			r.mu.Lock()
			r.runtimes = append(r.runtimes, f.fakeRuntime)
			r.fronts = append(r.fronts, f)
			r.mu.Unlock()
			return f
		},
		// Every rung passes its trial unless a test says otherwise.
		Trial: func(context.Context, pipelines.Front, time.Duration) (time.Duration, error) {
			return 10 * time.Millisecond, nil
		},
		NewSignalWatcher: func(string, string, *slog.Logger) SignalWatcher { return fakeWatcher{r.signal} },
		NewHotplug:       func(*slog.Logger) Hotplug { return fakeHotplug{r.hot} },
		Health:           health.New(health.Options{Sys: fakeSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)}),
		StateDir:         t.TempDir(),
		Root:             t.TempDir(),
	}
	if tweak != nil {
		tweak(&deps)
	}
	r.a = New(cfg, deps)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.a.Run(ctx) }()
	return r
}

func (r *bRig) front() *frontRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fronts) == 0 {
		return nil
	}
	return r.fronts[len(r.fronts)-1]
}

func (r *bRig) setDetection(det board.Detection) {
	r.mu.Lock()
	r.det = det
	r.mu.Unlock()
}

// drainEvents returns the fleet events queued so far.
func drainEvents(a *Agent) []wire.Event {
	var out []wire.Event
	ch := fleetSide(a).Events()
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func eventTypes(evs []wire.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// frontRung reads a video front's ladder rung from its chain: a software
// encoder, or a hardware one importing dmabufs (zero-copy) or not.
func frontRung(f pipelines.Front) pipelines.Rung {
	rung := pipelines.RungMMAP
	for _, e := range f.Chain {
		if e.Factory == "x264enc" {
			return pipelines.RungSoftware
		}
		for _, p := range e.Props {
			if p.Name == "output-io-mode" && p.Value == "dmabuf-import" {
				rung = pipelines.RungDMABuf
			}
		}
	}
	return rung
}

func hasAlert(st wire.State, alert string) bool { return slices.Contains(st.Alerts, alert) }

// liveVideo is a video front delivering frames now.
func liveVideo() pipelines.FrontStats {
	return pipelines.FrontStats{Kind: pipelines.SourceTest, Frames: 100, Running: true, LastFrame: time.Now()}
}

// A capture that stops delivering frames is lost, and so is the box: the
// README's promise for a stall. Not in the first 2*StallAfter of a runtime
// (a start is slow), and within a second of the check after that.
func TestStalledCaptureIsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Outputs, cfg.Record.Enabled = nil, false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		rt.setStats(pipelines.Stats{Video: liveVideo()})
		time.Sleep(2*StallAfter - tickEvery/2)
		synctest.Wait()
		if st := r.state(); st.Mood != wire.MoodHappy {
			t.Fatalf("lost before the start's grace ended: %+v", st)
		}
		time.Sleep(tickEvery)
		synctest.Wait()
		st := r.state()
		if st.Moods[wire.PartCapture] != wire.MoodLost || st.Moods[wire.PartEncoder] != wire.MoodLost || st.Mood != wire.MoodLost {
			t.Errorf("a stalled capture: moods %v, box %s; want capture, encoder and box lost", st.Moods, st.Mood)
		}
		if !hasAlert(st, "capture stalled") || !hasAlert(st, "encoder stalled") {
			t.Errorf("alerts %v", st.Alerts)
		}
		if f := r.front(); len(f.fronts) != 1 {
			t.Errorf("the video was restarted %d times, want once", len(f.fronts))
		}
	})
}

// Frames that keep coming keep the capture happy; one that stops is lost
// only after StallAfter without a frame.
func TestCaptureLostOnlyAfterStallAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Outputs, cfg.Record.Enabled = nil, false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		for range 15 {
			rt.setStats(pipelines.Stats{Video: liveVideo()})
			time.Sleep(tickEvery)
			synctest.Wait()
		}
		if st := r.state(); st.Mood != wire.MoodHappy {
			t.Fatalf("a capture delivering frames: %+v", st)
		}
		// The last frame now: lost once it is more than StallAfter old.
		rt.setStats(pipelines.Stats{Video: liveVideo()})
		time.Sleep(StallAfter + tickEvery/2)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartCapture] != wire.MoodHappy {
			t.Fatalf("lost %s after the last frame: %v", StallAfter, st.Moods)
		}
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartCapture] != wire.MoodLost {
			t.Errorf("not lost %s after the last frame: %v", StallAfter+tickEvery, st.Moods)
		}
	})
}

// On the slate the capture is not what stalls: only the encoder is lost.
func TestStallOnTheSlateIsTheEncoders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Outputs, cfg.Record.Enabled = nil, false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		r.rt().setStats(pipelines.Stats{Video: liveVideo(), Slate: true})
		time.Sleep(2*StallAfter + 2*tickEvery)
		synctest.Wait()
		st := r.state()
		if st.Moods[wire.PartEncoder] != wire.MoodLost || st.Moods[wire.PartCapture] == wire.MoodLost {
			t.Errorf("a stall on the slate: %v", st.Moods)
		}
	})
}

// An output that says it is up but sends nothing for OutputStallAfter is
// lost and restarted; one whose bytes grow, or that is connecting, is not.
func TestStalledOutputIsLostAndRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Record.Enabled = false
		cfg.Outputs = []config.Output{
			{Name: "stuck", URL: "srt://127.0.0.1:9000"},
			{Name: "moving", URL: "srt://127.0.0.1:9001"},
			{Name: "dialing", URL: "srt://127.0.0.1:9002"},
		}
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		var moved uint64
		stats := func() pipelines.Stats {
			moved += 1000
			return pipelines.Stats{Video: liveVideo(), Outputs: []pipelines.OutputStats{
				{Name: "stuck", State: pipelines.OutputUp, Bytes: 5000},
				{Name: "moving", State: pipelines.OutputUp, Bytes: moved},
				{Name: "dialing", State: pipelines.OutputConnecting, Bytes: 7},
			}}
		}
		// The check starts after 2*StallAfter; the stuck output's bytes are
		// noted then and it is lost once they have not moved for more than
		// OutputStallAfter.
		for range 2*StallAfter/tickEvery + OutputStallAfter/tickEvery {
			rt.setStats(stats())
			time.Sleep(tickEvery)
			synctest.Wait()
		}
		st := r.state()
		if st.Moods["output:stuck"] != wire.MoodHappy {
			t.Fatalf("lost after %s without bytes, want after more than that: %v", OutputStallAfter, st.Moods)
		}
		rt.setStats(stats())
		time.Sleep(tickEvery)
		synctest.Wait()
		st = r.state()
		if st.Moods["output:stuck"] != wire.MoodLost || st.Mood != wire.MoodLost || !hasAlert(st, "output:stuck stalled") {
			t.Errorf("a stuck output: moods %v, alerts %v", st.Moods, st.Alerts)
		}
		if st.Moods["output:moving"] != wire.MoodHappy || st.Moods["output:dialing"] != wire.MoodWaking {
			t.Errorf("the other outputs: %v", st.Moods)
		}
		if got := rt.Calls(); !slices.Equal(got, []string{"restart stuck"}) {
			t.Errorf("the pipeline was asked %v, want only the stuck output restarted", got)
		}
		// Restarted, it is judged afresh.
		rt.setStats(stats())
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods["output:stuck"] != wire.MoodHappy {
			t.Errorf("after its restart: %v", st.Moods)
		}
	})
}

// Each output's state gives its mood; a server that is away is "waiting"
// (hungry), a failure of our own "failed" (sad); the box streams degraded.
func TestOutputMoodsAndMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Record.Enabled = false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		up := pipelines.OutputStats{Name: "up", State: pipelines.OutputUp}
		rt.setStats(pipelines.Stats{Video: liveVideo(), Outputs: []pipelines.OutputStats{
			up,
			{Name: "dialing", State: pipelines.OutputConnecting},
			{Name: "off", State: pipelines.OutputDisabled},
		}})
		time.Sleep(tickEvery)
		synctest.Wait()
		st := r.state()
		if st.Mode != wire.ModeStreaming || st.Mood != wire.MoodWaking || len(st.Alerts) != 0 {
			t.Errorf("up, connecting, disabled: mode %s, mood %s, alerts %v", st.Mode, st.Mood, st.Alerts)
		}
		want := map[string]wire.Mood{"output:up": wire.MoodHappy, "output:dialing": wire.MoodWaking, "output:off": wire.MoodSleeping}
		for p, m := range want {
			if st.Moods[p] != m {
				t.Errorf("%s: %s, want %s", p, st.Moods[p], m)
			}
		}
		if st.Outputs["dialing"] != string(pipelines.OutputConnecting) || st.Outputs["off"] != string(pipelines.OutputDisabled) {
			t.Errorf("outputs %v", st.Outputs)
		}

		away := []string{"Connection REFUSED", "connect: no route", "host unreachable", "i/o timed out", "handshake timeout",
			"connection closed by peer", "connection reset", "cannot resolve ingest.example.org"}
		for _, e := range away {
			rt.setStats(pipelines.Stats{Video: liveVideo(), Outputs: []pipelines.OutputStats{up, {Name: "x", State: pipelines.OutputDown, LastError: e}}})
			time.Sleep(tickEvery)
			synctest.Wait()
			st := r.state()
			if st.Moods["output:x"] != wire.MoodHungry || st.Mode != wire.ModeDegraded || !hasAlert(st, "output:x waiting") || st.Mood != wire.MoodHungry {
				t.Errorf("%q: mood %s, mode %s, alerts %v", e, st.Moods["output:x"], st.Mode, st.Alerts)
			}
		}
		rt.setStats(pipelines.Stats{Video: liveVideo(), Outputs: []pipelines.OutputStats{up, {Name: "x", State: pipelines.OutputDown, LastError: "authentication failed"}}})
		time.Sleep(tickEvery)
		synctest.Wait()
		st = r.state()
		if st.Moods["output:x"] != wire.MoodSad || st.Mood != wire.MoodSad || st.Mode != wire.ModeDegraded || !hasAlert(st, "output:x failed, retrying") {
			t.Errorf("our own failure: moods %v, mode %s, alerts %v", st.Moods, st.Mode, st.Alerts)
		}
	})
}

func TestRecorderMoods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Outputs = nil
		cfg.Record.Enabled = true
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		cases := []struct {
			rec   pipelines.RecorderStats
			mood  wire.Mood
			mode  string
			alert string
		}{
			{pipelines.RecorderStats{Enabled: true, Recording: true}, wire.MoodHappy, wire.ModeStreaming, ""},
			{pipelines.RecorderStats{Enabled: true, LastError: "no space left on device"}, wire.MoodSad, wire.ModeDegraded, "recorder failed, retrying"},
			{pipelines.RecorderStats{Enabled: true}, wire.MoodSleeping, wire.ModeStreaming, ""},
		}
		for _, c := range cases {
			rt.setStats(pipelines.Stats{Video: liveVideo(), Recorder: c.rec})
			time.Sleep(tickEvery)
			synctest.Wait()
			st := r.state()
			if st.Moods[wire.PartRecorder] != c.mood || st.Mode != c.mode || st.Recording != c.rec.Recording {
				t.Errorf("%+v: mood %s mode %s recording %v", c.rec, st.Moods[wire.PartRecorder], st.Mode, st.Recording)
			}
			if c.alert != "" && !hasAlert(st, c.alert) {
				t.Errorf("%+v: alerts %v", c.rec, st.Alerts)
			}
		}
		rt.setStats(pipelines.Stats{Video: liveVideo()})
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartRecorder] != "" || st.Mode != wire.ModeStreaming {
			t.Errorf("a recorder not in the runtime's stats: moods %v, mode %s", st.Moods, st.Mode)
		}
	})
}

// The box starts (no frames yet), then streams, or idles with nothing to
// send; a silent audio input is an alert, not a failure.
func TestModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Record.Enabled = false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		st := r.state()
		if st.Mode != wire.ModeStarting || st.Moods[wire.PartEncoder] != wire.MoodWaking || st.Moods[wire.PartCapture] != wire.MoodWaking {
			t.Errorf("before the first frame: %+v", st)
		}
		rt := r.rt()
		rt.setStats(pipelines.Stats{Video: liveVideo(), Audio: pipelines.AudioStats{Silent: true},
			Outputs: []pipelines.OutputStats{{Name: "live", State: pipelines.OutputUp}}})
		time.Sleep(tickEvery)
		synctest.Wait()
		st = r.state()
		if st.Mode != wire.ModeStreaming || st.Mood != wire.MoodHappy || !slices.Equal(st.Alerts, []string{"audio silent"}) {
			t.Errorf("streaming: %+v", st)
		}
		if st.Capture.Signal != string(board.SignalUnknown) || st.Capture.Format != "" {
			t.Errorf("the test pattern has no signal to report: %+v", st.Capture)
		}
	})
}

// The HDMI receiver's states: anything but locked (or unknown) is no
// signal, shown as hungry capture and the no_signal mode; the format is
// named the way operators say it.
func TestSignalStatesAndFormats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		r.rt().setStats(pipelines.Stats{Video: pipelines.FrontStats{Kind: pipelines.SourceV4L2, Frames: 10, Running: true, LastFrame: time.Now()}})
		send := func(s board.Signal) wire.State {
			r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: s}
			synctest.Wait()
			return r.state()
		}
		for _, s := range []board.SignalState{board.SignalNoLock, board.SignalOutOfRange, board.SignalNone} {
			st := send(board.Signal{State: s})
			if st.Moods[wire.PartCapture] != wire.MoodHungry || st.Mode != wire.ModeNoSignal || st.Capture.Signal != string(s) ||
				st.Capture.Format != "" || !hasAlert(st, "no signal") {
				t.Errorf("%s: %+v", s, st)
			}
		}
		formats := []struct {
			s    board.Signal
			want string
		}{
			{board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 60, FPSExact: 59.94}, "1080p59.94"},
			{board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 50, FPSExact: 50, Interlaced: true}, "1080i50"},
			{board.Signal{State: board.SignalLocked, Width: 1280, Height: 720, FPS: 25}, "720p25"},
		}
		for _, f := range formats {
			st := send(f.s)
			if st.Capture.Format != f.want || st.Capture.Signal != "locked" || st.Moods[wire.PartCapture] == wire.MoodHungry || st.Mode == wire.ModeNoSignal {
				t.Errorf("%+v: %+v, want format %s", f.s, st, f.want)
			}
		}
		// A receiver that cannot tell is trusted: the picture is live.
		st := send(board.Signal{State: board.SignalUnknown})
		if st.Moods[wire.PartCapture] == wire.MoodHungry || st.Capture.Signal != "unknown" {
			t.Errorf("unknown: %+v", st)
		}
	})
}

// Unplugged, the HDMI input shows the slate and the fleet hears why; plugged
// back under another /dev/video number, it is found by its stable path and
// the live picture returns, from the new node.
func TestInputUnpluggedAndBackUnderAnotherNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		det := hdmiDetection()
		r := newBRig(t, hdmiConfig(), det, nil)
		defer r.stop()
		synctest.Wait()
		f := r.front()
		f.setStats(pipelines.Stats{Video: pipelines.FrontStats{Kind: pipelines.SourceV4L2, Frames: 10, Running: true, LastFrame: time.Now()}})
		drainEvents(r.a)

		// Another subsystem's device changes nothing.
		gone := det
		gone.VideoInputs, gone.Chosen.VideoInput = nil, ""
		r.setDetection(gone)
		r.hot <- board.HotplugEvent{Action: "remove", Subsystem: "sound", Device: "/dev/snd/pcmC1D0c"}
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartCapture] == wire.MoodHungry {
			t.Fatalf("a sound device's removal took the capture: %+v", st)
		}

		r.hot <- board.HotplugEvent{Action: "remove", Subsystem: "video4linux", Device: "/dev/video0"}
		synctest.Wait()
		st := r.state()
		if st.Moods[wire.PartCapture] != wire.MoodHungry || st.Capture.Signal != "no_signal" || st.Mode != wire.ModeNoSignal {
			t.Errorf("unplugged: %+v", st)
		}
		evs := drainEvents(r.a)
		if len(evs) != 1 || evs[0].Type != wire.EvtSignalLost || evs[0].Data["gone"] != true {
			t.Errorf("unplugged: events %+v", evs)
		}
		if c := f.Calls(); len(c) == 0 || c[len(c)-1] != "slate true" {
			t.Errorf("unplugged: no slate (%v)", c)
		}

		back := hdmiDetection()
		back.VideoInputs[0].Device, back.Chosen.VideoInput = "/dev/video4", "/dev/video4"
		r.setDetection(back)
		r.hot <- board.HotplugEvent{Action: "add", Subsystem: "video4linux", Device: "/dev/video4"}
		synctest.Wait()
		st = r.state()
		if st.Moods[wire.PartCapture] == wire.MoodHungry || st.Capture.Signal != "locked" || st.Capture.Format != "1080p30" {
			t.Errorf("plugged back: %+v", st)
		}
		if evs := eventTypes(drainEvents(r.a)); !slices.Equal(evs, []string{wire.EvtSignalLocked}) {
			t.Errorf("plugged back: events %v", evs)
		}
		if c := f.Calls(); c[len(c)-1] != "slate false" {
			t.Errorf("plugged back: the slate stays (%v)", c)
		}
		if r.count() != 1 {
			t.Errorf("the pipeline was restarted %d times", r.count()-1)
		}
	})
}

// The encoder ladder: each hardware rung is tried before use, and one
// that fails its trial gives way to the next.
func TestLadderTriesEachRung(t *testing.T) {
	cases := []struct {
		name      string
		zeroCopy  bool
		fail      []pipelines.Rung
		signal    board.SignalState
		element   string
		rung      pipelines.Rung
		trialsRun int
	}{
		{"zero-copy passes", true, nil, board.SignalLocked, "v4l2h264enc", pipelines.RungDMABuf, 1},
		{"zero-copy fails", true, []pipelines.Rung{pipelines.RungDMABuf}, board.SignalLocked, "v4l2h264enc", pipelines.RungMMAP, 2},
		{"hardware fails", true, []pipelines.Rung{pipelines.RungDMABuf, pipelines.RungMMAP}, board.SignalLocked, "x264enc", pipelines.RungSoftware, 3},
		{"zero_copy off", false, nil, board.SignalLocked, "v4l2h264enc", pipelines.RungMMAP, 1},
		// Without a signal there are no frames to try with: the best rung
		// is trusted until the signal comes.
		{"no signal", true, []pipelines.Rung{pipelines.RungDMABuf}, board.SignalNoLock, "v4l2h264enc", pipelines.RungDMABuf, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := hdmiConfig()
				cfg.Encode.ZeroCopy = c.zeroCopy
				det := hdmiDetection()
				det.VideoInputs[0].Signal.State = c.signal
				var tried []pipelines.Rung
				r := newBRig(t, cfg, det, func(d *Deps) {
					d.Trial = func(_ context.Context, f pipelines.Front, timeout time.Duration) (time.Duration, error) {
						if timeout != cfg.Encode.TrialTimeout.D() {
							t.Errorf("trial timeout %s, want %s", timeout, cfg.Encode.TrialTimeout.D())
						}
						rung := frontRung(f)
						tried = append(tried, rung)
						if slices.Contains(c.fail, rung) {
							return 0, errors.New("no frame within the trial")
						}
						return 10 * time.Millisecond, nil
					}
				})
				defer r.stop()
				synctest.Wait()
				p := r.rt().plan
				if p.Encoder.Element != c.element || p.Encoder.Rung != c.rung {
					t.Errorf("runs %s on %s, want %s on %s", p.Encoder.Element, p.Encoder.Rung, c.element, c.rung)
				}
				if len(tried) != c.trialsRun {
					t.Errorf("trials %v, want %d", tried, c.trialsRun)
				}
			})
		})
	}
}

// Nothing passes its trial: no pipeline runs, the state says why, and the
// agent retries.
func TestLadderWithoutAnyRung(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var trials atomic.Int32
		r := newBRig(t, hdmiConfig(), hdmiDetection(), func(d *Deps) {
			d.Trial = func(context.Context, pipelines.Front, time.Duration) (time.Duration, error) {
				trials.Add(1)
				return 0, errors.New("VIDIOC_STREAMON: EIO")
			}
		})
		defer r.stop()
		synctest.Wait()
		st := r.state()
		why := slices.IndexFunc(st.Alerts, func(a string) bool { return strings.HasPrefix(a, "no pipeline: no pipeline can run") })
		if r.rt() != nil || st.Mode != wire.ModeError || st.Mood != wire.MoodSad || why < 0 ||
			!strings.Contains(st.Alerts[why], "rung software: VIDIOC_STREAMON: EIO") || !hasAlert(st, "encoder failed, retrying") {
			t.Errorf("state %+v", st)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if n := trials.Load(); n != 6 {
			t.Errorf("%d trials, want the ladder's 3 twice (again after a second)", n)
		}
	})
}

// Run-time failures of the hardware encoder: three within two minutes drop
// a rung (and the fleet hears it); fewer, slower ones, failures while the
// slate is on, failures of another part, and failures cleared by a working
// start do not. A dropped rung is kept across a pipeline restart.
func TestEncoderFallbackNeedsThreeFailuresInTwoMinutes(t *testing.T) {
	fail := pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "video", Msg: "could not map buffer"}
	fallbacks := func(a *Agent) []wire.Event {
		var out []wire.Event
		for _, ev := range drainEvents(a) {
			if ev.Type == wire.EvtEncoderFallback {
				out = append(out, ev)
			}
		}
		return out
	}
	t.Run("slow failures", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
			defer r.stop()
			synctest.Wait()
			for range 4 {
				r.rt().events <- fail
				time.Sleep(rungWindow/2 + time.Second)
			}
			synctest.Wait()
			if evs := fallbacks(r.a); len(evs) != 0 || frontRung(r.front().lastFront()) != pipelines.RungDMABuf {
				t.Errorf("failures %s apart dropped a rung: %+v", rungWindow/2+time.Second, evs)
			}
		})
	})
	t.Run("cleared by a start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
			defer r.stop()
			synctest.Wait()
			for i := range 5 {
				if i%2 == 0 {
					r.rt().events <- pipelines.Event{Kind: pipelines.EventVideoStarted, Part: "video"}
				}
				r.rt().events <- fail
				synctest.Wait()
			}
			if evs := fallbacks(r.a); len(evs) != 0 {
				t.Errorf("failures between working starts dropped a rung: %+v", evs)
			}
		})
	})
	t.Run("other parts and the slate", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
			defer r.stop()
			synctest.Wait()
			for range 3 {
				r.rt().events <- pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "slate", Msg: "x"}
			}
			synctest.Wait()
			r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalNone}}
			synctest.Wait()
			for range 3 {
				r.rt().events <- fail
			}
			synctest.Wait()
			if evs := fallbacks(r.a); len(evs) != 0 {
				t.Errorf("failures of the slate or without a signal dropped a rung: %+v", evs)
			}
		})
	})
	t.Run("two steps down and a restart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
			defer r.stop()
			synctest.Wait()
			for range 2 {
				r.rt().events <- fail
			}
			synctest.Wait()
			if evs := fallbacks(r.a); len(evs) != 0 {
				t.Fatalf("two failures dropped a rung: %+v", evs)
			}
			r.rt().events <- fail
			synctest.Wait()
			evs := fallbacks(r.a)
			if len(evs) != 1 || evs[0].Data["from"] != "dmabuf-import" || evs[0].Data["to"] != "mmap-copy" || evs[0].Data["encoder"] != "v4l2h264enc" {
				t.Fatalf("third failure: %+v", evs)
			}
			if f := r.front().lastFront(); frontRung(f) != pipelines.RungMMAP {
				t.Errorf("not on the copying rung after the fall: %+v", f)
			}
			for range 3 {
				r.rt().events <- fail
			}
			synctest.Wait()
			evs = fallbacks(r.a)
			if len(evs) != 1 || evs[0].Data["to"] != "software" || evs[0].Data["encoder"] != "x264enc" {
				t.Fatalf("three more: %+v", evs)
			}
			if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdRestartPipeline, wire.Args{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if p := r.rt().plan; p.Encoder.Rung != pipelines.RungSoftware {
				t.Errorf("a restart went back up to %s", p.Encoder.Rung)
			}
		})
	})
}

// Commands the box cannot carry out say why, with the protocol's codes.
func TestCommandRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Record.Enabled = false
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		b := fleetSide(r.a)
		ctx := context.Background()
		code := func(err error) string {
			var ce *fleet.CommandError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return ""
		}
		for _, name := range []string{wire.CmdStartRecording, wire.CmdStopRecording} {
			if _, err := b.Command(ctx, name, wire.Args{}); code(err) != wire.CodeUnavailable {
				t.Errorf("%s without a recording: %v", name, err)
			}
		}
		if _, err := b.Command(ctx, wire.CmdStopOutput, wire.Args{Name: "nope"}); code(err) != wire.CodeNoOutput {
			t.Errorf("stop_output of no output: %v", err)
		}
		if _, err := b.Command(ctx, "format_disk", wire.Args{}); !errors.Is(err, fleet.ErrUnsupported) {
			t.Errorf("an unknown command: %v", err)
		}
		f := r.front()
		f.snapshotErr = errors.New("no buffer within 5 s")
		if _, err := b.Command(ctx, wire.CmdSnapshot, wire.Args{}); code(err) != wire.CodeNoSignal {
			t.Errorf("snapshot without a picture: %v", err)
		}
		f.outputErr = errors.New("state change failed")
		_, err := b.Command(ctx, wire.CmdStartOutput, wire.Args{Name: "live"})
		if code(err) != wire.CodeFailed || !strings.Contains(err.Error(), "start_output: state change failed") {
			t.Errorf("a failing start_output: %v", err)
		}
		res, err := b.Command(ctx, wire.CmdDetect, wire.Args{})
		if err != nil || res.Data == nil {
			t.Errorf("detect: %+v, %v", res, err)
		}
	})
	// Without a pipeline, commands on it are refused as not running.
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		aacGone := &aacRemovable{}
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Elements = aacGone })
		defer r.stop()
		synctest.Wait()
		aacGone.removed.Store(true)
		synctest.Wait()
		// The answer waits for the new runtime, and says why none runs.
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdRestartPipeline, wire.Args{}); err == nil || !strings.Contains(err.Error(), "no AAC encoder") {
			t.Fatalf("restart_pipeline with nothing to run: %v, want the reason", err)
		}
		synctest.Wait()
		if r.state().Mode != wire.ModeError {
			t.Fatalf("the pipeline still runs: %+v", r.state())
		}
		for _, c := range []struct {
			name string
			args wire.Args
		}{{wire.CmdRestartOutput, wire.Args{Name: "live"}}, {wire.CmdStartRecording, wire.Args{}}, {wire.CmdSnapshot, wire.Args{}}} {
			_, err := fleetSide(r.a).Command(context.Background(), c.name, c.args)
			var ce *fleet.CommandError
			if !errors.As(err, &ce) || ce.Code != wire.CodeNotRunning {
				t.Errorf("%s without a pipeline: %v", c.name, err)
			}
		}
	})
}

// aacRemovable has every element until the AAC encoders are removed.
type aacRemovable struct{ removed atomic.Bool }

func (e *aacRemovable) HasElement(name string) bool {
	return !e.removed.Load() || noAAC{}.HasElement(name)
}

// reboot answers first, then asks the system by creating the flag file.
func TestRebootCreatesTheFlagFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		flag := filepath.Join(t.TempDir(), "run", "capbox", "reboot")
		cfg := config.Default()
		cfg.Capture.Video = "test"
		log := &records{}
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.RebootFlag, d.Logger = flag, slog.New(log) })
		defer r.stop()
		synctest.Wait()
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdReboot, wire.Args{}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(flag); err == nil {
			t.Error("the flag file was created before the answer could go out")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if b, err := os.ReadFile(flag); err != nil || string(b) != "reboot\n" {
			t.Errorf("flag file: %q, %v", b, err)
		}
		if log.count("INFO reboot requested") != 1 || log.count("ERROR cannot request a reboot") != 0 {
			t.Errorf("log %v", log.msgs)
		}
	})
}

// A reboot that cannot write its flag file (its folder cannot be made, or
// the flag is a directory) is an error in the log, never "requested"; the
// agent keeps running.
func TestRebootFlagUnwritable(t *testing.T) {
	for _, name := range []string{"folder is a file", "flag is a folder"} {
		synctest.Test(t, func(t *testing.T) {
			dir := t.TempDir()
			flag := filepath.Join(dir, "run", "reboot")
			if name == "folder is a file" {
				if err := os.WriteFile(filepath.Join(dir, "run"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.MkdirAll(flag, 0o755); err != nil {
				t.Fatal(err)
			}
			log := &records{}
			cfg := config.Default()
			cfg.Capture.Video = "test"
			r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.RebootFlag, d.Logger = flag, slog.New(log) })
			defer r.stop()
			synctest.Wait()
			if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdReboot, wire.Args{}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if log.count("ERROR cannot request a reboot") != 1 || log.count("INFO reboot requested") != 0 {
				t.Errorf("%s: log %v", name, log.msgs)
			}
			if r.state().Mode == "" {
				t.Errorf("%s: the agent stopped publishing", name)
			}
		})
	}
}

// A snapshot's decode may take a few seconds, not more than five.
func TestSnapshotWaitsFiveSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		f := r.front()
		f.snapshotTakes = 4 * time.Second
		if res, err := fleetSide(r.a).Command(context.Background(), wire.CmdSnapshot, wire.Args{}); err != nil || len(res.JPEG) == 0 {
			t.Errorf("a 4 s decode: %v", err)
		}
		f.snapshotTakes = 6 * time.Second
		start := time.Now()
		_, err := fleetSide(r.a).Command(context.Background(), wire.CmdSnapshot, wire.Args{})
		var ce *fleet.CommandError
		if !errors.As(err, &ce) || ce.Code != wire.CodeNoSignal || time.Since(start) != 5*time.Second {
			t.Errorf("a 6 s decode: %v after %s", err, time.Since(start))
		}
	})
}

// A config the fleet applied before a reboot is run again at start, and the
// state says its version; the meta names the kernel and boot from Root.
func TestStartsFromTheFleetsAppliedConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		state, root := t.TempDir(), t.TempDir()
		doc := `{"version":7,"config":{"capture":{"video":"test"},"outputs":[],"record":{"enabled":false}}}`
		if err := os.WriteFile(filepath.Join(state, "config.json"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "proc/sys/kernel/random"), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(root, "proc/sys/kernel/osrelease"), []byte("6.6.51-test\n"), 0o644)
		_ = os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("0b5e1d6c-boot\n"), 0o644)
		cfg := config.Default() // a file with an output and a recording
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) {
			d.StateDir, d.Root = state, root
			d.Health = health.New(health.Options{Sys: loadedSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)})
		})
		defer r.stop()
		synctest.Wait()
		if v := r.state().ConfigVersion; v != 7 {
			t.Errorf("config version %d, want the applied 7", v)
		}
		// The telemetry is the given collector's, and names the version too
		// (from the sample after start: the first may be taken before).
		time.Sleep(health.DefaultInterval + time.Second)
		synctest.Wait()
		if tel := fleetSide(r.a).Telemetry(); tel.Sys.Load1 != 7.25 || tel.ConfigVersion != 7 {
			t.Errorf("telemetry load %v, config version %d", tel.Sys.Load1, tel.ConfigVersion)
		}
		if p := r.rt().plan; len(p.Outputs) != 0 || p.Recorder != nil {
			t.Errorf("runs the file's outputs or recording: %+v %+v", p.Outputs, p.Recorder)
		}
		m := fleetSide(r.a).Meta()
		if m.Versions["kernel"] != "6.6.51-test" || m.BootID != "0b5e1d6c-boot" {
			t.Errorf("meta %+v", m)
		}
	})
}

// loadedSys is a machine under load.
type loadedSys struct{}

func (loadedSys) ReadSys() (health.SysReading, error) {
	return health.SysReading{Health: board.Health{Load1: 7.25, MemTotal: 4 << 30, MemAvailable: 1 << 30}}, nil
}

// An applied config that no longer validates is ignored: the file runs.
func TestInvalidAppliedConfigIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		state := t.TempDir()
		doc := `{"version":7,"config":{"encode":{"bitrate_kbps":5}}}`
		if err := os.WriteFile(filepath.Join(state, "config.json"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.StateDir = state })
		defer r.stop()
		synctest.Wait()
		if v := r.state().ConfigVersion; v != 0 {
			t.Errorf("config version %d, want the file's 0", v)
		}
		if p := r.rt().plan; len(p.Outputs) != len(cfg.Outputs) {
			t.Errorf("outputs %+v", p.Outputs)
		}
	})
}

// New fills what a caller leaves out: no logger or level is no log, no
// reason to fail.
func TestNewWithBareDeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		a := New(cfg, Deps{
			NewRuntime: func(p pipelines.Plan, _ *slog.Logger) Runtime {
				return &fakeRuntime{plan: p, events: make(chan pipelines.Event, 1), crash: make(chan error, 1)}
			},
			Health:   health.New(health.Options{Sys: fakeSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)}),
			StateDir: t.TempDir(),
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		synctest.Wait()
		if st := fleetSide(a).State(); st.Mode != wire.ModeStarting {
			t.Errorf("state %+v", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// DeviceID "auto" is made from the board serial (else the machine id): the
// last 12 letters and digits, leading zeros dropped.
func TestDeviceIDFromSerial(t *testing.T) {
	cases := []struct{ serial, want string }{
		{"00000000c0ffee01\n", "capbox-c0ffee01"},
		{"10000000ABCDEF12", "capbox-0000abcdef12"},
		{"AB:CD-EF", "capbox-abcdef"},
		{"123456789012", "capbox-123456789012"},
		{"0123456789abc", "capbox-123456789abc"},
		{"zz-99-AZ", "capbox-zz99az"},
	}
	for _, c := range cases {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte(c.serial), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := DeviceID("auto", root)
		if err != nil || got != c.want {
			t.Errorf("serial %q: %q, %v; want %q", c.serial, got, err, c.want)
		}
		if !wire.DeviceIDPattern.MatchString(got) {
			t.Errorf("%q is no valid device id", got)
		}
	}
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("::--::"), 0o644)
	if _, err := DeviceID("auto", root); err == nil {
		t.Error("a serial without letters or digits made an id")
	}
	if _, err := DeviceID("auto", t.TempDir()); err == nil {
		t.Error("no serial at all made an id")
	}
}

// Under systemd (NOTIFY_SOCKET, WATCHDOG_USEC): READY=1, the box's mode and
// mood in STATUS=, and watchdog pings while the supervisor goes round.
func TestSystemdHearsReadyStatusAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "400000")
	cfg := config.Default()
	cfg.Capture.Video = "test"
	cfg.Outputs, cfg.Record.Enabled = nil, false
	r := newBRig(t, cfg, board.Detection{}, nil)
	defer r.stop()

	heard := map[string]bool{}
	live := false
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !(heard["READY=1"] && heard["WATCHDOG=1"] && heard["STATUS=idle; happy: all 2 parts working"]) {
		if rt := r.rt(); rt != nil && !live {
			rt.setStats(pipelines.Stats{Video: liveVideo()})
			live = true
		} else if rt != nil {
			// Frames keep coming, so nothing stalls on a slow machine.
			rt.setStats(pipelines.Stats{Video: liveVideo()})
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			heard[line] = true
		}
	}
	for _, want := range []string{"READY=1", "WATCHDOG=1", "STATUS=idle; happy: all 2 parts working"} {
		if !heard[want] {
			t.Errorf("systemd never heard %q (heard %v)", want, heard)
		}
	}
}

// SIGHUP re-reads the file: a valid one is applied (the fleet's meta names
// its outputs, secrets shown as ***); one that does not validate is refused
// with every error and the old config keeps running.
func TestReloadAppliesTheFileOrKeepsTheOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "capbox.yaml")
		write := func(doc string) {
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("capture: {video: test}\noutputs: []\nrecord: {enabled: false}\n")
		cfg, err := config.Load(path, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		reload := make(chan struct{}, 1)
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Reload, d.ConfigPath = reload, path })
		defer r.stop()
		synctest.Wait()
		if outs := fleetSide(r.a).Meta().Outputs; len(outs) != 0 {
			t.Fatalf("outputs before the reload: %+v", outs)
		}

		write("capture: {video: test}\nrecord: {enabled: false}\noutputs:\n  - {name: room, url: \"srt://ingest.example.org:9000?passphrase=sekrit-pass-1\"}\n")
		reload <- struct{}{}
		synctest.Wait()
		outs := fleetSide(r.a).Meta().Outputs
		if len(outs) != 1 || outs[0].Name != "room" || outs[0].Proto != "srt" || !outs[0].Enabled ||
			strings.Contains(outs[0].URL, "sekrit") || !strings.Contains(outs[0].URL, "ingest.example.org:9000") {
			t.Errorf("meta outputs after the reload: %+v", outs)
		}
		if p := r.rt().Calls(); !slices.Equal(p, []string{"outputs 1"}) {
			t.Errorf("the reload did %v, want only the outputs set", p)
		}
		drainEvents(r.a)

		write("capture: {video: test}\nencode: {bitrate_kbps: 5, max_fps: 500}\n")
		reload <- struct{}{}
		synctest.Wait()
		evs := drainEvents(r.a)
		if len(evs) != 1 || evs[0].Type != wire.EvtConfigRejected ||
			!strings.Contains(evs[0].Msg, "encode.bitrate_kbps") || !strings.Contains(evs[0].Msg, "encode.max_fps") {
			t.Errorf("a bad file: events %+v", evs)
		}
		if outs := fleetSide(r.a).Meta().Outputs; len(outs) != 1 || outs[0].Name != "room" {
			t.Errorf("the old config does not keep running: %+v", outs)
		}
		if p := r.rt().Calls(); len(p) != 1 {
			t.Errorf("a refused file touched the pipeline: %v", p)
		}
	})
}

// The test pattern on the software encoder needs no trial; an error that
// every rung shares is reported once.
func TestNoTrialForTheTestPattern(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		var trials atomic.Int32
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) {
			d.Trial = func(context.Context, pipelines.Front, time.Duration) (time.Duration, error) {
				trials.Add(1)
				return 0, errors.New("no frame")
			}
		})
		defer r.stop()
		synctest.Wait()
		if rt := r.rt(); rt == nil || rt.plan.Encoder.Element != "x264enc" || trials.Load() != 0 {
			t.Errorf("test pattern: runtime %v, %d trials", rt != nil, trials.Load())
		}
	})
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Elements = noAAC{} })
		defer r.stop()
		synctest.Wait()
		alerts := strings.Join(r.state().Alerts, ";")
		if n := strings.Count(alerts, "no AAC encoder"); n != 1 {
			t.Errorf("the shared error is reported %d times: %s", n, alerts)
		}
	})
}

// A config from the fleet that fixes an unplannable one starts the pipeline
// at once; one that moves the capture re-plans the video onto the input.
func TestFleetConfigStartsAndMovesTheCapture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := hdmiConfig()
		cfg.Capture.Video = "/dev/video9" // not there
		r := newBRig(t, cfg, hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		if r.rt() != nil || r.state().Mode != wire.ModeError {
			t.Fatalf("a pin to a missing device runs: %+v", r.state())
		}
		drainEvents(r.a)
		sum, errs := fleetSide(r.a).ApplyConfig(context.Background(), 3, []byte(`{"capture":{"video":"test"},"outputs":[],"record":{"enabled":false}}`))
		if len(errs) > 0 || sum == "" {
			t.Fatalf("apply: %v", errs)
		}
		synctest.Wait()
		rt := r.front()
		if rt == nil || rt.plan.Video.Kind != pipelines.SourceTest || r.state().ConfigVersion != 3 {
			t.Fatalf("after the fix: runtime %v, state %+v", rt != nil, r.state())
		}
		if evs := eventTypes(drainEvents(r.a)); !slices.Equal(evs, []string{wire.EvtConfigApplied}) {
			t.Errorf("events %v", evs)
		}
		_, errs = fleetSide(r.a).ApplyConfig(context.Background(), 4, []byte(`{"capture":{"video":"auto"},"outputs":[],"record":{"enabled":false}}`))
		if len(errs) > 0 {
			t.Fatalf("apply: %v", errs)
		}
		synctest.Wait()
		if f := rt.lastFront(); f.Kind != pipelines.SourceV4L2 || f.Device != hdmiDetection().VideoInputs[0].StablePath {
			t.Errorf("capture moved to %s %s, want the HDMI input", f.Kind, f.Device)
		}
		if r.count() != 1 {
			t.Errorf("the pipeline was restarted for a capture change")
		}
	})
}

// records is a slog handler keeping what the agent logs, for the operator's
// warnings that have no other outcome.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }
func (r *records) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

type failingHotplug struct{}

func (failingHotplug) Run(context.Context) error {
	return errors.New("netlink socket: operation not permitted")
}
func (failingHotplug) Events() <-chan board.HotplugEvent { return nil }

// stoppingHotplug ends with its context's error, as a netlink reader does.
type stoppingHotplug struct{}

func (stoppingHotplug) Run(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stoppingHotplug) Events() <-chan board.HotplugEvent { return nil }

// Without hotplug events (no netlink in a container) the agent runs on and
// says so once; a hotplug watcher that stops with the agent says nothing.
func TestHotplugUnavailableIsAWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) {
			d.Logger = slog.New(log)
			d.NewHotplug = func(*slog.Logger) Hotplug { return failingHotplug{} }
		})
		synctest.Wait()
		if n := log.count("WARN hotplug events unavailable"); n != 1 {
			t.Errorf("warned %d times, want once", n)
		}
		if r.rt() == nil {
			t.Error("no pipeline without hotplug events")
		}
		r.stop()
	})
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) {
			d.Logger = slog.New(log)
			d.NewHotplug = func(*slog.Logger) Hotplug { return stoppingHotplug{} }
		})
		synctest.Wait()
		r.stop()
		synctest.Wait()
		if n := log.count("WARN hotplug events unavailable"); n != 0 {
			t.Errorf("a clean stop warned %d times", n)
		}
	})
}

// receivers stands in for the HDMI receivers' EDID memory.
type receivers struct {
	mu   sync.Mutex
	edid map[string]string
}

func (r *receivers) apply(det board.Detection, setting string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var done []string
	for _, in := range det.VideoInputs {
		if in.EDID {
			r.edid[in.Device] = setting
			done = append(done, in.Device)
		}
	}
	return done, nil
}

func (r *receivers) get(dev string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.edid[dev]
}

// The configured EDID is loaded into the receivers at start (a TC358743
// without one shows the source a dead display); "none" leaves them alone.
func TestEDIDLoadedUnlessNone(t *testing.T) {
	for _, setting := range []string{"default", "none"} {
		synctest.Test(t, func(t *testing.T) {
			rx := &receivers{edid: map[string]string{}}
			cfg := hdmiConfig()
			cfg.Capture.EDID = setting
			r := newBRig(t, cfg, hdmiDetection(), func(d *Deps) { d.ApplyEDID = rx.apply })
			defer r.stop()
			synctest.Wait()
			want := setting
			if setting == "none" {
				want = ""
			}
			if got := rx.get("/dev/video0"); got != want {
				t.Errorf("edid %s: the receiver holds %q, want %q", setting, got, want)
			}
		})
	}
}

// A box that dropped to the software rung does not climb back to hardware
// that failed: when software cannot run either, nothing runs (and it says so).
func TestNoClimbBackUpTheLadder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var softwareFails atomic.Bool
		r := newBRig(t, hdmiConfig(), hdmiDetection(), func(d *Deps) {
			d.Trial = func(_ context.Context, f pipelines.Front, _ time.Duration) (time.Duration, error) {
				if softwareFails.Load() && frontRung(f) == pipelines.RungSoftware {
					return 0, errors.New("no frame")
				}
				return time.Millisecond, nil
			}
		})
		defer r.stop()
		synctest.Wait()
		for range 2 * rungFailures {
			r.rt().events <- pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "video", Msg: "could not map buffer"}
		}
		synctest.Wait()
		if f := r.front().lastFront(); frontRung(f) != pipelines.RungSoftware {
			t.Fatalf("not on software after %d failures: %+v", 2*rungFailures, f)
		}
		softwareFails.Store(true)
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdRestartPipeline, wire.Args{}); err == nil || !strings.Contains(err.Error(), "rung software") {
			t.Fatalf("restart_pipeline when the software rung fails: %v, want the reason", err)
		}
		synctest.Wait()
		if st := r.state(); st.Mode != wire.ModeError || r.count() != 1 {
			t.Errorf("climbed back up: mode %s, %d runtimes", st.Mode, r.count())
		}
	})
}

// ethernet is a network whose cable is plugged in when up is set.
type ethernet struct{ up *atomic.Bool }

func (e ethernet) ReadNet() ([]wire.NetIf, error) {
	if !e.up.Load() {
		return []wire.NetIf{{If: "eth0", Oper: "down"}}, nil
	}
	return []wire.NetIf{{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000}}, nil
}

// A change in the box's health (a network link coming up) is logged once,
// not at every sample.
func TestHealthChangesLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cable := &atomic.Bool{}
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) {
			d.Logger = slog.New(log)
			d.Health = health.New(health.Options{Interval: time.Second, Sys: fakeSys{}, Net: ethernet{cable}, Logger: slog.New(slog.DiscardHandler)})
		})
		defer r.stop()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		before := log.count("INFO health")
		cable.Store(true)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := log.count("INFO health") - before; n != 1 {
			t.Errorf("health logged %d times in 5 samples after the cable came, want once", n)
		}
	})
}

// A pipeline that cannot be planned is retried quietly: the error is logged
// once, not at every retry.
func TestPlanErrorLoggedOncePerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Logger, d.Elements = slog.New(log), noAAC{} })
		defer r.stop()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := log.count("ERROR no pipeline can run; retrying"); n != 1 {
			t.Errorf("logged %d times over several retries, want once", n)
		}
	})
}

// Detection that finds only part of the box says so in the log and the
// agent runs on what was found; a complete one says nothing of the kind.
func TestIncompleteDetectionIsAWarning(t *testing.T) {
	for _, fails := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			log := &records{}
			r := newBRig(t, hdmiConfig(), hdmiDetection(), func(d *Deps) {
				d.Logger = slog.New(log)
				d.Detect = func(context.Context, config.Config) (board.Detection, error) {
					if fails {
						return hdmiDetection(), errors.New("/dev/video11: VIDIOC_QUERYCAP: EIO")
					}
					return hdmiDetection(), nil
				}
			})
			defer r.stop()
			synctest.Wait()
			// And again after a device change.
			r.hot <- board.HotplugEvent{Action: "change", Subsystem: "video4linux", Device: "/dev/video0"}
			synctest.Wait()
			want := 0
			if fails {
				want = 2
			}
			if n := log.count("WARN detection incomplete"); n != want {
				t.Errorf("detection error %v: warned %d times", fails, n)
			}
			if r.rt() == nil {
				t.Error("no pipeline on what was found")
			}
		})
	}
}

// A metrics address that cannot be used is an error in the log; the agent
// runs on without the endpoint.
func TestBadMetricsAddressIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Metrics.Listen = "no-port-here"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Logger = slog.New(log) })
		defer r.stop()
		synctest.Wait()
		if log.count("ERROR metrics endpoint") != 1 || r.rt() == nil {
			t.Errorf("metrics error logged %d times, runtime %v", log.count("ERROR metrics endpoint"), r.rt() != nil)
		}
	})
}

// A command the pipeline fails is answered with the failure and logged.
func TestFailedPipelineCommandIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Logger = slog.New(log) })
		defer r.stop()
		synctest.Wait()
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdStartOutput, wire.Args{Name: "live"}); err != nil {
			t.Fatal(err)
		}
		if n := log.count("WARN pipeline command failed"); n != 0 {
			t.Errorf("a command that worked was logged as failed %d times", n)
		}
		r.front().outputErr = errors.New("srtsink: state change failed")
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdStartOutput, wire.Args{Name: "live"}); err == nil {
			t.Error("a failed start_output answered ok")
		}
		if n := log.count("WARN pipeline command failed"); n != 1 {
			t.Errorf("a failed command logged %d times, want once", n)
		}
	})
}

// Three failures within two minutes, the first exactly two minutes before
// the third, still drop a rung.
func TestFallbackWindowIncludesTwoMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		for i := range rungFailures {
			if i > 0 {
				time.Sleep(rungWindow / (rungFailures - 1))
			}
			r.rt().events <- pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "video", Msg: "could not map buffer"}
			synctest.Wait()
		}
		if f := r.front().lastFront(); frontRung(f) != pipelines.RungMMAP {
			t.Errorf("three failures over exactly %s did not drop a rung", rungWindow)
		}
	})
}

// countingWatcher counts the signal watchers started and still running.
type countingWatcher struct {
	ch               chan board.SignalEvent
	started, running *atomic.Int32
}

func (w countingWatcher) Run(ctx context.Context) error {
	w.running.Add(1)
	defer w.running.Add(-1)
	<-ctx.Done()
	return nil
}
func (w countingWatcher) Events() <-chan board.SignalEvent { return w.ch }

// One watcher follows the HDMI input across re-plans; after the receiver
// comes back under another node, the formats it reports from there are
// the ones encoded (the input pinned by its stable path).
func TestOneWatcherFollowsTheInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var started, running atomic.Int32
		sig := make(chan board.SignalEvent, 4)
		// Pinned by its stable path, the input is found under any node.
		cfg := hdmiConfig()
		cfg.Capture.Video = hdmiDetection().VideoInputs[0].StablePath
		r := newBRig(t, cfg, hdmiDetection(), func(d *Deps) {
			d.NewSignalWatcher = func(string, string, *slog.Logger) SignalWatcher {
				started.Add(1)
				return countingWatcher{ch: sig, started: &started, running: &running}
			}
		})
		defer r.stop()
		synctest.Wait()
		formats := []board.Signal{
			{Width: 1280, Height: 720, FPS: 60, FPSExact: 60},
			{Width: 1920, Height: 1080, FPS: 25, FPSExact: 25},
			{Width: 1280, Height: 720, FPS: 50, FPSExact: 50},
		}
		for i, s := range formats {
			s.State = board.SignalLocked
			dev := "/dev/video0"
			if i > 0 {
				dev = "/dev/video4" // the receiver came back under another node
			}
			sig <- board.SignalEvent{Device: dev, Signal: s}
			synctest.Wait()
			f := r.front().lastFront()
			if f.Width != s.Width || f.Height != s.Height || f.FPS != s.FPS {
				t.Errorf("signal %dx%d@%d from %s: encoding %dx%d@%d", s.Width, s.Height, s.FPS, dev, f.Width, f.Height, f.FPS)
			}
		}
		if _, err := fleetSide(r.a).Command(context.Background(), wire.CmdRestartPipeline, wire.Args{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if started.Load() != 1 || running.Load() != 1 {
			t.Errorf("%d watchers started, %d running; want one across re-plans and a restart", started.Load(), running.Load())
		}
	})
}

// The fleet hears of a state change, and only of a change: a box whose
// state stays the same signals nothing, tick after tick.
func TestStateChangedOnlyOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		live := func() {
			rt.setStats(pipelines.Stats{Video: liveVideo(), Outputs: []pipelines.OutputStats{{Name: "live", State: pipelines.OutputUp, Bytes: uint64(time.Now().UnixNano())}},
				Recorder: pipelines.RecorderStats{Enabled: true, Recording: true}})
		}
		live()
		time.Sleep(2 * tickEvery)
		synctest.Wait()
		changed := fleetSide(r.a).StateChanged()
		select {
		case <-changed:
		default:
		}
		for range 5 {
			live()
			time.Sleep(tickEvery)
			synctest.Wait()
		}
		select {
		case <-changed:
			t.Errorf("state signalled as changed while it stayed %+v", r.state())
		default:
		}
		// A new config version alone is a change.
		if _, errs := fleetSide(r.a).ApplyConfig(context.Background(), 9, []byte(`{"capture":{"video":"test"}}`)); len(errs) > 0 {
			t.Fatal(errs)
		}
		synctest.Wait()
		select {
		case <-changed:
		default:
			t.Error("a new config version was not signalled")
		}
		if m := fleetSide(r.a).Meta(); m.TelemetryIntervalS != 10 {
			t.Errorf("meta telemetry interval %d s, want 10", m.TelemetryIntervalS)
		}
	})
}

// A config that validates but cannot be planned while the pipeline runs is
// refused, and the running one is untouched.
func TestUnplannableConfigRefusedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newBRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		_, errs := fleetSide(r.a).ApplyConfig(context.Background(), 5, []byte(`{"capture":{"video":"/dev/video9"},"outputs":[],"record":{"enabled":false}}`))
		if len(errs) != 1 || !strings.Contains(errs[0].Msg, "cannot plan a pipeline") {
			t.Errorf("errors %v", errs)
		}
		synctest.Wait()
		if st := r.state(); st.ConfigVersion != 0 || len(r.rt().Calls()) != 0 {
			t.Errorf("a refused config changed things: version %d, pipeline %v", st.ConfigVersion, r.rt().Calls())
		}
	})
}

// A changed EDID is loaded into the receivers; a capture moved to an input
// is planned on what detection finds now; a new slate text re-plans the
// slate; an unchanged recording folder keeps the telemetry's source.
func TestApplyFollowsEachSetting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receivers{edid: map[string]string{}}
		cfg := hdmiConfig()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, hdmiDetection(), func(d *Deps) {
			d.ApplyEDID = rx.apply
			d.Health = health.New(health.Options{Sys: loadedSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)})
		})
		defer r.stop()
		synctest.Wait()
		apply := func(v int64, doc string) {
			t.Helper()
			if _, errs := fleetSide(r.a).ApplyConfig(context.Background(), v, []byte(doc)); len(errs) > 0 {
				t.Fatalf("apply %d: %v", v, errs)
			}
			synctest.Wait()
		}
		base := `"outputs":[],"record":{"enabled":false}`
		apply(2, `{"capture":{"video":"test","edid":"/etc/capbox/edid-4k.bin"},`+base+`}`)
		if got := rx.get("/dev/video0"); got != "/etc/capbox/edid-4k.bin" {
			t.Errorf("the receiver holds EDID %q after a change", got)
		}
		// The signal changed since start (no hotplug event for it).
		det := hdmiDetection()
		det.VideoInputs[0].Signal = board.Signal{State: board.SignalLocked, Width: 1280, Height: 720, FPS: 60, FPSExact: 60}
		r.setDetection(det)
		apply(3, `{"capture":{"video":"auto","edid":"/etc/capbox/edid-4k.bin"},`+base+`}`)
		f := r.front()
		if v := f.lastFront(); v.Kind != pipelines.SourceV4L2 || v.Width != 1280 || v.FPS != 60 {
			t.Errorf("capture moved to the input at %s %dx%d@%d, want 1280x720@60", v.Kind, v.Width, v.Height, v.FPS)
		}
		apply(4, `{"capture":{"video":"auto","edid":"/etc/capbox/edid-4k.bin"},"slate":{"text":"Lunch until 2"},`+base+`}`)
		f.fmu.Lock()
		slate := f.slate
		f.fmu.Unlock()
		if slate == nil || !strings.Contains(fmt.Sprint(slate.Chain), "Lunch until 2") {
			t.Errorf("the slate was not re-planned with its new text: %+v", slate)
		}
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if tel := fleetSide(r.a).Telemetry(); tel.Sys.Load1 != 7.25 {
			t.Errorf("the telemetry's source changed without a new recording folder: load %v", tel.Sys.Load1)
		}
		apply(5, `{"capture":{"video":"auto","edid":"/etc/capbox/edid-4k.bin"},"fleet":{"telemetry_interval":"30s"},`+base+`}`)
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if tel := fleetSide(r.a).Telemetry(); tel.IntervalS != 30 {
			t.Errorf("telemetry every %d s after the change, want 30", tel.IntervalS)
		}
	})
}

// A box without metrics or a fleet logs no error about them.
func TestNoMetricsNoFleetNoErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Logger = slog.New(log) })
		defer r.stop()
		synctest.Wait()
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, m := range log.msgs {
			if strings.HasPrefix(m, "ERROR") {
				t.Errorf("logged %q", m)
			}
		}
	})
}

// SIGHUP with the config file gone refuses (the defaults do not replace
// the running config); with a good file, the log says it was reloaded.
func TestReloadWithoutTheFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &records{}
		path := filepath.Join(t.TempDir(), "capbox.yaml")
		doc := "capture: {video: test}\noutputs: []\nrecord: {enabled: false}\n"
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		reload := make(chan struct{}, 1)
		r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Reload, d.ConfigPath, d.Logger = reload, path, slog.New(log) })
		defer r.stop()
		synctest.Wait()
		reload <- struct{}{}
		synctest.Wait()
		if log.count("INFO config reloaded") != 1 || log.count("ERROR config reload refused, the old config keeps running") != 0 {
			t.Errorf("a good reload: %v", log.msgs)
		}
		drainEvents(r.a)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		reload <- struct{}{}
		synctest.Wait()
		if evs := eventTypes(drainEvents(r.a)); !slices.Equal(evs, []string{wire.EvtConfigRejected}) {
			t.Errorf("reload without the file: events %v", evs)
		}
		if p := r.rt().Calls(); len(p) != 0 {
			t.Errorf("the defaults replaced the running config: %v", p)
		}
	})
}

// The metrics endpoint turned on by a config from the fleet serves the
// box's moods on loopback. Real time: the endpoint is a real HTTP server.
func TestMetricsTurnedOnByTheFleet(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := config.Default()
	cfg.Capture.Video = "test"
	r := newBRig(t, cfg, board.Detection{}, nil)
	defer r.stop()
	for deadline := time.Now().Add(10 * time.Second); r.rt() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the fleet link starts once the agent runs
	}
	doc := fmt.Sprintf(`{"capture":{"video":"test"},"metrics":{"listen":%q}}`, addr)
	if _, errs := fleetSide(r.a).ApplyConfig(context.Background(), 2, []byte(doc)); len(errs) > 0 {
		t.Fatal(errs)
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		break
	}
	if !strings.Contains(body, `capbox_mood{`) {
		t.Errorf("no moods at http://%s/metrics: %q", addr, body)
	}
}

// While the box has a fleet link, its device id cannot change (the fleet
// knows it by that id); everything else can. Real time: the link dials a
// loopback port where no broker listens.
func TestDeviceIDFixedWhileLinked(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := "mqtt://" + l.Addr().String()
	_ = l.Close()
	cfg := config.Default()
	cfg.Capture.Video = "test"
	cfg.Device.ID = "room-1"
	cfg.Fleet.Broker = broker
	log := &records{}
	r := newBRig(t, cfg, board.Detection{}, func(d *Deps) { d.Logger = slog.New(log) })
	defer r.stop()
	for deadline := time.Now().Add(10 * time.Second); r.rt() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	doc := func(id string) []byte {
		return []byte(fmt.Sprintf(`{"device":{"id":%q},"capture":{"video":"test"},"fleet":{"broker":%q}}`, id, broker))
	}
	_, errs := fleetSide(r.a).ApplyConfig(context.Background(), 2, doc("room-2"))
	if len(errs) != 1 || errs[0].Path != "device.id" {
		t.Errorf("a new device id while linked: %v", errs)
	}
	if _, errs := fleetSide(r.a).ApplyConfig(context.Background(), 3, doc("room-1")); len(errs) != 0 {
		t.Errorf("the same device id: %v", errs)
	}
	// Neither touched the fleet settings: the link was not restarted.
	if n := log.count("INFO fleet link"); n != 1 {
		t.Errorf("the fleet link was started %d times", n)
	}
}
