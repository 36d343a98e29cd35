package gst

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"capbox/internal/backoff"
	"capbox/internal/loop"
	"capbox/pipelines"
	"capbox/pipelines/recdir"
)

// Options tune the runtime; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// OutputRetryMin/Max bound an output's reconnect backoff. The cap is
	// low (0.5 s) so an output is back within a second of its server; a
	// retry costs the dead server one refused connection.
	OutputRetryMin, OutputRetryMax time.Duration
	// FrontRetryMin/Max bound restarts of a failed video or audio source.
	FrontRetryMin, FrontRetryMax time.Duration
	// EOSTimeout bounds the clean stop (recorder closing its segment).
	EOSTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OutputRetryMin == 0 {
		o.OutputRetryMin = 200 * time.Millisecond
	}
	if o.OutputRetryMax == 0 {
		o.OutputRetryMax = 500 * time.Millisecond
	}
	if o.FrontRetryMin == 0 {
		o.FrontRetryMin = 500 * time.Millisecond
	}
	if o.FrontRetryMax == 0 {
		o.FrontRetryMax = 10 * time.Second
	}
	if o.EOSTimeout == 0 {
		o.EOSTimeout = 5 * time.Second
	}
}

// Engine runs a plan: fronts, the hub and every sink, each restarted on
// its own when it fails. All state is owned by the Run loop; the methods
// post work to it.
type Engine struct {
	opt  Options
	log  *slog.Logger
	plan pipelines.Plan
	hub  *hub
	// loop carries work to the Run loop; it refuses work once the engine
	// is stopping.
	loop   *loop.Loop
	events chan pipelines.Event

	// Owned by the Run loop.
	closing  bool
	video    videoTrack
	audio    audioTrack
	outputs  outputTable
	recorder *outputRun
	timers   map[string]*time.Timer
	// lastKeepFree is when the tick last ran keep_free.
	lastKeepFree time.Time

	statsMu sync.Mutex
	stats   pipelines.Stats
	// lastLoud is when the audio was last above the silence threshold.
	lastLoud time.Time
	// levelAt is when the level was last measured (Level).
	levelAt time.Time
	// rsync flushes the recording to storage every few seconds.
	rsync *recdir.Syncer
}

// New makes an engine for a plan; Run starts it.
func New(plan pipelines.Plan, opt Options) *Engine {
	opt.defaults()
	Init()
	e := &Engine{
		opt: opt, log: opt.Logger, plan: plan,
		loop: loop.New(16), events: make(chan pipelines.Event, 256),
		video:   videoTrack{retry: backoff.New(opt.FrontRetryMin, opt.FrontRetryMax)},
		audio:   audioTrack{retry: backoff.New(opt.FrontRetryMin, opt.FrontRetryMax)},
		outputs: outputTable{byName: map[string]*outputRun{}},
		timers:  map[string]*time.Timer{},
		rsync:   recdir.NewSyncer(opt.Logger),
	}
	e.hub = newHub(func(track string, old, now *front) {
		// Called on a streaming thread: hand over to the loop, never block.
		e.log.Debug("source took over", "track", track, "kind", now.plan.Kind)
		go e.loop.Post(func() { e.onSwitched(track, old, now) })
	})
	e.stats.Encoder = plan.Encoder
	return e
}

// Events delivers what happened; a slow reader loses the oldest.
func (e *Engine) Events() <-chan pipelines.Event { return e.events }

func (e *Engine) emit(kind pipelines.EventKind, part, msg string) {
	ev := pipelines.Event{Kind: kind, Part: part, Msg: msg, At: time.Now()}
	for {
		select {
		case e.events <- ev:
			return
		default:
			select {
			case <-e.events:
			default:
			}
		}
	}
}

// do runs f on the loop and waits for its error; ErrStopped once the
// engine has stopped.
func (e *Engine) do(ctx context.Context, f func() error) error {
	err := e.loop.Do(ctx, f)
	if errors.Is(err, loop.ErrStopped) {
		return ErrStopped
	}
	return err
}

// Run starts everything and keeps it running until ctx ends; then it
// stops cleanly (the last segment is closed) and returns nil.
func (e *Engine) Run(ctx context.Context) error {
	defer e.hub.close()
	e.startAudio()
	for _, o := range e.plan.Outputs {
		e.addOutput(o)
	}
	if e.plan.Recorder != nil {
		e.setRecorder(e.plan.Recorder, true)
	}
	e.startVideo()

	// A quick tick: an output that starts sending is reported up within
	// a quarter second; rates are computed over whole seconds.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			e.shutdown()
			return nil
		case f := <-e.loop.C():
			f()
		case <-tick.C:
			e.tick()
		}
	}
}

func (e *Engine) shutdown() {
	// From here on nothing starts: in-flight starts find the engine
	// stopped and stop what they made.
	e.closing = true
	e.loop.Stop()
	for _, t := range e.timers {
		t.Stop()
	}
	// Drain the encoders first, so the frames they hold reach the outputs
	// and the recording before those end.
	var wg sync.WaitGroup
	for _, f := range []*front{e.video.live, e.video.slate, e.audio.live, e.audio.silence} {
		if f != nil {
			wg.Add(1)
			go func() { defer wg.Done(); f.drain(2 * time.Second) }()
		}
	}
	wg.Wait()
	recording := e.recordingFile()
	runs := e.runs()
	for _, r := range runs {
		if r.sink == nil {
			continue
		}
		e.hub.removeSink(r.sink)
		wg.Add(1)
		go func(s *sinkPipe) {
			defer wg.Done()
			if err := s.finish(e.opt.EOSTimeout); err != nil {
				e.log.Warn("output did not end cleanly", "output", s.name, "err", err)
			}
		}(r.sink)
		r.sink = nil
	}
	wg.Wait()
	e.rsync.SyncNow(recording, 5*time.Second)
	// In parallel: a front whose teardown hangs (a capture stuck in the
	// driver) holds up the others by no more than its own bound.
	for _, f := range []*front{e.video.live, e.video.slate, e.audio.live, e.audio.silence} {
		if f != nil {
			e.hub.detach(f)
			wg.Add(1)
			go func() { defer wg.Done(); f.stop() }()
		}
	}
	wg.Wait()
	e.video.live, e.video.slate, e.audio.live, e.audio.silence = nil, nil, nil, nil
	// Run what was posted before the engine stopped: late starts stop
	// what they made, waiting callers get their answer.
	e.loop.Drain()
}

// runs lists every output, then the recorder.
func (e *Engine) runs() []*outputRun {
	rs := e.outputs.inOrder()
	if e.recorder != nil {
		rs = append(rs, e.recorder)
	}
	return rs
}

// later runs f on the loop after d; a newer timer of the same key replaces it.
func (e *Engine) later(key string, d time.Duration, f func()) {
	e.cancelTimer(key)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		e.loop.Post(func() {
			if e.timers[key] == t {
				delete(e.timers, key)
				f()
			}
		})
	})
	e.timers[key] = t
}

func (e *Engine) cancelTimer(key string) {
	if t, ok := e.timers[key]; ok {
		t.Stop()
		delete(e.timers, key)
	}
}

// tick is the loop's periodic work: the picture watch, the outputs' links
// and rates, and the recording's keep_free and flushes.
func (e *Engine) tick() {
	now := time.Now()
	e.watchPicture(now)
	e.checkCaptureBack()
	e.measureOutputs(now)
	e.tickRecording(now)
}
