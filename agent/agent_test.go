package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
	"capbox/pipelines"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRuntime records what the supervisor asks of the pipeline and lets
// a test feed it stats, events and a crash.
type fakeRuntime struct {
	mu     sync.Mutex
	plan   pipelines.Plan
	calls  []string
	stats  pipelines.Stats
	events chan pipelines.Event
	crash  chan error
	// gate, when set, holds SetOnAir until it is closed (a slate front
	// that takes seconds to build, as under emulation).
	gate chan struct{}
	// hang, when set, keeps Run from returning after its context ended
	// until it is closed (a teardown stuck in a driver).
	hang chan struct{}
}

func (f *fakeRuntime) record(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeRuntime) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeRuntime) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		f.mu.Lock()
		hang := f.hang
		f.mu.Unlock()
		if hang != nil {
			<-hang
		}
		f.record("stop")
		return nil
	case err := <-f.crash:
		return err
	}
}
func (f *fakeRuntime) Events() <-chan pipelines.Event { return f.events }
func (f *fakeRuntime) Stats() pipelines.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
func (f *fakeRuntime) setStats(s pipelines.Stats) { f.mu.Lock(); f.stats = s; f.mu.Unlock() }
func (f *fakeRuntime) SetOnAir(ctx context.Context, on pipelines.OnAir) error {
	call := fmt.Sprintf("slate %v", on.Slate)
	if on.Capture {
		call += " capture"
	}
	f.record(call)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.record("slate timed out")
			return ctx.Err()
		}
	}
	return nil
}
func (f *fakeRuntime) ReplaceVideo(_ context.Context, v pipelines.Front, e pipelines.EncoderInfo, _ *pipelines.Front) error {
	f.record(fmt.Sprintf("video %s %s %dx%d", e.Element, e.Rung, v.Width, v.Height))
	return nil
}
func (f *fakeRuntime) ReplaceAudio(context.Context, pipelines.Front) error {
	f.record("audio")
	return nil
}
func (f *fakeRuntime) SetOutputs(_ context.Context, o []pipelines.OutputPlan) error {
	f.record(fmt.Sprintf("outputs %d", len(o)))
	return nil
}
func (f *fakeRuntime) SetRecorder(context.Context, *pipelines.RecorderPlan) error {
	f.record("recorder")
	return nil
}
func (f *fakeRuntime) RestartOutput(_ context.Context, n string) error {
	f.record("restart " + n)
	return nil
}
func (f *fakeRuntime) StartOutput(context.Context, string) error { return nil }
func (f *fakeRuntime) StopOutput(context.Context, string) error  { return nil }
func (f *fakeRuntime) StartRecording(context.Context) error      { return nil }
func (f *fakeRuntime) StopRecording(context.Context) error       { return nil }
func (f *fakeRuntime) Snapshot(context.Context) ([]byte, error)  { return []byte{0xff, 0xd8}, nil }

type fakeWatcher struct{ ch chan board.SignalEvent }

func (w fakeWatcher) Run(ctx context.Context) error    { <-ctx.Done(); return nil }
func (w fakeWatcher) Events() <-chan board.SignalEvent { return w.ch }

type fakeSys struct{}

func (fakeSys) ReadSys() (health.SysReading, error) { return health.SysReading{}, nil }

type fakeNet struct{}

func (fakeNet) ReadNet() ([]wire.NetIf, error) { return nil, nil }

// rig is an agent wired to fakes.
type rig struct {
	t        *testing.T
	a        *Agent
	cancel   context.CancelFunc
	done     chan error
	mu       sync.Mutex
	runtimes []*fakeRuntime
	signal   chan board.SignalEvent
	det      board.Detection
	gate     chan struct{} // given to every runtime (fakeRuntime.gate)
}

// hdmiDetection is a Pi 4 with a TC358743 locked at 1080p30 and the
// bcm2835 encoder.
func hdmiDetection() board.Detection {
	in := board.VideoInput{
		Device: "/dev/video0", StablePath: "/dev/v4l/by-path/platform-csi-video-index0", Driver: "unicam",
		Kind: board.KindHDMICSI, Probed: true, DVTimings: true, EDID: true,
		Signal:  board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 30, FPSExact: 30},
		Formats: []board.Format{{FourCC: "UYVY"}},
	}
	return board.Detection{
		Board:       board.Board{ID: "rpi4", MaxHDMIFPS: 30},
		VideoInputs: []board.VideoInput{in},
		Encoders:    []board.Encoder{{Element: "v4l2h264enc", Device: "/dev/video11", Driver: "bcm2835-codec", Codec: "h264", Family: board.FamilyV4L2M2M, Hardware: true, Available: true}},
		Chosen:      board.Choice{VideoInput: "/dev/video0", Encoder: "v4l2h264enc", ZeroCopy: true, Reason: "test"},
	}
}

func newRig(t *testing.T, cfg config.Config, det board.Detection, elements board.ElementChecker) *rig {
	r := &rig{t: t, signal: make(chan board.SignalEvent, 16), det: det}
	deps := Deps{
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
		Detect: func(context.Context, config.Config) (board.Detection, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.det, nil
		},
		Elements: elements,
		NewRuntime: func(p pipelines.Plan, _ *slog.Logger) Runtime {
			f := &fakeRuntime{plan: p, events: make(chan pipelines.Event, 16), crash: make(chan error, 1)}
			r.mu.Lock()
			f.gate = r.gate
			r.runtimes = append(r.runtimes, f)
			r.mu.Unlock()
			return f
		},
		NewSignalWatcher: func(string, string, *slog.Logger) SignalWatcher { return fakeWatcher{r.signal} },
		Health:           health.New(health.Options{Sys: fakeSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)}),
		StateDir:         t.TempDir(),
		Root:             t.TempDir(),
	}
	r.a = New(cfg, deps)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.a.Run(ctx) }()
	return r
}

func (r *rig) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
}

func (r *rig) rt() *fakeRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runtimes) == 0 {
		return nil
	}
	return r.runtimes[len(r.runtimes)-1]
}

func (r *rig) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runtimes)
}

func (r *rig) state() wire.State { return box{r.a}.State() }

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testSourceRig runs the agent on the test pattern with the default config.
func testSourceRig(t *testing.T) *rig {
	cfg := config.Default()
	cfg.Capture.Video = "test"
	return newRig(t, cfg, board.Detection{}, nil)
}

func hdmiConfig() config.Config {
	cfg := config.Default()
	cfg.Outputs = nil
	cfg.Record.Enabled = false
	return cfg
}

// Signal loss: slate on air and the state says so within the watcher's
// report; signal back at a new format: the video is re-planned and live.
func TestSignalLossAndReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		if st := r.state(); st.Mode != wire.ModeStarting || st.Capture.Signal != "locked" || st.Capture.Format != "1080p30" {
			t.Fatalf("at start: %+v", st)
		}
		rt := r.rt()
		rt.setStats(pipelines.Stats{Video: pipelines.FrontStats{Frames: 10, Running: true, LastFrame: time.Now()}})
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Mode != wire.ModeIdle || st.Mood != wire.MoodHappy {
			t.Fatalf("running: %+v", st)
		}

		r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalNone}, At: time.Now()}
		synctest.Wait()
		if got := rt.Calls(); !slices.Contains(got, "slate true") {
			t.Fatalf("no slate on signal loss: %v", got)
		}
		if st := r.state(); st.Mode != wire.ModeNoSignal || st.Moods[wire.PartCapture] != wire.MoodHungry || st.Capture.Signal != "no_signal" {
			t.Errorf("no signal: %+v", st)
		}
		ev := <-r.a.pub.events
		if ev.Type != wire.EvtSignalLost {
			t.Errorf("event %+v", ev)
		}

		r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalLocked, Width: 1280, Height: 720, FPS: 30, FPSExact: 30}}
		synctest.Wait()
		calls := rt.Calls()
		if !slices.Contains(calls, "video v4l2h264enc dmabuf-import 1280x720") || calls[len(calls)-1] != "slate false" {
			t.Errorf("signal back at 720p: %v", calls)
		}
		if st := r.state(); st.Capture.Format != "720p30" || st.Mode == wire.ModeNoSignal {
			t.Errorf("after signal back: %+v", st)
		}
	})
}

// A dongle's flat picture, judged by the runtime: the state says no signal
// with the capture hungry, the fleet hears signal_lost and, when the
// picture returns, signal_locked; the agent puts the slate on air with the
// capture kept running (to see the picture come back), then live again.
func TestFlatPictureIsNoSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		live := pipelines.Stats{Video: pipelines.FrontStats{Frames: 10, Running: true, LastFrame: time.Now()}}
		rt.setStats(live)
		time.Sleep(tickEvery)
		synctest.Wait()
		flat := live
		flat.Video.NoPicture, flat.Slate = true, true
		rt.setStats(flat)
		rt.events <- pipelines.Event{Kind: pipelines.EventPictureLost, Part: "video", Msg: "flat picture (mean luma 16 of 255)"}
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Mode != wire.ModeNoSignal || st.Moods[wire.PartCapture] != wire.MoodHungry || st.Capture.Signal != "no_signal" {
			t.Errorf("flat picture: %+v", st)
		}
		if ev := <-r.a.pub.events; ev.Type != wire.EvtSignalLost || ev.Data["picture"] != "flat" {
			t.Errorf("event %+v", ev)
		}
		rt.setStats(live)
		rt.events <- pipelines.Event{Kind: pipelines.EventPictureBack, Part: "video"}
		time.Sleep(tickEvery)
		synctest.Wait()
		if st := r.state(); st.Mode == wire.ModeNoSignal || st.Moods[wire.PartCapture] != wire.MoodHappy {
			t.Errorf("picture back: %+v", st)
		}
		if ev := <-r.a.pub.events; ev.Type != wire.EvtSignalLocked {
			t.Errorf("event %+v", ev)
		}
		if got := rt.Calls(); !slices.Equal(got, []string{"slate true capture", "slate false"}) {
			t.Errorf("on-air choices %v, want the slate with the capture running, then live", got)
		}
	})
}

// The state follows the signal at once, not when the pipeline has finished
// switching: starting the slate takes seconds under load (a new encoder),
// and the fleet must hear of the loss (and the return) within the
// watcher's report.
func TestStateDoesNotWaitForTheSlate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		rt.setStats(pipelines.Stats{Video: pipelines.FrontStats{Frames: 10, Running: true, LastFrame: time.Now()}})
		time.Sleep(tickEvery)
		synctest.Wait()

		gate := make(chan struct{})
		rt.mu.Lock()
		rt.gate = gate
		rt.mu.Unlock()
		r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalNone}}
		synctest.Wait()
		if got := rt.Calls(); got[len(got)-1] != "slate true" {
			t.Fatalf("the slate is not being switched on: %v", got)
		}
		if st := r.state(); st.Mode != wire.ModeNoSignal {
			t.Errorf("while the slate starts, the state says %q, want %q", st.Mode, wire.ModeNoSignal)
		}
		gate <- struct{}{}
		synctest.Wait()

		r.signal <- board.SignalEvent{Device: "/dev/video0", Signal: board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 30, FPSExact: 30}}
		synctest.Wait()
		if got := rt.Calls(); got[len(got)-1] != "slate false" {
			t.Fatalf("the live picture is not being switched back: %v", got)
		}
		if st := r.state(); st.Mode == wire.ModeNoSignal {
			t.Errorf("while the live picture starts, the state still says %q", st.Mode)
		}
		close(gate)
		synctest.Wait()
		if got := rt.Calls(); slices.Contains(got, "slate timed out") {
			t.Errorf("a slate switch timed out: %v", got)
		}
	})
}

// A flapping input (lost/locked many times) is followed every time, with
// one slate switch per change and no leaked goroutine.
func TestFlappingInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		locked := board.Signal{State: board.SignalLocked, Width: 1920, Height: 1080, FPS: 30, FPSExact: 30}
		for range 50 {
			r.signal <- board.SignalEvent{Signal: board.Signal{State: board.SignalNoLock}}
			time.Sleep(100 * time.Millisecond)
			r.signal <- board.SignalEvent{Signal: locked}
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		on, off := 0, 0
		for _, c := range r.rt().Calls() {
			switch c {
			case "slate true":
				on++
			case "slate false":
				off++
			}
		}
		if on != 50 || off != 50 {
			t.Errorf("slate on %d, off %d times, want 50 each", on, off)
		}
		if r.count() != 1 {
			t.Errorf("the pipeline was restarted %d times for signal changes", r.count()-1)
		}
	})
}

// The runtime dies: the agent restarts it after a jittered, growing
// delay, keeps reporting, and never returns on its own.
func TestRuntimeCrashIsRestartedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		defer r.stop()
		synctest.Wait()
		var gaps []time.Duration
		for i := range 8 {
			rt := r.rt()
			rt.crash <- errors.New("boom")
			died := time.Now()
			for r.count() == i+1 {
				time.Sleep(10 * time.Millisecond)
			}
			gaps = append(gaps, time.Since(died))
			if st := r.state(); i == 0 && st.Mode != wire.ModeError && r.count() == 1 {
				t.Errorf("while down: %+v", st)
			}
		}
		select {
		case err := <-r.done:
			t.Fatalf("Run returned on its own: %v", err)
		default:
		}
		for i, g := range gaps {
			hi := min(time.Second<<i, time.Minute) + 20*time.Millisecond
			lo := time.Duration(float64(min(time.Second<<i, time.Minute)) * 0.8)
			if g < lo || g > hi {
				t.Errorf("restart %d after %s, want %s..%s", i, g, lo, hi)
			}
		}
	})
}

// Nothing can be planned (no AAC encoder installed): the agent reports
// an error state, keeps retrying and still answers.
func TestUnplannablePipelineIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		r := newRig(t, cfg, board.Detection{}, noAAC{})
		defer r.stop()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		st := r.state()
		if st.Mode != wire.ModeError || st.Moods[wire.PartEncoder] != wire.MoodSad || !strings.Contains(strings.Join(st.Alerts, ";"), "no AAC encoder") {
			t.Errorf("state %+v", st)
		}
		if r.rt() != nil {
			t.Error("a runtime was started without a plan")
		}
	})
}

type noAAC struct{}

func (noAAC) HasElement(name string) bool { return name != "voaacenc" && name != "avenc_aac" }

// A video front that delivers nothing for StallAfter is lost and restarted.
func TestStalledVideoIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Capture.Video = "test"
		cfg.Outputs = nil
		r := newRig(t, cfg, board.Detection{}, nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		rt.setStats(pipelines.Stats{Video: pipelines.FrontStats{Kind: pipelines.SourceTest, Frames: 100, Running: true, LastFrame: time.Now()}})
		time.Sleep(2*StallAfter + 2*tickEvery)
		synctest.Wait()
		if st := r.state(); st.Moods[wire.PartEncoder] != wire.MoodLost {
			t.Errorf("moods after a stall: %+v", st.Moods)
		}
		n := 0
		for _, c := range rt.Calls() {
			if strings.HasPrefix(c, "video ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("video restarted %d times, want once: %v", n, rt.Calls())
		}
	})
}

// Hardware that keeps failing at run time drops to the next rung, and
// the fleet hears of it.
func TestHardwareFailuresFallToNextRung(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, hdmiConfig(), hdmiDetection(), nil)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		if rt.plan.Encoder.Rung != pipelines.RungDMABuf {
			t.Fatalf("starts on %s", rt.plan.Encoder.Rung)
		}
		for range rungFailures {
			rt.events <- pipelines.Event{Kind: pipelines.EventVideoFailed, Part: "video", Msg: "could not map buffer"}
			time.Sleep(10 * time.Second)
		}
		synctest.Wait()
		if c := rt.Calls(); !slices.Contains(c, "video v4l2h264enc mmap-copy 1920x1080") {
			t.Errorf("no fall to mmap: %v", c)
		}
		found := false
		for len(r.a.pub.events) > 0 {
			if ev := <-r.a.pub.events; ev.Type == wire.EvtEncoderFallback {
				found = ev.Data["to"] == "mmap-copy"
			}
		}
		if !found {
			t.Error("no encoder_fallback event")
		}
	})
}

// A config change restarts only what changed; a bad one changes nothing.
func TestApplyRestartsOnlyWhatChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		defer r.stop()
		synctest.Wait()
		rt := r.rt()
		b := box{r.a}
		doc := `{"capture":{"video":"test"},"outputs":[{"name":"live","url":"srt://:8890?mode=listener"},{"name":"yt","url":"rtmp://127.0.0.1/live/key"}]}`
		sum, errs := b.ApplyConfig(context.Background(), 2, []byte(doc))
		if len(errs) > 0 || len(sum) != 64 {
			t.Fatalf("apply: %v %q", errs, sum)
		}
		if got := rt.Calls(); !slices.Equal(got, []string{"outputs 2"}) {
			t.Errorf("an output change did %v, want only the outputs", got)
		}
		synctest.Wait() // the loop publishes the state after the apply returned
		if r.state().ConfigVersion != 2 {
			t.Errorf("config version %d", r.state().ConfigVersion)
		}
		_, errs = b.ApplyConfig(context.Background(), 3, []byte(`{"encode":{"bitrate_kbps":5},"outputs":[{"name":"x","url":"ftp://x"}]}`))
		if len(errs) != 2 {
			t.Errorf("bad config: %v", errs)
		}
		if got := rt.Calls(); len(got) != 1 {
			t.Errorf("a refused config touched the pipeline: %v", got)
		}
		_, errs = b.ApplyConfig(context.Background(), 4, []byte(`{"capture":{"video":"test"},"encode":{"bitrate_kbps":2500},"outputs":[{"name":"live","url":"srt://:8890?mode=listener"},{"name":"yt","url":"rtmp://127.0.0.1/live/key"}]}`))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if got := rt.Calls(); len(got) != 2 || !strings.HasPrefix(got[1], "video x264enc") {
			t.Errorf("a bitrate change did %v, want only the video", got)
		}
	})
}

// restart_pipeline 1000 times: every runtime stops, nothing accumulates.
func TestThousandRestartsLeakNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		synctest.Wait()
		b := box{r.a}
		for range 1000 {
			if _, err := b.Command(context.Background(), wire.CmdRestartPipeline, wire.Args{}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if r.count() != 1001 {
			t.Fatalf("%d runtimes", r.count())
		}
		for i, rt := range r.runtimes[:1000] {
			if c := rt.Calls(); len(c) == 0 || c[len(c)-1] != "stop" {
				t.Fatalf("runtime %d not stopped: %v", i, c)
			}
		}
		r.stop()
	})
}

func TestCommandsAnswerTyped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		defer r.stop()
		synctest.Wait()
		b := box{r.a}
		ctx := context.Background()
		if _, err := b.Command(ctx, wire.CmdRestartOutput, wire.Args{Name: "nope"}); err == nil || !strings.Contains(err.Error(), wire.CodeNoOutput) {
			t.Errorf("unknown output: %v", err)
		}
		if _, err := b.Command(ctx, wire.CmdRestartOutput, wire.Args{Name: "live"}); err != nil {
			t.Errorf("restart_output: %v", err)
		}
		res, err := b.Command(ctx, wire.CmdSnapshot, wire.Args{})
		if err != nil || len(res.JPEG) == 0 {
			t.Errorf("snapshot: %v", err)
		}
		if _, err := b.Command(ctx, wire.CmdSetLogLevel, wire.Args{Level: "debug"}); err != nil || r.a.deps.LogLevel.Level() != slog.LevelDebug {
			t.Errorf("set_log_level: %v", err)
		}
		if _, err := b.Command(ctx, wire.CmdReboot, wire.Args{}); err == nil {
			t.Error("reboot without a flag file path must be unsupported")
		}
	})
}

func TestDeviceID(t *testing.T) {
	if id, _ := DeviceID("room-1", "/"); id != "room-1" {
		t.Errorf("configured id: %s", id)
	}
}
