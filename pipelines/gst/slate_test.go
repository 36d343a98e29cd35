package gst

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// lumaSpread decodes a file and returns, per video frame in order, the
// standard deviation of its luma at 64x36: SMPTE bars are far above 40,
// the slate (a flat dark frame with a line of text) far below.
func lumaSpread(t *testing.T, file string) []float64 {
	t.Helper()
	Init()
	desc := fmt.Sprintf("filesrc location=%s ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=GRAY8,width=64,height=36 ! fakesink name=v sync=false", file)
	p, err := gst.NewPipelineFromString(desc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []float64
	v, _ := p.GetElementByName("v")
	v.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		b := info.GetBuffer()
		if b == nil {
			return gst.PadProbeOK
		}
		data := b.Bytes()
		var sum, sq float64
		for _, y := range data {
			sum += float64(y)
			sq += float64(y) * float64(y)
		}
		n := float64(len(data))
		mu.Lock()
		out = append(out, math.Sqrt(max(sq/n-(sum/n)*(sum/n), 0)))
		mu.Unlock()
		return gst.PadProbeOK
	})
	if err := p.SetState(gst.StatePlaying); err != nil {
		t.Fatal(err)
	}
	p.GetPipelineBus().TimedPopFiltered(gst.ClockTime(60*time.Second), gst.MessageEOS|gst.MessageError)
	_ = p.SetState(gst.StateNull)
	mu.Lock()
	defer mu.Unlock()
	return out
}

// runs compresses a frame sequence into runs of "live"/"slate".
func runs(spread []float64) []string {
	var rs []string
	for _, s := range spread {
		kind := "live"
		if s < 40 {
			kind = "slate"
		}
		if len(rs) == 0 || rs[len(rs)-1] != kind {
			rs = append(rs, kind)
		}
	}
	return rs
}

// Signal loss: every output and the recording carry the slate within 1 s,
// and the live picture within 1 s of the signal's return, with no output
// reconnecting and no gap in the stream.
func TestSlateOnSignalLoss(t *testing.T) {
	dir := t.TempDir()
	srtPort := freeUDPPort(t)
	recv := filepath.Join(dir, "srt.ts")
	srtReceiver(t, srtPort, true, recv)
	nginx := startRTMPServer(t)
	req := testRequest(
		mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", srtPort)),
		mustOutput(t, "rtmp", nginx.url("live", "room1")),
	)
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	e, stop := runEngine(t, mustPlan(t, req))
	events := watchEvents(t, e)
	waitFor(t, 10*time.Second, "outputs up", func() bool {
		return outputState(e, "srt") == pipelines.OutputUp && outputState(e, "rtmp") == pipelines.OutputUp
	})
	time.Sleep(3 * time.Second)

	ctx := context.Background()
	lost := time.Now()
	if err := e.SetOnAir(ctx, pipelines.OnAir{Slate: true}); err != nil {
		t.Fatal(err)
	}
	events.wait(t, pipelines.EventSlateOn, time.Second)
	t.Logf("slate on air %s after signal loss", time.Since(lost).Round(time.Millisecond))
	if !e.Stats().Slate {
		t.Error("stats do not show the slate")
	}
	time.Sleep(4 * time.Second)
	back := time.Now()
	if err := e.SetOnAir(ctx, pipelines.OnAir{}); err != nil {
		t.Fatal(err)
	}
	events.wait(t, pipelines.EventSlateOff, time.Second)
	t.Logf("live picture back %s after the signal", time.Since(back).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	st := e.Stats()
	stop()
	nginx.quit()

	for _, o := range st.Outputs {
		if o.Reconnects != 0 {
			t.Errorf("output %s reconnected %d times", o.Name, o.Reconnects)
		}
	}
	flvs := nginx.recordings()
	if len(flvs) != 1 {
		t.Fatalf("nginx recorded %d streams, want 1 (no reconnect)", len(flvs))
	}
	for what, file := range map[string]string{"srt": recv, "rtmp": flvs[0], "recording": segments(t, filepath.Join(dir, "rec"))[0]} {
		m := analyze(t, file)
		// nginx's FLV recording of the RTMP stream shows up to ~170 ms
		// without frames at a switch (a new AVC sequence header); SRT and
		// the recording show none.
		gapLimit := 150 * time.Millisecond
		if what == "rtmp" {
			gapLimit = 250 * time.Millisecond
		}
		if m.maxGap > gapLimit {
			t.Errorf("%s: %s gap at the switch", what, m.maxGap)
		}
		got := runs(lumaSpread(t, file))
		t.Logf("%s: %v, %d frames", what, got, m.videoFrames)
		if fmt.Sprint(got) != "[live slate live]" {
			t.Errorf("%s carries %v, want [live slate live]", what, got)
		}
	}
}

// eventLog collects an engine's events for assertions.
type eventLog struct {
	mu  sync.Mutex
	evs []pipelines.Event
}

func watchEvents(t *testing.T, e *Engine) *eventLog {
	l := &eventLog{}
	go func() {
		for ev := range e.Events() {
			t.Logf("event %s %s %s", ev.Kind, ev.Part, ev.Msg)
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// watchEventsAsAgent is watchEvents with the agent's answer to the facts
// the engine reports (agent/input.go decides what goes on air): a flat
// picture or a failed capture put the slate on air with the capture kept
// running, and the picture or capture coming back returns to live.
func watchEventsAsAgent(t *testing.T, e *Engine) *eventLog {
	l := &eventLog{}
	go func() {
		flat, failed := false, false
		for ev := range e.Events() {
			t.Logf("event %s %s %s", ev.Kind, ev.Part, ev.Msg)
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
			switch {
			case ev.Kind == pipelines.EventPictureLost:
				flat = true
			case ev.Kind == pipelines.EventPictureBack:
				flat = false
			case ev.Kind == pipelines.EventVideoFailed && ev.Part == "video":
				failed = true
			case ev.Kind == pipelines.EventCaptureRunning, ev.Kind == pipelines.EventVideoStarted:
				failed = false
			default:
				continue
			}
			on := pipelines.OnAir{}
			if flat || failed {
				on = pipelines.OnAir{Slate: true, Capture: true}
			}
			if err := e.SetOnAir(context.Background(), on); err != nil && !errors.Is(err, ErrStopped) {
				t.Errorf("SetOnAir(%+v): %v", on, err)
			}
		}
	}()
	return l
}

// has reports whether an event of a kind arrived that was not waited for.
func (l *eventLog) has(kind pipelines.EventKind) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.evs, func(ev pipelines.Event) bool { return ev.Kind == kind })
}

// wait waits for an event of a kind that has not been waited for yet.
func (l *eventLog) wait(t *testing.T, kind pipelines.EventKind, d time.Duration) pipelines.Event {
	t.Helper()
	var got pipelines.Event
	waitFor(t, d, string(kind), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, ev := range l.evs {
			if ev.Kind == kind {
				got = ev
				l.evs = append(l.evs[:i:i], l.evs[i+1:]...)
				return true
			}
		}
		return false
	})
	return got
}
