package gst

/*
#include "capbox.h"
*/
import "C"

import (
	"sync"
	"time"
)

// track is one shared stream (video or audio): the front whose samples go
// out, and the front that takes over at its first usable sample (a
// keyframe for video), so a switch (live <-> slate) leaves no gap.
type track struct {
	name    string
	active  *front
	pending *front
	caps    *C.GstCaps
	// lastAbs is the clock time of the last forwarded buffer; a new front
	// starts after it so timestamps never go back.
	lastAbs time.Duration
	// holding: the pending front's keyframe came older than lastAbs (it
	// runs with more latency than the active one: a capture and its
	// encoder against the slate). The active front is held back so time
	// passes lastAbs, and the pending front takes over at its next
	// keyframe; otherwise it never would.
	holding bool
	frames  uint64
	bytes   uint64
	last    time.Time
}

// hub is the tee: it forwards every encoded buffer of the active fronts
// to every sink, moving timestamps from the front's clock base to the
// sink's. It runs on the fronts' streaming threads and never blocks.
type hub struct {
	mu    sync.Mutex
	video track
	audio track
	sinks map[*sinkPipe]bool
	// lastKey is the newest video keyframe (with SPS/PPS) for snapshots.
	lastKey     *C.GstBuffer
	lastKeyCaps *C.GstCaps
	// wantKey: an output waits for a keyframe newer than its start.
	wantKey bool
	// switched reports a completed switch: the old front to stop.
	switched func(track string, old, now *front)
	now      func() time.Time
}

func newHub(switched func(track string, old, now *front)) *hub {
	return &hub{
		video: track{name: "video"}, audio: track{name: "audio"},
		sinks: map[*sinkPipe]bool{}, switched: switched, now: time.Now,
	}
}

func (h *hub) track(name string) *track {
	if name == "video" {
		return &h.video
	}
	return &h.audio
}

// setPending makes f take over its track at its first usable sample (a
// keyframe for video) after the last forwarded one.
func (h *hub) setPending(f *front) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.track(f.track)
	t.holding = false
	if t.active == f {
		t.pending = nil
		return
	}
	t.pending = f
}

// detach forgets a front (stopped or failed).
func (h *hub) detach(f *front) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.track(f.track)
	if t.active == f {
		t.active = nil
	}
	if t.pending == f {
		t.pending, t.holding = nil, false
	}
}

// activeFront returns the front currently feeding a track.
func (h *hub) activeFront(name string) *front {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.track(name).active
}

// addSink starts feeding s; it waits for the next keyframe, which is
// requested from the video encoder.
func (h *hub) addSink(s *sinkPipe) {
	h.mu.Lock()
	h.sinks[s] = true
	s.started, s.waitKey = false, true
	v := h.video.active
	h.mu.Unlock()
	if v != nil {
		v.requestKeyframe()
	}
}

func (h *hub) removeSink(s *sinkPipe) {
	h.mu.Lock()
	delete(h.sinks, s)
	h.mu.Unlock()
}

// onSample is every front's appsink callback.
func (h *hub) onSample(f *front) {
	buf, caps, info := f.pull()
	if buf == nil {
		C.capbox_caps_unref(caps)
		return
	}
	defer C.capbox_buffer_unref(buf)
	defer C.capbox_caps_unref(caps)

	var switched, old *front
	h.mu.Lock()
	t := h.track(f.track)
	abs := time.Duration(info.pts) + f.base()
	key := f.track == "audio" || info.delta == 0
	if f == t.pending && key && (t.active == nil || abs > t.lastAbs) {
		old, t.active, t.pending, switched = t.active, f, nil, f
		t.holding = false
		for s := range h.sinks {
			s.discont = true
		}
	} else if f == t.pending && key {
		t.holding = true
	}
	if f == t.active && t.holding {
		h.mu.Unlock()
		return
	}
	if f != t.active {
		// A pending video front whose first keyframe came too late (the
		// live front had newer frames) asks for another one at once
		// rather than waiting a whole keyframe interval.
		askKey := f == t.pending && f.track == "video" && h.now().Sub(f.keyAsked) > 100*time.Millisecond
		if askKey {
			f.keyAsked = h.now()
		}
		h.mu.Unlock()
		if askKey {
			f.requestKeyframe()
		}
		return
	}
	if C.capbox_caps_equal(caps, t.caps) == 0 {
		C.capbox_caps_unref(t.caps)
		t.caps = C.capbox_caps_ref(caps)
		for s := range h.sinks {
			h.setSinkCaps(s, f.track, caps)
		}
	}
	t.lastAbs = abs
	t.frames++
	t.bytes += uint64(info.size)
	t.last = h.now()
	if f.track == "video" && info.delta == 0 {
		C.capbox_buffer_unref(h.lastKey)
		C.capbox_caps_unref(h.lastKeyCaps)
		h.lastKey, h.lastKeyCaps = C.capbox_buffer_ref(buf), C.capbox_caps_ref(caps)
	}
	for s := range h.sinks {
		if f.track == "video" {
			h.pushVideo(s, f, buf, abs, info.delta != 0)
		} else {
			h.pushAudio(s, f, buf, abs)
		}
	}
	askKey := h.wantKey && h.now().Sub(f.keyAsked) > 100*time.Millisecond
	if askKey {
		h.wantKey, f.keyAsked = false, h.now()
	}
	h.mu.Unlock()
	if askKey {
		f.requestKeyframe()
	}
	if switched != nil && h.switched != nil {
		h.switched(f.track, old, switched)
	}
}

// setSinkCaps sets the appsrc caps before the next buffer (a new SPS, a
// new size after a resolution change).
func (h *hub) setSinkCaps(s *sinkPipe, trackName string, caps *C.GstCaps) {
	if trackName == "video" {
		C.capbox_caps_unref(s.vcaps)
		s.vcaps = C.capbox_caps_ref(caps)
		C.capbox_src_caps(s.vsrc, caps)
	} else {
		C.capbox_caps_unref(s.acaps)
		s.acaps = C.capbox_caps_ref(caps)
		C.capbox_src_caps(s.asrc, caps)
	}
}

func (h *hub) pushVideo(s *sinkPipe, f *front, buf *C.GstBuffer, abs time.Duration, delta bool) {
	if s.vcaps == nil && h.video.caps != nil {
		h.setSinkCaps(s, "video", h.video.caps)
	}
	if uint64(C.capbox_src_level(s.vsrc)) > s.limit {
		// Congested (a slow network): drop until the next keyframe so the
		// receiver never sees a broken picture, and never block the others.
		s.waitKey = true
		s.dropped++
		return
	}
	if s.waitKey {
		if delta {
			s.dropped++
			return
		}
		if abs < s.base {
			// Captured before this output's pipeline started: its running
			// time would be negative. Wait for the next keyframe (asked for).
			h.wantKey = true
			return
		}
		s.waitKey = false
		if !s.started {
			s.started, s.startAbs = true, abs
		}
	}
	C.capbox_forward(s.vsrc, buf, C.gint64(f.base()-s.base), boolC(s.discont))
	s.discont = false
}

func (h *hub) pushAudio(s *sinkPipe, f *front, buf *C.GstBuffer, abs time.Duration) {
	if !s.started || abs < s.startAbs {
		return
	}
	if s.acaps == nil && h.audio.caps != nil {
		h.setSinkCaps(s, "audio", h.audio.caps)
	}
	if uint64(C.capbox_src_level(s.asrc)) > s.limit {
		s.dropped++
		return
	}
	C.capbox_forward(s.asrc, buf, C.gint64(f.base()-s.base), 0)
}

// keyframe returns a reference to the newest keyframe and its caps; the
// caller unrefs both.
func (h *hub) keyframe() (*C.GstBuffer, *C.GstCaps) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return C.capbox_buffer_ref(h.lastKey), C.capbox_caps_ref(h.lastKeyCaps)
}

// trackStats copies a track's counters.
func (h *hub) trackStats(name string) (frames, bytes uint64, last time.Time, active *front) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.track(name)
	return t.frames, t.bytes, t.last, t.active
}

func (h *hub) dropped(s *sinkPipe) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.dropped
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	C.capbox_buffer_unref(h.lastKey)
	C.capbox_caps_unref(h.lastKeyCaps)
	C.capbox_caps_unref(h.video.caps)
	C.capbox_caps_unref(h.audio.caps)
	h.lastKey, h.lastKeyCaps, h.video.caps, h.audio.caps = nil, nil, nil, nil
}

func boolC(b bool) C.gboolean {
	if b {
		return 1
	}
	return 0
}
