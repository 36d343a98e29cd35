package pipelines_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"capbox/board"
	"capbox/pipelines"
)

// An HDMI input above the config's encode bounds is encoded within them:
// the scale/rate caps, the keyframe distance and the slate follow the
// bounded size and rate (aspect ratio kept), while the front still names
// the capture's own format.
func TestLockedInputIsEncodedWithinTheBounds(t *testing.T) {
	for _, c := range []struct {
		name                string
		w, h, fps           int
		maxW, maxH, maxFPS  int
		wantW, wantH, wantF int
	}{
		{"576p50 in 320x240@15", 720, 576, 50, 320, 240, 15, 300, 240, 15},
		{"1080p60 in 720p30", 1920, 1080, 60, 1280, 720, 30, 1280, 720, 30},
		{"rate only", 1280, 720, 60, 1920, 1080, 25, 1280, 720, 25},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := board.VideoInput{
				Device: "/dev/video0", Driver: "vivid", Kind: board.KindVirtual, Probed: true, DVTimings: true,
				Signal:  board.Signal{State: board.SignalLocked, Width: c.w, Height: c.h, FPS: c.fps, FPSExact: float64(c.fps)},
				Formats: []board.Format{{FourCC: "UYVY"}},
			}
			p, err := pipelines.Build(pipelines.Request{
				Detection: board.Detection{VideoInputs: []board.VideoInput{in}, Chosen: board.Choice{VideoInput: "/dev/video0"}},
				VideoPin:  "/dev/video0", AudioPin: "none", BitrateKbps: 1000, KeyframeInterval: time.Second,
				MaxWidth: c.maxW, MaxHeight: c.maxH, MaxFPS: c.maxFPS,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := "video/x-raw,width=" + strconv.Itoa(c.wantW) + ",height=" + strconv.Itoa(c.wantH) + ",framerate=" + strconv.Itoa(c.wantF) + "/1"
			if !strings.Contains(p.Launch, "videorate ! "+want+" ") {
				t.Errorf("no %q after the scaler in %s", want, p.Launch)
			}
			if p.Encoder.KeyframeFrames != c.wantF {
				t.Errorf("keyframe every %d frames, want %d (1 s at %d fps)", p.Encoder.KeyframeFrames, c.wantF, c.wantF)
			}
			if s := p.Slate; s == nil {
				t.Errorf("no slate")
			} else if s.Width != c.wantW || s.Height != c.wantH || s.FPS != c.wantF {
				t.Errorf("slate at %dx%d@%d, want %dx%d@%d like the live encode", s.Width, s.Height, s.FPS, c.wantW, c.wantH, c.wantF)
			}
			if v := p.Video; v.Width != c.w || v.Height != c.h || v.FPS != c.fps {
				t.Errorf("front says %dx%d@%d, want the capture's %dx%d@%d", v.Width, v.Height, v.FPS, c.w, c.h, c.fps)
			}
		})
	}
}

// elementsWithout is a GStreamer registry that has every element but some.
type elementsWithout []string

func (m elementsWithout) HasElement(name string) bool {
	for _, n := range m {
		if n == name {
			return false
		}
	}
	return true
}

// Without GStreamer's pango plugin (textoverlay, clockoverlay) the slate
// and the test pattern are planned without their text: a plain slate is
// still a slate, where a missing element would leave the outputs on the
// dead input.
func TestSlateWithoutTextOverlays(t *testing.T) {
	p, err := pipelines.Build(pipelines.Request{
		VideoPin: "test", AudioPin: "none", BitrateKbps: 1000, KeyframeInterval: time.Second,
		MaxWidth: 1280, MaxHeight: 720, MaxFPS: 30, SlateText: "Back soon",
		Elements: elementsWithout{"textoverlay", "clockoverlay"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Slate == nil {
		t.Fatal("no slate")
	}
	for _, f := range []pipelines.Front{p.Video, *p.Slate} {
		for _, e := range f.Chain {
			if e.Factory == "textoverlay" || e.Factory == "clockoverlay" {
				t.Errorf("%s front uses %s, which is not installed", f.Kind, e.Factory)
			}
		}
	}
	if strings.Contains(p.Launch, "overlay") {
		t.Errorf("launch line uses an overlay: %s", p.Launch)
	}
}
