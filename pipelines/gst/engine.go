package gst

/*
#include "capbox.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"capbox/internal/backoff"
	"capbox/pipelines"
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
	opt    Options
	log    *slog.Logger
	plan   pipelines.Plan
	hub    *hub
	cmds   chan func()
	events chan pipelines.Event
	// stopped is closed when Run has returned; posts after it are dropped.
	stopped chan struct{}

	// Owned by the Run loop.
	closing                     bool
	live, slate, audio, silence *front
	// onAir is the agent's choice for the video track (SetOnAir).
	onAir pipelines.OnAir
	// pictureLost: the live front's picture watch saw a flat picture for
	// flatFor (reported; the agent decides what goes on air). flatSince
	// and judged follow the watch of pictureOf.
	pictureLost                bool
	flatSince                  time.Time
	judged                     uint64
	pictureOf                  *front
	liveRetry                  *backoff.Backoff
	liveFailed                 bool
	videoFailing, audioFailing bool
	audioRetry                 *backoff.Backoff
	outputs                    map[string]*outputRun
	order                      []string
	recorder                   *outputRun
	timers                     map[string]*time.Timer

	statsMu sync.Mutex
	stats   pipelines.Stats
	// lastLoud is when the audio was last above the silence threshold.
	lastLoud     time.Time
	lastKeepFree time.Time
	// rsync flushes the recording to storage every few seconds.
	rsync recordingSync
}

// outputRun is one output's (or the recorder's) life.
type outputRun struct {
	plan     pipelines.Sink
	spec     pipelines.OutputSpec
	rec      *pipelines.RecorderPlan
	sink     *sinkPipe
	enabled  bool
	retry    *backoff.Backoff
	st       pipelines.OutputStats
	lastByte uint64
	lastTick time.Time
	failing  bool
	starting bool
	// srtSent and srtSentAt follow an SRT caller's bytes sent to its peer.
	srtSent   int64
	srtSentAt time.Time
}

// New makes an engine for a plan; Run starts it.
func New(plan pipelines.Plan, opt Options) *Engine {
	opt.defaults()
	Init()
	e := &Engine{
		opt: opt, log: opt.Logger, plan: plan,
		cmds: make(chan func(), 16), events: make(chan pipelines.Event, 256),
		stopped: make(chan struct{}),
		outputs: map[string]*outputRun{}, timers: map[string]*time.Timer{},
		liveRetry:  backoff.New(opt.FrontRetryMin, opt.FrontRetryMax),
		audioRetry: backoff.New(opt.FrontRetryMin, opt.FrontRetryMax),
	}
	e.hub = newHub(func(track string, old, now *front) {
		// Called on a streaming thread: hand over to the loop, never block.
		e.log.Debug("source took over", "track", track, "kind", now.plan.Kind)
		go e.post(func() { e.onSwitched(track, old, now) })
	})
	e.stats.Encoder = plan.Encoder
	e.rsync.log = e.log
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

// post hands f to the loop; false when the engine has stopped.
func (e *Engine) post(f func()) bool {
	select {
	case e.cmds <- f:
		return true
	case <-e.stopped:
		return false
	}
}

// do runs f on the loop and waits for its error.
func (e *Engine) do(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	select {
	case e.cmds <- func() { errc <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrStopped
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
		case f := <-e.cmds:
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
	close(e.stopped)
	for _, t := range e.timers {
		t.Stop()
	}
	// Drain the encoders first, so the frames they hold reach the outputs
	// and the recording before those end.
	var wg sync.WaitGroup
	for _, f := range []*front{e.live, e.slate, e.audio, e.silence} {
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
	e.rsync.flush(recording, 5*time.Second)
	// In parallel: a front whose teardown hangs (a capture stuck in the
	// driver) holds up the others by no more than its own bound.
	for _, f := range []*front{e.live, e.slate, e.audio, e.silence} {
		if f != nil {
			e.hub.detach(f)
			wg.Add(1)
			go func() { defer wg.Done(); f.stop() }()
		}
	}
	wg.Wait()
	e.live, e.slate, e.audio, e.silence = nil, nil, nil, nil
	// Run what was posted before the engine stopped: late starts stop
	// what they made, waiting callers get their answer.
	for {
		select {
		case f := <-e.cmds:
			f()
		default:
			return
		}
	}
}

func (e *Engine) runs() []*outputRun {
	var rs []*outputRun
	for _, n := range e.order {
		rs = append(rs, e.outputs[n])
	}
	if e.recorder != nil {
		rs = append(rs, e.recorder)
	}
	return rs
}

// ---- video ---------------------------------------------------------------

// startVideo brings up what the video track should carry now.
func (e *Engine) startVideo() {
	if e.closing {
		return
	}
	// What goes on air is the agent's choice (SetOnAir); a plan without
	// an input has only the slate.
	noInput := e.plan.Video.Kind == pipelines.SourceSlate
	wantCapture := (!e.onAir.Slate || e.onAir.Capture) && !noInput
	if wantCapture && e.live == nil && !e.liveFailed {
		f, err := e.startFront("video", e.plan.Video)
		if err != nil {
			e.videoFailed(err)
		} else {
			e.live = f
		}
	}
	needSlate := e.onAir.Slate || noInput
	if needSlate && e.slate == nil && e.plan.Slate != nil {
		f, err := e.startFront("video", *e.plan.Slate)
		if err != nil {
			e.log.Error("slate failed to start", "err", err)
			e.emit(pipelines.EventVideoFailed, "slate", err.Error())
		} else {
			e.slate = f
		}
	}
	if !needSlate && e.live != nil {
		e.hub.setPending(e.live)
	} else if e.slate != nil {
		e.hub.setPending(e.slate)
	}
}

// startFront builds a front and starts it off the loop (a capture device
// can take seconds to start, and the loop must keep switching and
// restarting other parts meanwhile).
func (e *Engine) startFront(trackName string, plan pipelines.Front) (*front, error) {
	f, err := newFront(trackName, plan, e.hub)
	if err != nil {
		return nil, err
	}
	e.hub.setPending(f)
	go func() {
		err := f.start()
		if !e.post(func() { e.frontStarted(f, err) }) {
			f.stop()
		}
	}()
	return f, nil
}

// owns reports whether f is still one of the engine's fronts.
func (e *Engine) owns(f *front) bool {
	return f == e.live || f == e.slate || f == e.audio || f == e.silence
}

func (e *Engine) frontStarted(f *front, err error) {
	if !e.owns(f) || e.closing {
		e.hub.detach(f)
		f.stop() // replaced or stopped while it was starting
		return
	}
	if err != nil {
		e.onFrontMsg(f, busMsg{err: err})
		return
	}
	go e.watchFront(f)
	if f == e.live {
		if adj := readBackEncoder(f); len(adj) > 0 {
			e.log.Warn("encoder runs with other settings than asked", "adjusted", strings.Join(adj, "; "))
			e.statsMu.Lock()
			e.stats.Encoder.Adjusted = adj
			e.statsMu.Unlock()
		}
	}
}

// readBackEncoder compares the encoder's numeric properties with what the
// plan set: some encoders clamp or ignore values without an error.
func readBackEncoder(f *front) []string {
	el := f.pipe.element("encoder")
	if el == nil {
		return nil
	}
	var adjusted []string
	for _, pe := range f.plan.Chain {
		if pe.Name != "encoder" {
			continue
		}
		for _, p := range pe.Props {
			if p.Secret != nil || p.Literal {
				continue
			}
			got, ok := propString(el, p.Name)
			if !ok || sameValue(got, p.Value) {
				continue
			}
			adjusted = append(adjusted, fmt.Sprintf("%s: asked %s, runs %s", p.Name, p.Value, got))
		}
	}
	return adjusted
}

// sameValue compares serialized numbers and booleans.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	return ea == nil && eb == nil && math.Abs(fa-fb) < 1e-6
}

// watchFront forwards a front's bus to the loop until it stops.
func (e *Engine) watchFront(f *front) {
	for {
		select {
		case m := <-f.pipe.msgs:
			if m.err == nil && !m.eos && m.level == nil {
				continue
			}
			e.post(func() { e.onFrontMsg(f, m) })
		case <-f.pipe.done:
			return
		}
	}
}

func (e *Engine) onFrontMsg(f *front, m busMsg) {
	if m.level != nil {
		e.onLevel(*m.level)
		return
	}
	err := m.err
	if m.eos {
		err = errors.New("source ended")
	}
	switch f {
	case e.live:
		// Report and bring the slate up first: the failed capture's
		// teardown can take seconds in a struggling driver. The retry
		// runs on this loop, so it starts only after the device is let go.
		e.hub.detach(f)
		e.live = nil
		e.videoFailed(err)
		e.startVideo()
		f.stop()
	case e.slate:
		e.hub.detach(f)
		f.stop()
		e.slate = nil
		e.emit(pipelines.EventVideoFailed, "slate", err.Error())
		e.later("slate", e.liveRetry.Next(), e.startVideo)
	case e.audio, e.silence:
		e.audioFailed(f, err)
	}
}

// videoFailed reports the failure and retries the capture; a failure
// streak is logged and reported once, until the capture delivers again.
// The agent decides what goes on air meanwhile.
func (e *Engine) videoFailed(err error) {
	if !e.videoFailing {
		e.log.Warn("video source failed", "err", err)
		e.emit(pipelines.EventVideoFailed, "video", err.Error())
		e.videoFailing = true
	}
	e.liveFailed = true
	e.later("video", e.liveRetry.Next(), func() {
		e.liveFailed = false
		e.startVideo()
	})
}

// onSwitched runs when a front took over its track: the old front stops.
func (e *Engine) onSwitched(trackName string, old, now *front) {
	if trackName == "audio" {
		if old != nil && old != now && !e.owns(old) {
			e.cancelTimer(retireKey(old))
			e.hub.detach(old)
			old.stop()
		}
		if now == e.audio {
			e.audioFailing = false
			e.audioRetry.Reset()
		}
		if now == e.audio && e.silence != nil {
			e.hub.detach(e.silence)
			e.silence.stop()
			e.silence = nil
		}
		return
	}
	if old != nil && old != now && !e.owns(old) {
		e.cancelTimer(retireKey(old))
		e.hub.detach(old)
		old.stop()
	}
	switch now {
	case e.live:
		e.liveRetry.Reset()
		e.liveFailed, e.videoFailing = false, false
		e.emit(pipelines.EventVideoStarted, "video", "")
		if e.slate != nil {
			e.hub.detach(e.slate)
			e.slate.stop()
			e.slate = nil
			e.emit(pipelines.EventSlateOff, "slate", "")
		}
	case e.slate:
		e.emit(pipelines.EventSlateOn, "slate", "")
		if e.live != nil && !e.onAir.Capture {
			e.hub.detach(e.live)
			e.live.stop()
			e.live = nil
		}
	}
}

// A picture is flat when its sampled luma spreads over at most flatSpread
// steps (black or a plain colour spreads over 0-3; anything drawn on it,
// even a small disc on black, over 100 or more). It counts as no signal
// after flatFor: a fade to black between slides is shorter. A slide that
// is one plain colour for longer also shows the slate.
const (
	flatSpread = 12
	flatFor    = 3 * time.Second
)

// watchPicture judges the live front's picture, for inputs that cannot
// report their signal, and puts the slate on air while it is flat.
func (e *Engine) watchPicture(now time.Time) {
	if e.live != e.pictureOf {
		e.pictureOf, e.judged, e.flatSince = e.live, 0, time.Time{}
	}
	if e.live == nil {
		return
	}
	// A front without a watch (the input changed to one that reports its
	// signal) clears what an earlier one found.
	r, watched := e.live.readPicture()
	if watched && r.judged == e.judged {
		return
	}
	lost := false
	if watched {
		e.judged = r.judged
		flat := r.spread <= flatSpread
		switch {
		case !flat:
			e.flatSince = time.Time{}
		case e.flatSince.IsZero():
			e.flatSince = now
		}
		lost = flat && now.Sub(e.flatSince) >= flatFor
	}
	if lost == e.pictureLost {
		return
	}
	e.pictureLost = lost
	e.statsMu.Lock()
	e.stats.Video.NoPicture = lost
	e.statsMu.Unlock()
	if lost {
		e.log.Warn("no picture: the input sends a flat picture", "mean_luma", r.mean, "spread", r.spread)
		e.emit(pipelines.EventPictureLost, "video", fmt.Sprintf("flat picture (mean luma %d of 255)", r.mean))
	} else {
		e.log.Info("picture back", "spread", r.spread)
		e.emit(pipelines.EventPictureBack, "video", "")
	}
}

// checkCaptureBack reports a live capture that had failed and delivers
// frames again off air (the agent keeps the slate on and the capture
// running until it hears of it).
func (e *Engine) checkCaptureBack() {
	if !e.videoFailing || e.live == nil || e.hub.activeFront("video") == e.live || e.live.delivered() == 0 {
		return
	}
	e.videoFailing = false
	e.liveRetry.Reset()
	e.log.Info("video source delivers again")
	e.emit(pipelines.EventCaptureRunning, "video", "")
}

func retireKey(f *front) string { return fmt.Sprintf("retire:%d", f.gen) }

// SetOnAir carries out the agent's choice for the video track: the live
// picture, or the slate with or without the capture kept running.
func (e *Engine) SetOnAir(ctx context.Context, on pipelines.OnAir) error {
	return e.do(ctx, func() error {
		if e.onAir == on {
			return nil
		}
		wasCapturing := !e.onAir.Slate || e.onAir.Capture
		e.onAir = on
		if !on.Slate && !wasCapturing {
			// The agent saw the input come back: try the capture at once.
			e.liveFailed = false
			e.liveRetry.Reset()
			e.cancelTimer("video")
		}
		if on.Slate && !on.Capture && e.live != nil && e.slate != nil && e.hub.activeFront("video") == e.slate {
			// The slate is on air already: the capture has nothing to do.
			e.hub.detach(e.live)
			e.live.stop()
			e.live = nil
		}
		e.startVideo()
		return nil
	})
}

// ReplaceVideo swaps the live video front (a new rung, a new resolution);
// outputs and the recording keep running.
func (e *Engine) ReplaceVideo(ctx context.Context, f pipelines.Front, enc pipelines.EncoderInfo, slate *pipelines.Front) error {
	return e.do(ctx, func() error {
		e.plan.Video, e.plan.Encoder = f, enc
		if slate != nil {
			e.plan.Slate = slate
		}
		e.statsMu.Lock()
		e.stats.Encoder = enc
		e.statsMu.Unlock()
		old := e.live
		e.live, e.liveFailed = nil, false
		e.cancelTimer("video")
		if old != nil && !e.onAir.Slate && !sameCapture(old.plan, f) {
			// Start the new front first; the hub switches at its first
			// keyframe and the old one is stopped then.
			e.startVideo()
			if e.live == nil {
				e.hub.detach(old)
				old.stop()
			} else {
				// The old front stops when the new one takes over
				// (onSwitched), or after 5 s if the new one never does.
				e.later(retireKey(old), 5*time.Second, func() {
					e.hub.detach(old)
					old.stop()
				})
			}
			return nil
		}
		if old != nil {
			e.hub.detach(old)
			old.stop()
		}
		e.startVideo()
		return nil
	})
}

// sameCapture: both fronts capture from one V4L2 node. A node streams to
// one file handle only, so the new front cannot start until the old one
// has let go (its S_DV_TIMINGS/S_FMT/REQBUFS fail with EBUSY meanwhile):
// such a replacement stops the old front first and leaves a short gap.
func sameCapture(a, b pipelines.Front) bool {
	if a.Kind != pipelines.SourceV4L2 || b.Kind != pipelines.SourceV4L2 {
		return false
	}
	if a.Device == b.Device {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a.Device)
	rb, err2 := filepath.EvalSymlinks(b.Device)
	return err1 == nil && err2 == nil && ra == rb
}

// ---- audio ---------------------------------------------------------------

func (e *Engine) startAudio() {
	if e.audio != nil || e.closing {
		return
	}
	f, err := e.startFront("audio", e.plan.Audio)
	if err != nil {
		e.audioFailed(nil, err)
		return
	}
	e.audio = f
	e.statsMu.Lock()
	e.stats.Audio.Kind, e.stats.Audio.Device = e.plan.Audio.Kind, e.plan.Audio.Device
	e.statsMu.Unlock()
}

// audioFailed keeps the audio track alive with silence (many services
// drop a stream without audio) and retries the real source.
func (e *Engine) audioFailed(f *front, err error) {
	if e.closing {
		return
	}
	if !e.audioFailing {
		e.log.Warn("audio source failed, sending silence", "err", err)
		e.emit(pipelines.EventAudioFailed, "audio", err.Error())
		e.audioFailing = true
	}
	if f != nil {
		e.hub.detach(f)
		f.stop()
		if f == e.audio {
			e.audio = nil
		} else {
			e.silence = nil
		}
	}
	if e.silence == nil && e.plan.Audio.Kind != pipelines.SourceSilence {
		sil := silenceFront(e.plan.Audio)
		if s, err2 := e.startFront("audio", sil); err2 == nil {
			e.silence = s
		} else {
			e.log.Error("silent audio failed to start", "err", err2)
		}
	}
	e.later("audio", e.audioRetry.Next(), e.startAudio)
}

// ReplaceAudio swaps the audio source (a config change); the old source
// keeps sounding until the new one delivers.
func (e *Engine) ReplaceAudio(ctx context.Context, f pipelines.Front) error {
	return e.do(ctx, func() error {
		e.plan.Audio = f
		old := e.audio
		e.audio = nil
		e.cancelTimer("audio")
		e.startAudio()
		if old != nil {
			e.later(retireKey(old), 5*time.Second, func() { e.hub.detach(old); old.stop() })
		}
		return nil
	})
}

// silenceFront replaces the audio source with digital silence, same encode.
func silenceFront(a pipelines.Front) pipelines.Front {
	chain := append([]pipelines.Element{{Factory: "audiotestsrc", Props: []pipelines.Prop{
		{Name: "is-live", Value: "true"}, {Name: "wave", Value: "silence"},
	}}}, a.Chain[1:]...)
	return pipelines.Front{Kind: pipelines.SourceSilence, Chain: chain}
}

func (e *Engine) onLevel(l levelReading) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	a := &e.stats.Audio
	a.PeakDBFS, a.RMSDBFS = clampDB(l.peak), clampDB(l.rms)
	now := time.Now()
	if e.lastLoud.IsZero() || a.RMSDBFS > pipelines.SilenceDBFS {
		e.lastLoud = now
	}
	a.Silent = now.Sub(e.lastLoud) >= pipelines.SilenceFor
}

func clampDB(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) || v < -200 {
		return -200
	}
	return math.Round(v*10) / 10
}

// ---- outputs -------------------------------------------------------------

// congestionLimit is how much may queue for one output: two seconds of
// stream at the configured bitrate, at least 1 MiB.
func (e *Engine) congestionLimit() uint64 {
	kbps := e.plan.Encoder.BitrateKbps + pipelines.AudioBitrate/1000
	return max(uint64(kbps)*1000/8*2, 1<<20)
}

func (e *Engine) addOutput(o pipelines.OutputPlan) {
	r := &outputRun{plan: o.Sink, spec: o.Spec, enabled: o.Spec.Enabled,
		retry: backoff.New(e.opt.OutputRetryMin, e.opt.OutputRetryMax)}
	r.st = pipelines.OutputStats{Name: o.Spec.Name, Proto: o.Spec.Proto, URL: o.Spec.URL, State: pipelines.OutputDisabled, Since: time.Now()}
	e.outputs[o.Spec.Name] = r
	e.order = append(e.order, o.Spec.Name)
	if r.enabled {
		e.startRun(r)
	}
}

// startRun builds and starts an output (or the recorder) off the loop: an
// SRT caller may take seconds to connect.
func (e *Engine) startRun(r *outputRun) {
	if r.sink != nil || r.starting || e.closing {
		return
	}
	r.starting = true
	recDir, recExt := "", ""
	if r.rec != nil {
		recDir, recExt = r.rec.Dir, segmentExt(r.rec.Format)
	}
	e.setState(r, pipelines.OutputConnecting, "")
	e.log.Debug("output starting", "output", r.st.Name)
	limit := e.congestionLimit()
	go func() {
		s, err := newSink(r.plan, limit, recDir, recExt)
		if err == nil {
			if err = s.start(); err != nil {
				s.stop()
				s = nil
			}
		}
		if !e.post(func() { e.runStarted(r, s, err) }) && s != nil {
			s.stop()
		}
	}()
}

func (e *Engine) runStarted(r *outputRun, s *sinkPipe, err error) {
	r.starting = false
	if err != nil {
		e.runFailed(r, err)
		return
	}
	if !r.enabled || !e.current(r) || e.closing {
		go s.stop()
		return
	}
	r.sink = s
	r.lastByte, r.lastTick = 0, time.Now()
	e.hub.addSink(s)
	go e.watchSink(r, s)
	if r.rec != nil {
		e.setState(r, pipelines.OutputUp, "")
	}
}

// current reports whether r is still configured.
func (e *Engine) current(r *outputRun) bool {
	return e.recorder == r || (r.rec == nil && e.outputs[r.st.Name] == r)
}

func (e *Engine) watchSink(r *outputRun, s *sinkPipe) {
	for {
		select {
		case m := <-s.pipe.msgs:
			e.post(func() { e.onSinkMsg(r, s, m) })
		case <-s.unwatched:
			return
		case <-s.pipe.done:
			return
		}
	}
}

func (e *Engine) onSinkMsg(r *outputRun, s *sinkPipe, m busMsg) {
	if r.sink != s {
		return // an old instance
	}
	switch {
	case m.fragment != "" && m.opened:
		e.statsMu.Lock()
		e.stats.Recorder.File = m.fragment
		e.stats.Recorder.Segments++
		e.statsMu.Unlock()
		e.emit(pipelines.EventSegment, "recorder", filepath.Base(m.fragment))
		e.keepFree()
	case m.fragment != "":
		e.rsync.segmentClosed(m.fragment)
	case m.err != nil || m.eos:
		err := m.err
		if err == nil {
			err = errors.New("ended")
		}
		e.hub.removeSink(s)
		s.stop()
		r.sink = nil
		e.runFailed(r, err)
	}
}

func (e *Engine) runFailed(r *outputRun, err error) {
	name := r.st.Name
	if r.rec != nil {
		name = "recorder"
	}
	if !r.failing {
		e.log.Warn("output down", "output", name, "err", err)
		if r.rec != nil {
			e.emit(pipelines.EventRecorderError, name, err.Error())
		} else {
			e.emit(pipelines.EventOutputDown, name, err.Error())
		}
	}
	r.failing = true
	r.st.Reconnects++
	e.setState(r, pipelines.OutputDown, err.Error())
	e.later("out:"+name, r.retry.Next(), func() {
		if r.enabled && e.current(r) {
			e.startRun(r)
		}
	})
}

func (e *Engine) setState(r *outputRun, st pipelines.OutputState, lastErr string) {
	if r.st.State != st {
		r.st.State, r.st.Since = st, time.Now()
	}
	if lastErr != "" {
		r.st.LastError = lastErr
	}
	if st == pipelines.OutputUp && r.failing {
		r.failing = false
		r.retry.Reset()
		name := r.st.Name
		if r.rec == nil {
			e.log.Info("output up", "output", name)
			e.emit(pipelines.EventOutputUp, name, "")
		}
	} else if st == pipelines.OutputUp && r.rec == nil && r.st.Reconnects == 0 && r.st.Bytes == 0 {
		e.emit(pipelines.EventOutputUp, r.st.Name, "")
	}
}

// stopRun takes an output off the hub at once and ends it cleanly in the
// background; the channel closes when its last data is out (the
// recorder's segment closed).
func (e *Engine) stopRun(r *outputRun) <-chan struct{} {
	done := make(chan struct{})
	e.cancelTimer("out:" + r.st.Name)
	s := r.sink
	r.sink = nil
	if s == nil {
		close(done)
		return done
	}
	recording := ""
	if r.rec != nil {
		recording = e.segmentFile()
	}
	e.hub.removeSink(s)
	go func() {
		defer close(done)
		if err := s.finish(e.opt.EOSTimeout); err != nil {
			e.log.Warn("output did not end cleanly", "output", r.st.Name, "err", err)
		}
		if recording != "" {
			e.rsync.flush(recording, 5*time.Second)
		}
	}()
	return done
}

func (e *Engine) output(name string) (*outputRun, error) {
	r, ok := e.outputs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", pipelines.ErrUnknownOutput, name)
	}
	return r, nil
}

// RestartOutput tears an output down and starts it again.
func (e *Engine) RestartOutput(ctx context.Context, name string) error {
	return e.do(ctx, func() error {
		r, err := e.output(name)
		if err != nil {
			return err
		}
		e.stopRun(r)
		r.enabled = true
		r.retry.Reset()
		e.startRun(r)
		return nil
	})
}

// StartOutput enables an output.
func (e *Engine) StartOutput(ctx context.Context, name string) error {
	return e.do(ctx, func() error {
		r, err := e.output(name)
		if err != nil {
			return err
		}
		r.enabled = true
		e.startRun(r)
		return nil
	})
}

// StopOutput disables an output until started again; it returns once the
// output has ended its stream.
func (e *Engine) StopOutput(ctx context.Context, name string) error {
	var done <-chan struct{}
	err := e.do(ctx, func() error {
		r, err := e.output(name)
		if err != nil {
			return err
		}
		r.enabled = false
		done = e.stopRun(r)
		e.setState(r, pipelines.OutputDisabled, "")
		return nil
	})
	return waitDone(ctx, err, done)
}

// SetOutputs applies a new output list: unchanged outputs keep running,
// changed ones restart, removed ones stop, new ones start.
func (e *Engine) SetOutputs(ctx context.Context, outs []pipelines.OutputPlan) error {
	return e.do(ctx, func() error {
		keep := map[string]bool{}
		var order []string
		for _, o := range outs {
			keep[o.Spec.Name] = true
			order = append(order, o.Spec.Name)
			if r, ok := e.outputs[o.Spec.Name]; ok {
				if reflect.DeepEqual(r.plan, o.Sink) && reflect.DeepEqual(r.spec, o.Spec) {
					continue
				}
				e.stopRun(r)
				delete(e.outputs, o.Spec.Name)
			}
			e.addOutput(o)
		}
		for name, r := range e.outputs {
			if !keep[name] {
				e.stopRun(r)
				delete(e.outputs, name)
			}
		}
		e.order = order
		e.plan.Outputs = outs
		return nil
	})
}

// ---- recorder ------------------------------------------------------------

func (e *Engine) setRecorder(p *pipelines.RecorderPlan, enabled bool) {
	r := &outputRun{plan: p.Sink, rec: p, enabled: enabled,
		retry: backoff.New(e.opt.FrontRetryMin, e.opt.FrontRetryMax)}
	r.st = pipelines.OutputStats{Name: "recorder", State: pipelines.OutputDisabled, Since: time.Now()}
	e.recorder = r
	e.statsMu.Lock()
	e.stats.Recorder.Enabled, e.stats.Recorder.Dir = true, p.Dir
	e.statsMu.Unlock()
	if enabled {
		e.startRun(r)
	}
}

// SetRecorder applies a new recorder plan (nil: no recording); an
// unchanged plan keeps recording.
func (e *Engine) SetRecorder(ctx context.Context, p *pipelines.RecorderPlan) error {
	return e.do(ctx, func() error {
		if e.recorder != nil && p != nil && reflect.DeepEqual(*e.recorder.rec, *p) {
			return nil
		}
		if e.recorder != nil {
			e.stopRun(e.recorder)
			e.recorder = nil
		}
		e.plan.Recorder = p
		if p != nil {
			e.setRecorder(p, true)
		} else {
			e.statsMu.Lock()
			e.stats.Recorder = pipelines.RecorderStats{}
			e.statsMu.Unlock()
		}
		return nil
	})
}

// StartRecording starts the configured recorder.
func (e *Engine) StartRecording(ctx context.Context) error {
	return e.do(ctx, func() error {
		if e.recorder == nil {
			return errors.New("recording is not configured")
		}
		e.recorder.enabled = true
		e.startRun(e.recorder)
		return nil
	})
}

// StopRecording closes the current segment and stops recording; it
// returns once the segment is closed.
func (e *Engine) StopRecording(ctx context.Context) error {
	var done <-chan struct{}
	err := e.do(ctx, func() error {
		if e.recorder == nil {
			return errors.New("recording is not configured")
		}
		e.recorder.enabled = false
		done = e.stopRun(e.recorder)
		e.setState(e.recorder, pipelines.OutputDisabled, "")
		return nil
	})
	return waitDone(ctx, err, done)
}

// waitDone waits for a background stop after a command succeeded.
func waitDone(ctx context.Context, err error, done <-chan struct{}) error {
	if err != nil || done == nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keepFree deletes the oldest segments while the recording's file system
// has less free space than keep_free; the open segment is never deleted.
func (e *Engine) keepFree() {
	r := e.recorder
	if r == nil || r.rec == nil {
		return
	}
	free, err := freeBytes(r.rec.Dir)
	if err != nil {
		return
	}
	e.statsMu.Lock()
	current := e.stats.Recorder.File
	e.stats.Recorder.FreeBytes = free
	e.statsMu.Unlock()
	if r.rec.KeepFree <= 0 || free >= uint64(r.rec.KeepFree) {
		return
	}
	files, err := recordingFiles(r.rec.Dir, segmentExt(r.rec.Format))
	if err != nil {
		return
	}
	sort.Strings(files)
	for _, f := range files {
		if free >= uint64(r.rec.KeepFree) || f == current {
			break
		}
		if err := os.Remove(f); err != nil {
			e.log.Warn("cannot delete old segment", "file", f, "err", err)
			return
		}
		e.emit(pipelines.EventSegmentDelete, "recorder", filepath.Base(f))
		e.statsMu.Lock()
		e.stats.Recorder.Deleted++
		e.statsMu.Unlock()
		if free, err = freeBytes(r.rec.Dir); err != nil {
			return
		}
	}
}

// freeBytes is what an unprivileged writer may still use (statfs f_bavail).
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// ---- timers and stats ----------------------------------------------------

// later runs f on the loop after d; a newer timer of the same key replaces it.
func (e *Engine) later(key string, d time.Duration, f func()) {
	e.cancelTimer(key)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		e.post(func() {
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

func (e *Engine) tick() {
	now := time.Now()
	e.watchPicture(now)
	e.checkCaptureBack()
	for _, r := range e.runs() {
		if r.sink == nil {
			continue
		}
		if r.rec != nil {
			continue
		}
		b := r.sink.bytes()
		if r.spec.Proto == pipelines.ProtoSRT && !r.spec.Listener {
			e.checkSRTPeer(r, now)
		} else if r.st.State == pipelines.OutputConnecting && b > 0 {
			e.setState(r, pipelines.OutputUp, "")
		}
		dt := now.Sub(r.lastTick).Seconds()
		if dt < 1 {
			continue
		}
		r.st.BitrateKbps = int(float64(b-r.lastByte) * 8 / 1000 / dt)
		r.st.Bytes += b - r.lastByte
		r.lastByte, r.lastTick = b, now
		r.st.Dropped = e.hub.dropped(r.sink)
		if rtt, loss, ok := r.sink.srtStats(); ok {
			r.st.RTTms, r.st.LossPct = rtt, math.Round(loss*100)/100
		}
	}
	if now.Sub(e.lastKeepFree) >= 10*time.Second {
		e.lastKeepFree = now
		e.keepFree()
	}
	e.rsync.maybe(now, e.recordingFile())
}

// recordingFile is the segment being written ("" when not recording).
func (e *Engine) recordingFile() string {
	if e.recorder == nil || e.recorder.sink == nil {
		return ""
	}
	return e.segmentFile()
}

// segmentFile is the recorder's newest segment, written or just closed.
func (e *Engine) segmentFile() string {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.stats.Recorder.File
}

// srtPeerTimeout is how long an SRT caller may send nothing to its peer
// before the output is called down.
const srtPeerTimeout = 1500 * time.Millisecond

// checkSRTPeer follows an SRT caller's link by what srtsink says it sent:
// srtsink reconnects by itself and reports a lost peer only as a warning,
// so the data reaching it says nothing about the peer.
func (e *Engine) checkSRTPeer(r *outputRun, now time.Time) {
	sent := r.sink.srtSent()
	if sent < 0 {
		return
	}
	if sent > r.srtSent {
		r.srtSentAt = now
	}
	r.srtSent = sent
	linked := sent > 0 && now.Sub(r.srtSentAt) < srtPeerTimeout
	switch {
	case linked && r.st.State != pipelines.OutputUp:
		e.setState(r, pipelines.OutputUp, "")
	case !linked && r.st.State == pipelines.OutputUp:
		err := "SRT peer unreachable; reconnecting"
		e.log.Warn("output down", "output", r.st.Name, "err", err)
		e.emit(pipelines.EventOutputDown, r.st.Name, err)
		r.failing = true
		r.st.Reconnects++
		e.setState(r, pipelines.OutputDown, err)
	}
}

// Stats is a snapshot of the running pipeline.
func (e *Engine) Stats() pipelines.Stats {
	var outs []pipelines.OutputStats
	var rec pipelines.OutputStats
	recRunning := false
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.do(ctx, func() error {
		for _, n := range e.order {
			outs = append(outs, e.outputs[n].st)
		}
		if e.recorder != nil {
			rec = e.recorder.st
			recRunning = e.recorder.sink != nil
		}
		return nil
	})
	e.statsMu.Lock()
	s := e.stats
	e.statsMu.Unlock()
	s.Outputs = outs
	s.Recorder.Recording = recRunning
	s.Recorder.SyncedAt = e.rsync.lastSynced()
	if rec.LastError != "" {
		s.Recorder.LastError = rec.LastError
	}
	frames, bytes, last, active := e.hub.trackStats("video")
	s.Video.Frames, s.Video.Bytes, s.Video.LastFrame = frames, bytes, last
	if active != nil {
		s.Video.Kind, s.Video.Device = active.plan.Kind, active.plan.Device
		s.Video.Width, s.Video.Height, s.Video.FPS = active.plan.Width, active.plan.Height, active.plan.FPS
		s.Video.Running = true
		s.Slate = active.plan.Kind == pipelines.SourceSlate
	}
	aframes, _, alast, aactive := e.hub.trackStats("audio")
	s.Audio.Frames, s.Audio.LastFrame = aframes, alast
	if aactive != nil {
		s.Audio.Kind, s.Audio.Device = aactive.plan.Kind, aactive.plan.Device
	}
	if s.Recorder.Dir != "" {
		if b, err := dirBytes(s.Recorder.Dir); err == nil {
			s.Recorder.Bytes = b
		}
	}
	return s
}

func dirBytes(dir string) (uint64, error) {
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*"))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += uint64(st.Size())
		}
	}
	return n, nil
}

// Trial runs a video front alone until the first encoded buffers arrive
// (the ladder's check that a rung really works), then stops it. It
// returns how long the first buffer took.
func Trial(ctx context.Context, f pipelines.Front, timeout time.Duration) (time.Duration, error) {
	const want = 3
	took := make(chan struct{}, 1)
	h := newHub(func(string, *front, *front) {
		select {
		case took <- struct{}{}:
		default:
		}
	})
	defer h.close()
	fr, err := newFront("video", f, h)
	if err != nil {
		return 0, err
	}
	h.setPending(fr)
	defer fr.stop()
	start := time.Now()
	if err := fr.start(); err != nil {
		return 0, err
	}
	var first time.Duration
	deadline := time.After(timeout)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-took:
			// The front went on air with its first buffer.
			first = time.Since(start)
		case <-poll.C:
			if frames, _, _, _ := h.trackStats("video"); frames >= want && first > 0 {
				return first, nil
			}
		case m := <-fr.pipe.msgs:
			if m.err != nil {
				return 0, m.err
			}
		case <-deadline:
			return 0, fmt.Errorf("no encoded video within %s", timeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
