package gst

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0
#include "capbox.h"
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/go-gst/go-gst/gst"
)

// celem returns the C element behind a go-gst element.
func celem(e *gst.Element) *C.GstElement {
	return (*C.GstElement)(unsafe.Pointer(e.Unsafe()))
}

// clockNow is the system clock's time, the clock every capbox pipeline uses.
func clockNow() time.Duration { return time.Duration(C.capbox_clock_now()) }

func useSystemClock(p *gst.Pipeline) { C.capbox_use_system_clock(celem(p.Element)) }

func baseTime(p *gst.Pipeline) time.Duration {
	return time.Duration(C.capbox_base_time(celem(p.Element)))
}

func cstr(s string) *C.char { return C.CString(s) }

func freeC(p *C.char) { C.free(unsafe.Pointer(p)) }
