// Package gst is capbox's only bridge to GStreamer (go-gst). Everything
// else in the project builds with CGO_ENABLED=0.
package gst

/*
#cgo pkg-config: gstreamer-1.0
#include <gst/gst.h>
*/
import "C"

import (
	"sync"

	"github.com/go-gst/go-gst/gst"
)

var initOnce sync.Once

// Init initialises GStreamer once per process.
func Init() { initOnce.Do(func() { gst.Init(nil) }) }

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
