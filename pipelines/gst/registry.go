// Package gst is capbox's only bridge to GStreamer (go-gst). Everything
// else in the project builds with CGO_ENABLED=0.
//
// The Engine runs a pipelines.Plan, one file per concern: engine.go (New,
// Run, the loop, the shutdown), video.go (the live front, the slate and
// what decides between them, the picture watch, ReplaceVideo, Trial),
// audio.go, outputs.go (each output's run, its restarts, SetOutputs, SRT
// peer checks), recorder.go (the recorder; its folder is pipelines/recdir)
// and stats.go. What it runs: pipe.go (a pipeline and its bus), front.go
// (an encoding pipeline), sink.go (an output's or the recorder's
// pipeline), hub.go and hub.c (the fronts' buffers to every sink),
// elements.go (elements from a plan), snapshot.go.
package gst

/*
#cgo pkg-config: gstreamer-1.0
#include <gst/gst.h>
*/
import "C"

import (
	"os"
	"sync"

	"github.com/go-gst/go-gst/gst"
)

var initOnce sync.Once

// Init initialises GStreamer once per process.
func Init() {
	initOnce.Do(func() {
		forceV4L2Drain()
		gst.Init(nil)
	})
}

// forceV4L2Drain makes GStreamer's V4L2 elements release their buffers
// when a capture stops instead of "orphaning" them. GStreamer 1.22
// (Debian 12) never frees an orphaned capture pool: every restart of a
// v4l2src (a streaming error, a replug, a format change) kept one
// descriptor of the device and the mappings of its buffers (measured with
// vivid in the virtual capture box: one /dev/video descriptor per restart,
// and vivid, which comes back from an unplug only once every handle is
// closed, never came back). On a board those buffers are CMA memory. An
// operator's own setting is kept.
func forceV4L2Drain() {
	if _, set := os.LookupEnv("GST_V4L2_FORCE_DRAIN"); !set {
		_ = os.Setenv("GST_V4L2_FORCE_DRAIN", "1")
	}
}

// Version is the GStreamer library version, like "1.22.0".
func Version() string {
	Init()
	var major, minor, micro, nano C.guint
	C.gst_version(&major, &minor, &micro, &nano)
	return itoa(uint(major)) + "." + itoa(uint(minor)) + "." + itoa(uint(micro))
}

func itoa(u uint) string {
	if u == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	return string(b[i:])
}

// Registry answers whether elements exist in this machine's GStreamer
// registry; it implements board.ElementChecker.
type Registry struct{}

// HasElement reports whether an element factory of that name is installed.
func (Registry) HasElement(name string) bool {
	Init()
	return gst.Find(name) != nil
}
