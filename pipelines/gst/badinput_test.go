package gst

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
)

// The launch line capboxd prints runs in gst-launch-1.0 and produces the
// same stream: same codec, size, frame rate and audio.
func TestLaunchLineRunsTheSameStream(t *testing.T) {
	dir := t.TempDir()
	port := freeUDPPort(t)
	req := testRequest(mustOutput(t, "live", fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port)))
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Minute}
	plan := mustPlan(t, req)
	if err := os.MkdirAll(req.Record.Dir, 0o755); err != nil { // capboxd makes it; gst-launch does not
		t.Fatal(err)
	}
	gl := exec.Command("sh", "-c", "exec "+plan.Launch)
	var out strings.Builder
	gl.Stdout, gl.Stderr = &out, &out
	if err := gl.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: gl}
	t.Cleanup(p.kill)
	time.Sleep(time.Second)
	recv := filepath.Join(dir, "recv.ts")
	r := srtReceiver(t, port, false, recv)
	time.Sleep(4 * time.Second)
	r.kill()
	p.kill()
	if !strings.Contains(out.String(), "Setting pipeline to PLAYING") {
		t.Fatalf("gst-launch did not play:\n%s", out.String())
	}

	segs := segments(t, filepath.Join(dir, "rec"))
	if len(segs) == 0 {
		t.Fatalf("the launch line recorded nothing:\n%s", out.String())
	}
	live := analyze(t, recv)
	rec := analyze(t, segs[0])
	t.Logf("launch line: srt %+v, recording %+v", live, rec)
	for what, m := range map[string]media{"srt": live, "recording": rec} {
		if m.width != plan.Video.Width || m.height != plan.Video.Height || !m.hasAudio || !strings.Contains(m.videoCodec, "H.264") {
			t.Errorf("%s from the launch line: %+v, want %dx%d H.264 with audio", what, m, plan.Video.Width, plan.Video.Height)
		}
		if m.videoFrames < 60 {
			t.Errorf("%s: only %d frames", what, m.videoFrames)
		}
	}
}

// A stream key is a property value, never pipeline syntax: the key below
// reaches rtmp2sink verbatim, builds no extra element, and is never
// printed.
func TestStreamKeyIsJustAKey(t *testing.T) {
	const key = `x ! filesink location=/tmp/capbox-pwned name="y"`
	o, err := pipelines.ParseOutput("yt", "rtmp://127.0.0.1:1935/live", key, "")
	if err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, testRequest(o))
	js, _ := json.Marshal(plan)
	if strings.Contains(string(js), "pwned") || strings.Contains(plan.Launch, "pwned") {
		t.Fatal("the key leaked into the plan or the launch line")
	}
	s, err := newSink(plan.Outputs[0].Sink, 1<<20, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	got, err := s.final.GetProperty("stream")
	if err != nil || got != key {
		t.Errorf("rtmp2sink stream = %q (%v), want the key verbatim", got, err)
	}
	it, err := s.pipe.p.GetElements()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range it {
		names = append(names, e.GetFactory().GetName())
	}
	want := len(plan.Outputs[0].Sink.Chain) + len(plan.Outputs[0].Sink.VideoParse) + len(plan.Outputs[0].Sink.AudioParse) + 2
	if len(names) != want {
		t.Errorf("pipeline has %v, want %d elements", names, want)
	}
	for _, n := range names {
		if n == "filesink" {
			t.Error("a filesink was built from the key")
		}
	}
}

// An output whose key file is missing fails alone, with an error naming
// the problem and not the secret; the others keep running.
func TestMissingKeyFileFailsOnlyThatOutput(t *testing.T) {
	port := freeUDPPort(t)
	srtReceiver(t, port, true, filepath.Join(t.TempDir(), "r.ts"))
	bad, err := pipelines.ParseOutput("yt", "rtmp://127.0.0.1:1935/live", "", "/nonexistent/yt.key")
	if err != nil {
		t.Fatal(err)
	}
	e, stop := runEngine(t, mustPlan(t, testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)), bad)))
	defer stop()
	waitFor(t, 10*time.Second, "srt up", func() bool { return outputState(e, "srt") == pipelines.OutputUp })
	waitFor(t, 5*time.Second, "yt down", func() bool { return outputState(e, "yt") == pipelines.OutputDown })
	for _, o := range e.Stats().Outputs {
		if o.Name == "yt" && !strings.Contains(o.LastError, "secret file unusable") {
			t.Errorf("yt error %q does not say what is wrong", o.LastError)
		}
	}
	b := outputBytes(e, "srt")
	time.Sleep(1500 * time.Millisecond)
	if outputBytes(e, "srt") <= b {
		t.Error("srt stopped sending while yt failed")
	}
}

// A missing element fails only the output that needs it.
func TestMissingElementFailsOnlyThatOutput(t *testing.T) {
	port := freeUDPPort(t)
	srtReceiver(t, port, true, filepath.Join(t.TempDir(), "r.ts"))
	plan := mustPlan(t, testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)), mustOutput(t, "odd", "srt://127.0.0.1:9?mode=caller")))
	plan.Outputs[1].Sink.Chain[1].Factory = "nosuchsink"
	e, stop := runEngine(t, plan)
	defer stop()
	waitFor(t, 10*time.Second, "srt up, odd down", func() bool {
		return outputState(e, "srt") == pipelines.OutputUp && outputState(e, "odd") == pipelines.OutputDown
	})
	for _, o := range e.Stats().Outputs {
		if o.Name == "odd" && !strings.Contains(o.LastError, "nosuchsink") {
			t.Errorf("error %q does not name the element", o.LastError)
		}
	}
	if _, _, err := makeElement(pipelines.Element{Factory: "nosuchsink"}); !errors.Is(err, ErrMissingElement) {
		t.Errorf("makeElement: %v", err)
	}
	if _, _, err := makeElement(pipelines.Element{Factory: "queue", Props: []pipelines.Prop{{Name: "no-such-prop", Value: "1"}}}); !errors.Is(err, ErrNoProperty) {
		t.Errorf("makeElement with a bad property: %v", err)
	}
}

// An encoder that refuses its input caps fails the video front: the
// failure is reported as an event, the slate goes on air (as the agent
// decides), and outputs and recording keep running.
func TestEncoderRefusingCapsKeepsOutputsRunning(t *testing.T) {
	port := freeUDPPort(t)
	recv := filepath.Join(t.TempDir(), "r.ts")
	srtReceiver(t, port, true, recv)
	plan := mustPlan(t, testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port))))
	// x264enc cannot take packed RGB: no converter in between.
	plan.Video.Chain = append([]pipelines.Element{
		{Factory: "videotestsrc", Props: []pipelines.Prop{{Name: "is-live", Value: "true"}}},
		pipelines.Caps("video/x-raw,format=RGBx,width=640,height=360,framerate=30/1"),
	}, plan.Video.Chain[len(plan.Video.Chain)-4:]...)
	e, stop := runEngine(t, plan)
	events := watchEventsAsAgent(t, e)
	ev := events.wait(t, pipelines.EventVideoFailed, 10*time.Second)
	t.Logf("video failed: %s", ev.Msg)
	events.wait(t, pipelines.EventSlateOn, 5*time.Second)
	waitFor(t, 10*time.Second, "srt up on the slate", func() bool { return outputState(e, "srt") == pipelines.OutputUp })
	time.Sleep(2 * time.Second)
	stop()
	if m := analyze(t, recv); m.videoFrames < 30 {
		t.Errorf("the slate did not reach the output: %+v", m)
	}
}
