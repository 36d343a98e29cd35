package gst

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
)

// The embedded default's shape: an SRT listener any player can open, plus
// a recording; both decode with the right frame count.
func TestSRTListenerAndRecording(t *testing.T) {
	port := freeUDPPort(t)
	dir := t.TempDir()
	req := testRequest(mustOutput(t, "live", fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port)))
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Minute}
	e, stop := runEngine(t, mustPlan(t, req))

	waitFor(t, 5*time.Second, "first encoded frames", func() bool { return e.Stats().Video.Frames > 0 })
	recv := filepath.Join(dir, "recv.ts")
	r := srtReceiver(t, port, false, recv)
	const seconds = 4
	time.Sleep(seconds * time.Second)
	r.kill()
	stop()

	got := analyze(t, recv)
	t.Logf("srt receiver: %+v", got)
	if got.width != 640 || got.height != 360 {
		t.Errorf("received %dx%d, want 640x360", got.width, got.height)
	}
	// Frames decoded over the receiver's time, at 30 fps; the receiver
	// joins at a keyframe, so allow a second of slack each way.
	if got.videoFrames < 30*(seconds-2) || got.videoFrames > 30*(seconds+2) {
		t.Errorf("received %d frames in ~%d s at 30 fps", got.videoFrames, seconds)
	}
	if !got.hasAudio {
		t.Error("received no audio")
	}
	if !strings.Contains(got.videoCodec, "H.264") {
		t.Errorf("video codec %q", got.videoCodec)
	}

	segs := segments(t, filepath.Join(dir, "rec"))
	if len(segs) != 1 {
		t.Fatalf("want 1 segment, got %v", segs)
	}
	rec := analyze(t, segs[0])
	t.Logf("recording: %+v", rec)
	if rec.videoFrames < 30*seconds || !rec.hasAudio {
		t.Errorf("recording has %d frames (audio %v), want >= %d with audio", rec.videoFrames, rec.hasAudio, 30*seconds)
	}
	if rec.maxGap > 100*time.Millisecond {
		t.Errorf("recording has a %s gap between frames", rec.maxGap)
	}
	if !strings.HasPrefix(filepath.Base(segs[0]), pipelines.RecordingPrefix) {
		t.Errorf("segment name %s", segs[0])
	}
}

// A state change that failed without an error on the bus is reported with
// the elements that did not get there.
func TestNotPlayingNamesTheElements(t *testing.T) {
	pp, err := newPipe("not-playing")
	if err != nil {
		t.Fatal(err)
	}
	defer pp.stop()
	if _, _, err := addChain(pp.p, []pipelines.Element{{Factory: "videotestsrc", Name: "pattern"}, {Factory: "fakesink", Name: "out"}}); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(pp.notPlaying(), ", ")
	slices.Sort(got)
	if want := []string{"out NULL", "pattern NULL"}; !slices.Equal(got, want) {
		t.Errorf("not playing: %q, want %q", got, want)
	}
	if err := pp.start(true); err != nil {
		t.Fatal(err)
	}
	if np := pp.notPlaying(); np != "" {
		t.Errorf("playing, yet not playing: %q", np)
	}
}

// A command sent after the engine stopped is refused at once with
// ErrStopped; it does not wait for its context.
func TestCommandAfterTheStopIsRefused(t *testing.T) {
	e, stop := runEngine(t, mustPlan(t, testRequest()))
	waitFor(t, 10*time.Second, "first encoded frames", func() bool { return e.Stats().Video.Frames > 0 })
	stop()
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := e.SetOnAir(ctx, pipelines.OnAir{Slate: i%2 == 0})
		cancel()
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("SetOnAir %d after the stop = %v, want ErrStopped", i, err)
		}
	}
}
