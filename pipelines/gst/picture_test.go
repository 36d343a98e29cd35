package gst

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// An input that cannot report its signal (a USB dongle) and sends a flat
// picture (its black "no signal" screen): after flatFor the slate goes on
// air, reported as no picture; when the picture comes back, so does the
// live stream, and the recording carries live, then flat/slate, then live.
// A dark picture with a small feature does not count as flat.
func TestFlatPictureShowsTheSlate(t *testing.T) {
	dir := t.TempDir()
	req := testRequest()
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	plan := mustPlan(t, req)
	// The test pattern stands in for the dongle: named so the test can
	// switch it to black, and without its clock (text is not flat).
	plan.Video.WatchPicture = true
	plan.Video.Chain = slices.DeleteFunc(plan.Video.Chain, func(e pipelines.Element) bool { return e.Factory == "clockoverlay" })
	plan.Video.Chain[0].Name = "src"
	e, stop := runEngine(t, plan)
	events := watchEventsAsAgent(t, e)
	waitFor(t, 10*time.Second, "live video", func() bool { return e.Stats().Video.Frames > 30 })

	pattern := func(p string) {
		t.Helper()
		var src *gst.Element
		_ = e.do(context.Background(), func() error {
			if e.video.live != nil {
				src = e.video.live.pipe.element("src")
			}
			return nil
		})
		if src == nil {
			t.Fatal("no live front")
		}
		src.SetArg("pattern", p)
	}
	time.Sleep(time.Second)
	if e.Stats().Video.NoPicture {
		t.Fatal("the moving pattern counts as no picture")
	}
	flat := time.Now()
	pattern("black")
	events.wait(t, pipelines.EventPictureLost, flatFor+2*time.Second)
	if d := time.Since(flat); d < flatFor {
		t.Errorf("no picture reported %s after the picture went flat, before %s", d, flatFor)
	}
	events.wait(t, pipelines.EventSlateOn, 2*time.Second)
	t.Logf("slate on air %s after the picture went flat", time.Since(flat).Round(time.Millisecond))
	if st := e.Stats(); !st.Video.NoPicture || !st.Slate {
		t.Errorf("stats: no picture %v, slate %v", st.Video.NoPicture, st.Slate)
	}
	time.Sleep(2 * time.Second)
	back := time.Now()
	pattern("smpte")
	events.wait(t, pipelines.EventPictureBack, 1500*time.Millisecond)
	events.wait(t, pipelines.EventSlateOff, 2*time.Second)
	t.Logf("live picture back %s after it returned", time.Since(back).Round(time.Millisecond))
	if e.Stats().Video.NoPicture {
		t.Error("stats still say no picture")
	}
	// A dark picture with something small on it (videotestsrc's ball: a
	// disc of 40 pixels on black) is a picture.
	pattern("ball")
	time.Sleep(flatFor + 1500*time.Millisecond)
	if e.Stats().Video.NoPicture || events.has(pipelines.EventPictureLost) {
		t.Error("a small ball on black counts as no picture")
	}
	pattern("smpte")
	time.Sleep(2 * time.Second)
	stop()

	file := segments(t, filepath.Join(dir, "rec"))[0]
	m := analyze(t, file)
	if m.maxGap > 150*time.Millisecond {
		t.Errorf("recording: %s gap", m.maxGap)
	}
	// Black and the slate are both flat (runs() counts them as "slate").
	// The ball on black is flat by that measure too, then the bars again.
	if got := runs(lumaSpread(t, file)); !slices.Equal(got, []string{"live", "slate", "live", "slate", "live"}) {
		t.Errorf("recording carries %v, want [live slate live slate live]", got)
	}
}
