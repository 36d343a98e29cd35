package gst

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"capbox/pipelines"
)

// A re-plan on the same capture node (a new resolution or rung from one
// HDMI receiver) stops the running front before starting the new one: the
// node streams to one handle only, and the new v4l2src's S_DV_TIMINGS
// failed with EBUSY while the old one ran (seen on vivid at 576p50 ->
// 720p60: 14 s on the slate with "capture failed, retrying"). Test sources
// stand in for the device here; a node only one of them may hold is what
// the plan's Kind and Device describe.
func TestReplaceOnTheSameCaptureNodeStopsTheOldFrontFirst(t *testing.T) {
	const node = "/dev/capbox-test-capture"
	req := testRequest()
	p1 := mustPlan(t, req)
	p1.Video.Kind, p1.Video.Device = pipelines.SourceV4L2, node
	e, stop := runEngine(t, p1)
	defer stop()
	waitFor(t, 5*time.Second, "frames", func() bool { return e.Stats().Video.Frames > 0 })

	live := func() *front {
		var f *front
		_ = e.do(context.Background(), func() error { f = e.video.live; return nil })
		return f
	}
	old := live()
	req.MaxWidth, req.MaxHeight = 320, 180
	p2 := mustPlan(t, req)
	p2.Video.Kind, p2.Video.Device = pipelines.SourceV4L2, node
	if err := e.ReplaceVideo(context.Background(), p2.Video, p2.Encoder, p2.Slate); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.pipe.done:
	default:
		t.Errorf("the old front still runs on %s after ReplaceVideo returned", node)
	}
	waitFor(t, 5*time.Second, "320x180 on air", func() bool { return e.Stats().Video.Width == 320 })
	if now := live(); now == old || now == nil {
		t.Errorf("no new live front")
	}
}

// The live picture takes over from the slate although its front runs with
// more latency than the slate's (a capture and its encoder against a test
// source): its keyframes arrive older than the slate's last buffer, and
// the hub, which never lets timestamps go back, waited for a newer one
// forever. Seen in the virtual capture box after the second signal loss:
// the slate stayed on the outputs while the agent said streaming.
func TestLiveTakesOverFromTheSlateWhenItRunsLater(t *testing.T) {
	p := mustPlan(t, testRequest())
	// Every live buffer reaches the hub 1.5 s after its time.
	delay := pipelines.Element{Factory: "queue", Props: []pipelines.Prop{
		{Name: "min-threshold-time", Value: "1500000000"}, {Name: "max-size-time", Value: "0"},
		{Name: "max-size-buffers", Value: "0"}, {Name: "max-size-bytes", Value: "0"},
	}}
	p.Video.Chain = append([]pipelines.Element{p.Video.Chain[0], p.Video.Chain[1], delay}, p.Video.Chain[2:]...)
	e, stop := runEngine(t, p)
	defer stop()
	events := watchEvents(t, e)
	waitFor(t, 10*time.Second, "the live picture", func() bool { st := e.Stats(); return st.Video.Frames > 0 && !st.Slate })
	ctx := context.Background()
	if err := e.SetOnAir(ctx, pipelines.OnAir{Slate: true}); err != nil {
		t.Fatal(err)
	}
	events.wait(t, pipelines.EventSlateOn, 5*time.Second)
	time.Sleep(2 * time.Second)
	back := time.Now()
	if err := e.SetOnAir(ctx, pipelines.OnAir{}); err != nil {
		t.Fatal(err)
	}
	events.wait(t, pipelines.EventSlateOff, 10*time.Second)
	t.Logf("live picture back %s after the signal", time.Since(back).Round(time.Millisecond))
	f0 := e.Stats().Video.Frames
	waitFor(t, 5*time.Second, "live frames flowing", func() bool { st := e.Stats(); return !st.Slate && st.Video.Frames > f0+10 })
}

// A new resolution reaches every output without a reconnect: the SRT
// receiver and the recording decode the old size, then the new one, and
// the output never went down (a new SPS in the same stream).
func TestResolutionChangeReachesTheOutputsWithoutAReconnect(t *testing.T) {
	dir := t.TempDir()
	port := freeUDPPort(t)
	rx := srtReceiver(t, port, true, filepath.Join(dir, "srt.ts"))
	req := testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)))
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	e, stop := runEngine(t, mustPlan(t, req))
	events := watchEvents(t, e)
	events.wait(t, pipelines.EventOutputUp, 10*time.Second)
	time.Sleep(2 * time.Second)
	req.MaxWidth, req.MaxHeight = 320, 180
	p2 := mustPlan(t, req)
	changed := time.Now()
	if err := e.ReplaceVideo(context.Background(), p2.Video, p2.Encoder, p2.Slate); err != nil {
		stop()
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "320x180 on air", func() bool { return e.Stats().Video.Width == 320 })
	t.Logf("320x180 on air %s after the change", time.Since(changed).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	stop()
	rx.kill()
	if events.has(pipelines.EventOutputDown) {
		t.Errorf("an output went down at the resolution change")
	}
	segs := segments(t, filepath.Join(dir, "rec"))
	for name, file := range map[string]string{"srt": filepath.Join(dir, "srt.ts"), "recording": segs[len(segs)-1]} {
		m := analyze(t, file)
		t.Logf("%s: %d frames, sizes %v", name, m.videoFrames, m.sizes)
		if !slices.Equal(m.sizes, []string{"640x360", "320x180"}) {
			t.Errorf("%s carried %v, want 640x360 then 320x180", name, m.sizes)
		}
	}
}
