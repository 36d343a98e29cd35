package gst

/*
#include "capbox.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"time"
)

// hub is the tee: it forwards every encoded buffer of the active fronts
// to every sink, moving timestamps from the front's clock base to the
// sink's, and moves a pending front on air at its first keyframe. The
// per-buffer work runs in C on the fronts' streaming threads (hub.c) and
// never blocks; Go hears only of take-overs.
type hub struct {
	// mu guards c against use after close; the C hub has its own lock.
	mu sync.RWMutex
	c  *C.capbox_hub
	id uint64
	// switched reports a completed switch: the old front to stop. It runs
	// on a streaming thread and must not block.
	switched func(track string, old, now *front)
}

var (
	hubGen atomic.Uint64
	hubs   sync.Map // uint64 -> *hub, for the C side's callbacks
)

func newHub(switched func(track string, old, now *front)) *hub {
	h := &hub{id: hubGen.Add(1), switched: switched}
	h.c = C.capbox_hub_new(C.guintptr(h.id))
	hubs.Store(h.id, h)
	return h
}

func trackIndex(name string) C.gint {
	if name == "video" {
		return C.CAPBOX_VIDEO
	}
	return C.CAPBOX_AUDIO
}

// frontByID finds a running front by the id the C side carries.
func frontByID(id C.guintptr) *front {
	if v, ok := fronts.Load(uint64(id)); ok {
		return v.(*front)
	}
	return nil
}

//export capboxSwitched
func capboxSwitched(hubID C.guintptr, trackIdx C.gint, oldID, nowID C.guintptr) {
	v, ok := hubs.Load(uint64(hubID))
	if !ok {
		return
	}
	h := v.(*hub)
	now := frontByID(nowID)
	if now == nil || h.switched == nil {
		return // stopped meanwhile
	}
	name := "video"
	if trackIdx == C.CAPBOX_AUDIO {
		name = "audio"
	}
	h.switched(name, frontByID(oldID), now)
}

// attach feeds the front's appsink to the hub (once, before it starts).
func (h *hub) attach(f *front) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c != nil {
		f.c = C.capbox_front_new(h.c, f.sink, trackIndex(f.track), C.guintptr(f.gen))
	}
}

// setPending makes f take over its track at its first usable sample (a
// keyframe for video) after the last forwarded one.
func (h *hub) setPending(f *front) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c != nil && f.c != nil {
		C.capbox_hub_set_pending(h.c, f.c)
	}
}

// detach forgets a front (stopped or failed).
func (h *hub) detach(f *front) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c != nil && f.c != nil {
		C.capbox_hub_detach(h.c, f.c)
	}
}

// activeFront returns the front currently feeding a track.
func (h *hub) activeFront(name string) *front {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c == nil {
		return nil
	}
	return frontByID(C.capbox_hub_active(h.c, trackIndex(name)))
}

// addSink starts feeding s; it waits for the next keyframe, which is
// requested from the video encoder.
func (h *hub) addSink(s *sinkPipe) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c != nil && s.out == nil {
		s.out = C.capbox_hub_add_out(h.c, s.vsrc, s.asrc, C.gint64(s.base), C.guint64(s.limit))
	}
}

// removeSink stops feeding s at once.
func (h *hub) removeSink(s *sinkPipe) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c != nil && s.out != nil {
		C.capbox_hub_remove_out(h.c, s.out)
	}
	s.out = nil
}

// dropped is how many buffers s skipped (congestion, waiting for a
// keyframe).
func (h *hub) dropped(s *sinkPipe) uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c == nil || s.out == nil {
		return 0
	}
	return uint64(C.capbox_hub_dropped(h.c, s.out))
}

// keyframe returns a reference to the newest keyframe and its caps; the
// caller unrefs both.
func (h *hub) keyframe() (*C.GstBuffer, *C.GstCaps) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c == nil {
		return nil, nil
	}
	var caps *C.GstCaps
	buf := C.capbox_hub_keyframe(h.c, &caps)
	return buf, caps
}

// trackStats copies a track's counters.
func (h *hub) trackStats(name string) (frames, bytes uint64, last time.Time, active *front) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.c == nil {
		return 0, 0, time.Time{}, nil
	}
	var st C.capbox_track_stats
	C.capbox_hub_track_stats(h.c, trackIndex(name), &st)
	if st.last_wall_us != 0 {
		last = time.UnixMicro(int64(st.last_wall_us))
	}
	return uint64(st.frames), uint64(st.bytes), last, frontByID(st.active)
}

// close drops what the hub holds; fronts still stopping keep the C side
// alive, feeding nothing.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		C.capbox_hub_close(h.c)
		h.c = nil
	}
	hubs.Delete(h.id)
}
