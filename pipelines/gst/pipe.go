package gst

/*
#include "capbox.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/go-gst/go-gst/gst"
)

// Errors of a pipeline's life.
var (
	ErrStateChange = errors.New("state change failed")
	ErrStateHung   = errors.New("state change did not finish in time")
	ErrStopped     = errors.New("pipeline stopped")
)

// StateTimeout bounds a state change: a hung change becomes an error.
const StateTimeout = 10 * time.Second

// busMsg is what a pipe reports from its bus: an error, end of stream, a
// level reading or a recording fragment opened/closed.
type busMsg struct {
	err    error
	eos    bool
	source string
	level  *levelReading
	// fragment is a splitmuxsink file; opened tells which edge.
	fragment string
	opened   bool
}

// levelReading is the loudest channel's peak and RMS in dBFS.
type levelReading struct{ peak, rms float64 }

// pipe is one GStreamer pipeline with its bus drained by a goroutine.
// Its states only move forward: new -> playing -> stopped.
type pipe struct {
	name     string
	p        *gst.Pipeline
	redact   redactor
	msgs     chan busMsg
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newPipe(name string) (*pipe, error) {
	Init()
	p, err := gst.NewPipeline(name)
	if err != nil {
		return nil, fmt.Errorf("new pipeline %s: %w", name, err)
	}
	useSystemClock(p)
	return &pipe{name: name, p: p, msgs: make(chan busMsg, 64), done: make(chan struct{})}, nil
}

// start sets the pipeline playing. With wait it also waits (bounded) for
// it to get there; a pipeline fed from outside (appsrc) cannot finish
// prerolling before it is fed, so it is not waited for.
func (pp *pipe) start(wait bool) error {
	pp.wg.Add(1)
	go pp.drainBus()
	if err := pp.p.SetState(gst.StatePlaying); err != nil {
		return fmt.Errorf("%s: %w: %s", pp.name, ErrStateChange, pp.firstError())
	}
	timeout := StateTimeout
	if !wait {
		timeout = 0
	}
	ret, _ := pp.p.GetState(gst.StatePlaying, gst.ClockTime(timeout))
	if !wait && ret == gst.StateChangeAsync {
		return nil
	}
	switch ret {
	case gst.StateChangeSuccess, gst.StateChangeNoPreroll:
		return nil
	case gst.StateChangeAsync:
		return fmt.Errorf("%s: %w", pp.name, ErrStateHung)
	default:
		return fmt.Errorf("%s: %w: %s", pp.name, ErrStateChange, pp.firstError())
	}
}

// firstError takes an error the bus already reported, for a better message.
func (pp *pipe) firstError() string {
	deadline := time.After(200 * time.Millisecond)
	for {
		select {
		case m := <-pp.msgs:
			if m.err != nil {
				return m.err.Error()
			}
		case <-deadline:
			if np := pp.notPlaying(); np != "" {
				return "no error message (not playing: " + np + ")"
			}
			return "no error message"
		}
	}
}

// notPlaying names the elements that are not playing, with their state.
func (pp *pipe) notPlaying() string {
	c := C.capbox_not_playing(pp.c())
	if c == nil {
		return ""
	}
	defer C.g_free(C.gpointer(unsafe.Pointer(c)))
	return C.GoString(c)
}

func (pp *pipe) drainBus() {
	defer pp.wg.Done()
	bus := pp.p.GetPipelineBus()
	for {
		// Block until a message: polling with a timeout keeps the Go
		// runtime's monitor awake (measured: most of the agent's own CPU).
		msg := bus.TimedPop(gst.ClockTimeNone)
		if msg == nil {
			continue
		}
		var out *busMsg
		switch msg.Type() {
		case gst.MessageApplication:
			if st := msg.GetStructure(); st != nil && st.Name() == "capbox-stop" {
				return
			}
		case gst.MessageError:
			gerr := msg.ParseError()
			text := fmt.Sprintf("%s: %s", msg.Source(), gerr.Error())
			if d := gerr.DebugString(); d != "" {
				text += " (" + d + ")"
			}
			out = &busMsg{err: errors.New(pp.redact.clean(text)), source: msg.Source()}
		case gst.MessageEOS:
			out = &busMsg{eos: true}
		case gst.MessageElement:
			out = elementMessage(msg)
		}
		if out == nil {
			continue
		}
		select {
		case pp.msgs <- *out:
		case <-pp.done:
			return
		default: // the owner is behind: drop element messages, keep errors
			if out.err != nil || out.eos {
				select {
				case pp.msgs <- *out:
				case <-pp.done:
					return
				}
			}
		}
	}
}

// elementMessage reads the element messages capbox uses; others are noise.
func elementMessage(msg *gst.Message) *busMsg {
	st := msg.GetStructure()
	if st == nil {
		return nil
	}
	switch name := st.Name(); name {
	case "level":
		var peak, rms C.double
		if C.capbox_level((*C.GstMessage)(unsafe.Pointer(msg.Instance())), &peak, &rms) == 0 {
			return nil
		}
		return &busMsg{level: &levelReading{peak: float64(peak), rms: float64(rms)}, source: msg.Source()}
	case "splitmuxsink-fragment-opened", "splitmuxsink-fragment-closed":
		v, err := st.GetValue("location")
		loc, ok := v.(string)
		if err != nil || !ok {
			return nil
		}
		return &busMsg{fragment: loc, opened: name == "splitmuxsink-fragment-opened", source: msg.Source()}
	}
	return nil
}

// waitEOS waits for end of stream (or an error) after EOS was sent.
func (pp *pipe) waitEOS(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-pp.msgs:
			if m.eos {
				return nil
			}
			if m.err != nil {
				return m.err
			}
		case <-deadline:
			return fmt.Errorf("%s: no end of stream within %s", pp.name, timeout)
		}
	}
}

// stop ends the bus goroutine and tears the pipeline down (NULL state).
func (pp *pipe) stop() {
	pp.stopOnce.Do(func() {
		close(pp.done)
		C.capbox_wake_bus(pp.c())
		pp.wg.Wait()
		done := make(chan struct{})
		go func() {
			_ = pp.p.SetState(gst.StateNull)
			close(done)
			// Also after a teardown that ended late: what it held is
			// freed at a collection.
			reclaimSoon()
		}()
		select {
		case <-done:
		case <-time.After(StateTimeout):
			// A hung teardown (a driver stuck in an ioctl) must not hang
			// the agent: leak this pipeline rather than block.
		}
	})
}

func (pp *pipe) element(name string) *gst.Element {
	e, err := pp.p.GetElementByName(name)
	if err != nil {
		return nil
	}
	return e
}

func (pp *pipe) c() *C.GstElement { return (*C.GstElement)(unsafe.Pointer(pp.p.Unsafe())) }
