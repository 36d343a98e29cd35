package gst

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// slateTextSpread renders the planned slate with text (up to its text
// overlay: no clock, no encoder) and returns the spread (standard
// deviation) of one frame's luma: 0 for the plain background, well above
// for any text drawn on it.
func slateTextSpread(t *testing.T, text string) float64 {
	t.Helper()
	req := testRequest()
	req.SlateText = text
	plan := mustPlan(t, req)
	chain := plan.Slate.Chain
	i := slices.IndexFunc(chain, func(e pipelines.Element) bool { return e.Factory == "textoverlay" })
	if i < 0 {
		t.Fatal("the slate has no text overlay")
	}
	pp, err := newPipe("slate-text")
	if err != nil {
		t.Fatal(err)
	}
	defer pp.stop()
	els, _, err := addChain(pp.p, chain[:i+1])
	if err != nil {
		t.Fatal(err)
	}
	conv, _ := gst.NewElement("videoconvert")
	caps, _ := gst.NewElement("capsfilter")
	caps.SetArg("caps", "video/x-raw,format=GRAY8")
	sink, _ := gst.NewElement("fakesink")
	if err := pp.p.AddMany(conv, caps, sink); err != nil {
		t.Fatal(err)
	}
	if err := gst.ElementLinkMany(els[len(els)-1], conv, caps, sink); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	got := make(chan float64, 1)
	sink.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
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
		once.Do(func() { got <- math.Sqrt(max(sq/n-(sum/n)*(sum/n), 0)) })
		return gst.PadProbeOK
	})
	if err := pp.start(true); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the slate rendered no frame")
	}
	return 0
}

// The slate's text is shown as written: characters that mean something in
// Pango markup ("Q&A", "<b>") used to blank the whole text.
func TestSlateTextIsShownAsWritten(t *testing.T) {
	blank := slateTextSpread(t, " ")
	for _, text := range []string{"Back soon", "Q&A in 5 minutes", "Talk <b>resumes</b> at 14:00", "Tom & Jerry's \"show\""} {
		if s := slateTextSpread(t, text); s < blank+3 {
			t.Errorf("slate text %q renders blank: luma spread %.1f, background %.1f", text, s, blank)
		}
	}
}
