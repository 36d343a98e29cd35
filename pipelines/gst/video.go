package gst

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"capbox/internal/backoff"
	"capbox/pipelines"
)

// videoTrack is what the video track carries: the live front, the slate,
// and the state that decides between them (startVideo). Owned by the Run
// loop.
type videoTrack struct {
	live, slate *front
	// onAir is the agent's choice for the track (SetOnAir).
	onAir pipelines.OnAir
	// liveFailed: the live front failed and waits for its retry.
	liveFailed bool
	// failing: a failure streak was reported; cleared when the live
	// front delivers again (on air or off it).
	failing bool
	retry   *backoff.Backoff
	// pictureLost: the live front's picture watch saw a flat picture for
	// flatFor (reported; the agent decides what goes on air). flatSince
	// and judged follow the watch of pictureOf.
	pictureLost bool
	flatSince   time.Time
	judged      uint64
	pictureOf   *front
}

// startVideo brings up what the video track should carry now.
//
// What goes on air is the agent's choice (onAir, from SetOnAir); the engine
// only reports facts (a failed capture, a flat picture). The slate is on air
// when the agent asks for it or when the plan has no live input. The live
// capture runs (and is retried when it fails) when it is on air or the
// agent wants it kept running off air (onAir.Capture); otherwise it is
// stopped once the slate is on air (onSwitched).
func (e *Engine) startVideo() {
	if e.closing {
		return
	}
	noInput := e.plan.Video.Kind == pipelines.SourceSlate
	wantCapture := (!e.video.onAir.Slate || e.video.onAir.Capture) && !noInput
	if wantCapture && e.video.live == nil && !e.video.liveFailed {
		f, err := e.startFront("video", e.plan.Video)
		if err != nil {
			e.videoFailed(err)
		} else {
			e.video.live = f
		}
	}
	needSlate := e.video.onAir.Slate || noInput
	if needSlate && e.video.slate == nil && e.plan.Slate != nil {
		f, err := e.startFront("video", *e.plan.Slate)
		if err != nil {
			e.log.Error("slate failed to start", "err", err)
			e.emit(pipelines.EventVideoFailed, "slate", err.Error())
		} else {
			e.video.slate = f
		}
	}
	if !needSlate && e.video.live != nil {
		e.hub.setPending(e.video.live)
	} else if e.video.slate != nil {
		e.hub.setPending(e.video.slate)
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
		if !e.loop.Post(func() { e.frontStarted(f, err) }) {
			f.stop()
		}
	}()
	return f, nil
}

// owns reports whether f is still one of the engine's fronts.
func (e *Engine) owns(f *front) bool {
	return f == e.video.live || f == e.video.slate || f == e.audio.live || f == e.audio.silence
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
	if f == e.video.live {
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
			e.loop.Post(func() { e.onFrontMsg(f, m) })
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
	case e.video.live:
		// Report and bring the slate up first: the failed capture's
		// teardown can take seconds in a struggling driver. The retry
		// runs on this loop, so it starts only after the device is let go.
		e.hub.detach(f)
		e.video.live = nil
		e.videoFailed(err)
		e.startVideo()
		f.stop()
	case e.video.slate:
		e.hub.detach(f)
		f.stop()
		e.video.slate = nil
		e.emit(pipelines.EventVideoFailed, "slate", err.Error())
		e.later("slate", e.video.retry.Next(), e.startVideo)
	case e.audio.live, e.audio.silence:
		e.audioFailed(f, err)
	}
}

// videoFailed reports the failure and retries the capture; a failure
// streak is logged and reported once, until the capture delivers again.
// The agent decides what goes on air meanwhile.
func (e *Engine) videoFailed(err error) {
	if !e.video.failing {
		e.log.Warn("video source failed", "err", err)
		e.emit(pipelines.EventVideoFailed, "video", err.Error())
		e.video.failing = true
	}
	e.video.liveFailed = true
	e.later("video", e.video.retry.Next(), func() {
		e.video.liveFailed = false
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
		if now == e.audio.live {
			e.audio.failing = false
			e.audio.retry.Reset()
		}
		if now == e.audio.live && e.audio.silence != nil {
			e.hub.detach(e.audio.silence)
			e.audio.silence.stop()
			e.audio.silence = nil
		}
		return
	}
	if old != nil && old != now && !e.owns(old) {
		e.cancelTimer(retireKey(old))
		e.hub.detach(old)
		old.stop()
	}
	switch now {
	case e.video.live:
		e.video.retry.Reset()
		e.video.liveFailed, e.video.failing = false, false
		e.emit(pipelines.EventVideoStarted, "video", "")
		if e.video.slate != nil {
			e.hub.detach(e.video.slate)
			e.video.slate.stop()
			e.video.slate = nil
			e.emit(pipelines.EventSlateOff, "slate", "")
		}
	case e.video.slate:
		e.emit(pipelines.EventSlateOn, "slate", "")
		if e.video.live != nil && !e.video.onAir.Capture {
			e.hub.detach(e.video.live)
			e.video.live.stop()
			e.video.live = nil
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
// report their signal, and reports a flat picture and its return.
func (e *Engine) watchPicture(now time.Time) {
	if e.video.live != e.video.pictureOf {
		e.video.pictureOf, e.video.judged, e.video.flatSince = e.video.live, 0, time.Time{}
	}
	if e.video.live == nil {
		return
	}
	// A front without a watch (the input changed to one that reports its
	// signal) clears what an earlier one found.
	r, watched := e.video.live.readPicture()
	if watched && r.judged == e.video.judged {
		return
	}
	lost := false
	if watched {
		e.video.judged = r.judged
		flat := r.spread <= flatSpread
		switch {
		case !flat:
			e.video.flatSince = time.Time{}
		case e.video.flatSince.IsZero():
			e.video.flatSince = now
		}
		lost = flat && now.Sub(e.video.flatSince) >= flatFor
	}
	if lost == e.video.pictureLost {
		return
	}
	e.video.pictureLost = lost
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
	v := &e.video
	if !v.failing || v.live == nil || e.hub.activeFront("video") == v.live || v.live.delivered() == 0 {
		return
	}
	v.failing = false
	v.retry.Reset()
	e.log.Info("video source delivers again")
	e.emit(pipelines.EventCaptureRunning, "video", "")
}

func retireKey(f *front) string { return fmt.Sprintf("retire:%d", f.gen) }

// SetOnAir carries out the agent's choice for the video track: the live
// picture, or the slate with or without the capture kept running.
func (e *Engine) SetOnAir(ctx context.Context, on pipelines.OnAir) error {
	return e.do(ctx, func() error {
		v := &e.video
		if v.onAir == on {
			return nil
		}
		wasCapturing := !v.onAir.Slate || v.onAir.Capture
		v.onAir = on
		if !on.Slate && !wasCapturing {
			// The agent saw the input come back: try the capture at once.
			v.liveFailed = false
			v.retry.Reset()
			e.cancelTimer("video")
		}
		if on.Slate && !on.Capture && v.live != nil && v.slate != nil && e.hub.activeFront("video") == v.slate {
			// The slate is on air already: the capture has nothing to do.
			e.hub.detach(v.live)
			v.live.stop()
			v.live = nil
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
		old := e.video.live
		e.video.live, e.video.liveFailed = nil, false
		e.cancelTimer("video")
		if old != nil && !e.video.onAir.Slate && !sameCapture(old.plan, f) {
			// Start the new front first; the hub switches at its first
			// keyframe and the old one is stopped then.
			e.startVideo()
			if e.video.live == nil {
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
