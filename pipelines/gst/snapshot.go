package gst

/*
#include "capbox.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"capbox/pipelines"
)

// Snapshot sizes: PROTOCOL.md caps the base64 JPEG at 12 KiB, so the raw
// JPEG must stay under 9 KiB; 320x180 at quality 50 is about 5-8 KiB.
const (
	SnapshotWidth   = 320
	SnapshotHeight  = 180
	SnapshotMaxJPEG = 9 * 1024
)

// ErrNoPicture means no keyframe has been encoded yet.
var ErrNoPicture = errors.New("no picture yet")

// h264Decoders in order of preference.
var h264Decoders = []string{"avdec_h264", "openh264dec", "v4l2h264dec"}

// Snapshot decodes the newest keyframe the outputs got into a small JPEG.
// It runs apart from the live pipeline and costs it nothing.
func (e *Engine) Snapshot(ctx context.Context) ([]byte, error) {
	buf, caps := e.hub.keyframe()
	if buf == nil {
		C.capbox_caps_unref(caps)
		return nil, ErrNoPicture
	}
	defer C.capbox_buffer_unref(buf)
	defer C.capbox_caps_unref(caps)
	for q := 50; q >= 20; q -= 15 {
		jpeg, err := decodeToJPEG(ctx, buf, caps, q)
		if err != nil {
			return nil, err
		}
		if len(jpeg) <= SnapshotMaxJPEG {
			return jpeg, nil
		}
	}
	return nil, fmt.Errorf("snapshot larger than %d bytes", SnapshotMaxJPEG)
}

func decodeToJPEG(ctx context.Context, buf *C.GstBuffer, caps *C.GstCaps, quality int) ([]byte, error) {
	dec := ""
	for _, d := range h264Decoders {
		if (Registry{}).HasElement(d) {
			dec = d
			break
		}
	}
	if dec == "" {
		return nil, fmt.Errorf("%w: no H.264 decoder for snapshots", ErrMissingElement)
	}
	pp, err := newPipe("snapshot")
	if err != nil {
		return nil, err
	}
	defer pp.stop()
	chain := []pipelines.Element{
		{Factory: "appsrc", Name: "src", Props: []pipelines.Prop{{Name: "format", Value: "time"}}},
		{Factory: "h264parse"},
		{Factory: dec},
		{Factory: "videoconvert"},
		{Factory: "videoscale"},
		pipelines.Caps(fmt.Sprintf("video/x-raw,width=%d,height=%d,pixel-aspect-ratio=1/1", SnapshotWidth, SnapshotHeight)),
		{Factory: "jpegenc", Props: []pipelines.Prop{{Name: "quality", Value: fmt.Sprint(quality)}}},
		{Factory: "appsink", Name: "out", Props: []pipelines.Prop{{Name: "sync", Value: "false"}}},
	}
	els, _, err := addChain(pp.p, chain)
	if err != nil {
		return nil, err
	}
	src, sink := els[0], els[len(els)-1]
	C.capbox_src_caps(celem(src), caps)
	if err := pp.start(false); err != nil {
		return nil, err
	}
	C.capbox_forward(celem(src), buf, C.gint64(-int64(C.capbox_buf_pts(buf))), 0)
	C.capbox_src_eos(celem(src))
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	sample := app.SinkFromElement(sink).TryPullSample(gst.ClockTime(time.Until(deadline)))
	if sample == nil {
		select {
		case m := <-pp.msgs:
			if m.err != nil {
				return nil, m.err
			}
		default:
		}
		return nil, errors.New("snapshot: decoder gave no picture in time")
	}
	b := sample.GetBuffer()
	if b == nil {
		return nil, errors.New("snapshot: empty sample")
	}
	data := b.Bytes()
	out := make([]byte, len(data))
	copy(out, data)
	return out, nil
}
