package gst

/*
#include <stdlib.h>
#include "capbox.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// front is one encoding pipeline (live video, slate or audio) ending in an
// appsink whose samples the hub forwards.
type front struct {
	track string // "video" or "audio"
	plan  pipelines.Front
	pipe  *pipe
	sink  *C.GstElement
	gen   uint64
	// c is the hub's side of this front (nil until attached); given back
	// once the pipeline stopped.
	c           *C.capbox_front
	releaseOnce sync.Once
	// picture watches the raw frames of an input that cannot report its
	// signal (nil: no watch); freed with the pipeline.
	picture *C.capbox_picture
	// eos is closed when the end of stream reaches the appsink: the
	// encoder has drained.
	eos     chan struct{}
	eosOnce sync.Once
	// out counts the buffers the front hands the hub, on air or not (nil
	// if the appsink has no pad to count on); freed with the pipeline.
	out *C.capbox_counter
}

var frontGen atomic.Uint64

// newFront builds (but does not start) a front whose samples go to h.
func newFront(track string, plan pipelines.Front, h *hub) (*front, error) {
	gen := frontGen.Add(1)
	pp, err := newPipe(fmt.Sprintf("%s-%s-%d", track, plan.Kind, gen))
	if err != nil {
		return nil, err
	}
	els, secrets, err := addChain(pp.p, plan.Chain)
	if err != nil {
		pp.stop()
		return nil, fmt.Errorf("%s front: %w", track, err)
	}
	pp.redact = secrets
	sinkEl, err := gst.NewElement("appsink")
	if err != nil {
		pp.stop()
		return nil, fmt.Errorf("%w: appsink", ErrMissingElement)
	}
	// No clock sync: encoded data is handed on as soon as it exists; a
	// bounded queue drops nothing in normal operation (the hub never blocks).
	sinkEl.SetArg("sync", "false")
	sinkEl.SetArg("max-buffers", "200")
	if err := pp.p.Add(sinkEl); err != nil {
		pp.stop()
		return nil, err
	}
	if len(els) > 0 {
		if err := els[len(els)-1].Link(sinkEl); err != nil {
			pp.stop()
			return nil, fmt.Errorf("%w: %s ! appsink", ErrLink, plan.Chain[len(plan.Chain)-1].Factory)
		}
	}
	f := &front{track: track, plan: plan, pipe: pp, sink: celem(sinkEl), gen: gen, eos: make(chan struct{})}
	if i := pictureTarget(plan.Chain); plan.WatchPicture && i >= 0 {
		pad := C.CString("sink")
		f.picture = C.capbox_watch_picture(celem(els[i]), pad)
		C.free(unsafe.Pointer(pad))
	}
	pad := C.CString("sink")
	f.out = C.capbox_count_pad(f.sink, pad)
	C.free(unsafe.Pointer(pad))
	fronts.Store(gen, f)
	h.attach(f)
	return f, nil
}

// fronts maps the id the C callbacks carry to the front.
var fronts sync.Map // uint64 -> *front

//export capboxEOS
func capboxEOS(id C.guintptr) {
	if v, ok := fronts.Load(uint64(id)); ok {
		f := v.(*front)
		f.eosOnce.Do(func() { close(f.eos) })
	}
}

// start plays the front.
func (f *front) start() error { return f.pipe.start(true) }

// stop tears the pipeline down, then takes the front off its hub.
func (f *front) stop() {
	f.pipe.stop()
	fronts.Delete(f.gen)
	f.releaseOnce.Do(func() {
		if f.c != nil {
			C.capbox_front_release(f.c)
		}
	})
}

// drain ends the source and waits (bounded) until the encoder has handed
// out everything it holds. The end of stream is sent from a goroutine of
// its own: a source takes it only when its streaming thread lets go, which
// a busy capture may not do in time (seen as a shutdown that never ended).
func (f *front) drain(timeout time.Duration) {
	p := f.pipe.p
	go func() {
		C.capbox_eos_sources(f.pipe.c())
		runtime.KeepAlive(p) // the pipeline lives until the call returns
	}()
	select {
	case <-f.eos:
	case <-time.After(timeout):
	}
}

// delivered is how many buffers the front has handed on so far. Only for a
// front the engine still owns: the counter goes with the pipeline.
func (f *front) delivered() int64 {
	if f.out == nil {
		return 0
	}
	return int64(C.capbox_counter_buffers(f.out))
}

// pictureTarget is the element whose sink pad a picture watch looks at:
// the first one after the capture and its decoder, which gets raw frames
// in system memory (-1: none).
func pictureTarget(chain []pipelines.Element) int {
	for i, e := range chain {
		switch e.Factory {
		case "v4l2src", "videotestsrc", "capsfilter", "jpegdec", "v4l2jpegdec", "decodebin":
		default:
			return i
		}
	}
	return -1
}

// pictureReading is the watch's latest judgement: how many frames it
// sampled so far, and the spread and mean of the last one's luma (0-255).
type pictureReading struct {
	judged       uint64
	spread, mean int
}

// readPicture reads the watch; false when the front has none.
func (f *front) readPicture() (pictureReading, bool) {
	if f.picture == nil {
		return pictureReading{}, false
	}
	var judged C.guint64
	var spread, mean C.guint
	C.capbox_picture_read(f.picture, &judged, &spread, &mean)
	return pictureReading{judged: uint64(judged), spread: int(spread), mean: int(mean)}, true
}
