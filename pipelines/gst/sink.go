package gst

/*
#include "capbox.h"
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// sinkPipe is one output (or the recorder): appsrcs for the shared video
// and audio streams, parsers, the muxer and the network or file sink.
type sinkPipe struct {
	name string
	plan pipelines.Sink
	pipe *pipe
	vsrc *C.GstElement
	asrc *C.GstElement
	// final is the last element (srtsink, rtmp2sink, splitmuxsink...).
	final    *gst.Element
	counter  *C.capbox_counter
	counter2 *C.capbox_counter
	isSRT    bool
	base     time.Duration
	gen      uint64
	// unwatched is closed when the engine stops reading this pipe's bus
	// (before a clean stop, which reads the EOS itself).
	unwatched   chan struct{}
	unwatchOnce sync.Once

	// limit is how many bytes may wait in an appsrc before the output is
	// called congested and skips to the next keyframe.
	limit uint64
	// out is the hub's side of this output while it is fed (engine loop
	// only).
	out *C.capbox_out
}

var sinkGen atomic.Uint64

// newSink builds an output or recorder pipeline; recDir/recExt name the
// recorder's segments (empty for outputs).
func newSink(plan pipelines.Sink, limit uint64, recDir, recExt string) (*sinkPipe, error) {
	gen := sinkGen.Add(1)
	pp, err := newPipe(fmt.Sprintf("out-%s-%d", plan.Name, gen))
	if err != nil {
		return nil, err
	}
	s := &sinkPipe{name: plan.Name, plan: plan, pipe: pp, gen: gen, limit: limit, unwatched: make(chan struct{})}
	fail := func(err error) (*sinkPipe, error) {
		pp.stop()
		return nil, fmt.Errorf("output %s: %w", plan.Name, err)
	}
	muxEls, secrets, err := addChain(pp.p, plan.Chain)
	if err != nil {
		return fail(err)
	}
	pp.redact = secrets
	mux := muxEls[0]
	s.final = muxEls[len(muxEls)-1]
	if recDir != "" {
		if err := os.MkdirAll(recDir, 0o750); err != nil {
			return fail(fmt.Errorf("recording folder: %w", err))
		}
	}
	if recDir != "" && plan.Chain[len(plan.Chain)-1].Factory == "splitmuxsink" {
		d, e := C.CString(recDir), C.CString(recExt)
		C.capbox_name_segments(celem(s.final), d, e)
		C.free(unsafe.Pointer(d))
		C.free(unsafe.Pointer(e))
	}
	for _, leg := range []struct {
		parse []pipelines.Element
		pad   string
		src   **C.GstElement
	}{{plan.VideoParse, plan.VideoPad, &s.vsrc}, {plan.AudioParse, plan.AudioPad, &s.asrc}} {
		target, pad := mux, leg.pad
		if leg.pad == "" && leg.src == &s.asrc {
			// A sink without an audio input: the audio is dropped here.
			drop, err := gst.NewElement("fakesink")
			if err != nil {
				return fail(fmt.Errorf("%w: fakesink", ErrMissingElement))
			}
			drop.SetArg("sync", "false")
			if err := pp.p.Add(drop); err != nil {
				return fail(err)
			}
			target = drop
		}
		if pad == "" {
			pad = "sink"
		}
		src, err := gst.NewElement("appsrc")
		if err != nil {
			return fail(fmt.Errorf("%w: appsrc", ErrMissingElement))
		}
		// Live, time-stamped by the hub; never blocks the hub's thread.
		src.SetArg("is-live", "true")
		src.SetArg("format", "time")
		src.SetArg("do-timestamp", "false")
		src.SetArg("block", "false")
		src.SetArg("max-bytes", "0")
		if err := pp.p.Add(src); err != nil {
			return fail(err)
		}
		parse, _, err := addChain(pp.p, leg.parse)
		if err != nil {
			return fail(err)
		}
		last := src
		if len(parse) > 0 {
			if err := src.Link(parse[0]); err != nil {
				return fail(fmt.Errorf("%w: appsrc ! %s", ErrLink, leg.parse[0].Factory))
			}
			last = parse[len(parse)-1]
		}
		if !linkPads(last, "src", target, pad) {
			return fail(fmt.Errorf("%w: to %s pad %s", ErrLink, plan.Chain[0].Factory, pad))
		}
		*leg.src = celem(src)
	}
	if recDir == "" {
		// Bytes handed to the network sink: what the output really sends.
		// A sink with request pads only (rtspclientsink) is counted at its
		// inputs instead.
		name := C.CString("sink")
		s.counter = C.capbox_count_pad(celem(s.final), name)
		C.free(unsafe.Pointer(name))
		if s.counter == nil {
			src := C.CString("src")
			s.counter = C.capbox_count_pad(s.vsrc, src)
			s.counter2 = C.capbox_count_pad(s.asrc, src)
			C.free(unsafe.Pointer(src))
		}
	}
	s.isSRT = plan.Chain[len(plan.Chain)-1].Factory == "srtsink"
	return s, nil
}

func (s *sinkPipe) start() error {
	if err := s.pipe.start(false); err != nil {
		return err
	}
	s.base = baseTime(s.pipe.p)
	return nil
}

// finish ends the stream cleanly (so the recorder closes its segment),
// then stops the pipeline.
func (s *sinkPipe) finish(timeout time.Duration) error {
	s.unwatch()
	C.capbox_src_eos(s.vsrc)
	C.capbox_src_eos(s.asrc)
	err := s.pipe.waitEOS(timeout)
	s.pipe.stop()
	return err
}

func (s *sinkPipe) unwatch() { s.unwatchOnce.Do(func() { close(s.unwatched) }) }

func (s *sinkPipe) stop() {
	s.unwatch()
	s.pipe.stop()
}

// bytes is what reached the final sink.
func (s *sinkPipe) bytes() uint64 {
	var n uint64
	for _, c := range []*C.capbox_counter{s.counter, s.counter2} {
		if c != nil {
			n += uint64(C.capbox_counter_bytes(c))
		}
	}
	return n
}

// srtStats reads srtsink's statistics through the C helper.
func (s *sinkPipe) srtStats() (rttMS, lossPct float64, ok bool) {
	if !s.isSRT {
		return 0, 0, false
	}
	var st C.capbox_srt_stats
	if C.capbox_srt_stats_get(celem(s.final), &st) == 0 || st.callers == 0 {
		return 0, 0, false
	}
	loss := 0.0
	if st.pkts_sent > 0 {
		loss = 100 * float64(st.pkts_lost) / float64(st.pkts_sent)
	}
	return float64(st.rtt_ms), loss, true
}

func linkPads(src *gst.Element, srcPad string, sink *gst.Element, sinkPad string) bool {
	a, b := C.CString(srcPad), C.CString(sinkPad)
	defer C.free(unsafe.Pointer(a))
	defer C.free(unsafe.Pointer(b))
	return C.capbox_link_pads(celem(src), a, celem(sink), b) != 0
}

// srtSent is what srtsink reports as sent over the network (all callers).
func (s *sinkPipe) srtSent() int64 {
	if !s.isSRT {
		return -1
	}
	var st C.capbox_srt_stats
	if C.capbox_srt_stats_get(celem(s.final), &st) == 0 {
		return -1
	}
	return int64(st.bytes_sent)
}

// segmentExt is the recorder's file extension for a format.
func segmentExt(format string) string {
	switch format {
	case "mp4", "fwht":
		return format
	}
	return "ts"
}
