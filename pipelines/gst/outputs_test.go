package gst

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
)

// One encode, three destinations at once: SRT (caller to a listener),
// RTMP to nginx, and the recording. All three decode, H.264 4:2:0 with
// AAC audio, with the frames the duration implies.
func TestSRTRTMPAndRecordingTogether(t *testing.T) {
	const seconds = 20
	dir := t.TempDir()
	srtPort := freeUDPPort(t)
	recv := filepath.Join(dir, "srt.ts")
	srtReceiver(t, srtPort, true, recv)
	nginx := startRTMPServer(t)

	req := testRequest(
		mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d?streamid=room1", srtPort)),
		mustOutput(t, "rtmp", nginx.url("live", "room1")),
	)
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	e, stop := runEngine(t, mustPlan(t, req))
	waitFor(t, 10*time.Second, "both outputs up", func() bool {
		return outputState(e, "srt") == pipelines.OutputUp && outputState(e, "rtmp") == pipelines.OutputUp
	})
	time.Sleep(seconds * time.Second)
	st := e.Stats()
	stop()
	nginx.quit()

	for _, o := range st.Outputs {
		if o.Reconnects != 0 || o.Bytes == 0 || o.BitrateKbps == 0 {
			t.Errorf("output %s: %+v", o.Name, o)
		}
	}
	check := func(what, file string, minFrames int) {
		m := analyze(t, file)
		t.Logf("%s: %+v", what, m)
		if m.width != 640 || m.height != 360 || !m.hasAudio {
			t.Errorf("%s: %dx%d audio=%v", what, m.width, m.height, m.hasAudio)
		}
		if !strings.Contains(m.videoCodec, "H.264 (High Profile)") && !strings.Contains(m.videoCodec, "H.264 (Main Profile)") {
			t.Errorf("%s: codec %q, want H.264 High or Main", what, m.videoCodec)
		}
		if m.videoFrames < minFrames {
			t.Errorf("%s: %d frames, want >= %d", what, m.videoFrames, minFrames)
		}
		// nginx's FLV recorder shows an occasional 200 ms hole on a busy
		// machine; SRT and the recording must show none.
		gapLimit := 100 * time.Millisecond
		if what == "rtmp" {
			gapLimit = 250 * time.Millisecond
		}
		if m.maxGap > gapLimit {
			t.Errorf("%s: %s gap in video", what, m.maxGap)
		}
	}
	check("srt", recv, 30*(seconds-1))
	flvs := nginx.recordings()
	if len(flvs) != 1 {
		t.Fatalf("nginx recorded %v", flvs)
	}
	check("rtmp", flvs[0], 30*(seconds-1))
	segs := segments(t, filepath.Join(dir, "rec"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	check("recording", segs[0], 30*seconds)
}

// The RTMP server dies for 10 s mid-stream: SRT and the recording lose no
// frame, and RTMP is back within 2 s of the server's return.
func TestRTMPServerOutage(t *testing.T) {
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
	waitFor(t, 10*time.Second, "rtmp up", func() bool { return outputState(e, "rtmp") == pipelines.OutputUp })
	time.Sleep(3 * time.Second)

	nginx.stop()
	waitFor(t, 5*time.Second, "rtmp down", func() bool { return outputState(e, "rtmp") != pipelines.OutputUp })
	time.Sleep(10 * time.Second)
	back := time.Now()
	nginx.start()
	waitFor(t, 2*time.Second, "rtmp up within 2 s of the server's return", func() bool {
		return outputState(e, "rtmp") == pipelines.OutputUp
	})
	t.Logf("rtmp up %s after the server returned", time.Since(back).Round(10*time.Millisecond))
	// Bytes must really flow again, not just a state.
	b0 := outputBytes(e, "rtmp")
	time.Sleep(2 * time.Second)
	if outputBytes(e, "rtmp") <= b0 {
		t.Error("rtmp is up but sends nothing")
	}
	st := e.Stats()
	stop()
	nginx.quit()

	for _, o := range st.Outputs {
		if o.Name == "srt" && o.Reconnects != 0 {
			t.Errorf("srt reconnected %d times during the RTMP outage", o.Reconnects)
		}
		if o.Name == "rtmp" && o.Reconnects == 0 {
			t.Error("rtmp shows no reconnect")
		}
	}
	for what, file := range map[string]string{"srt": recv, "recording": segments(t, filepath.Join(dir, "rec"))[0]} {
		m := analyze(t, file)
		t.Logf("%s: %+v", what, m)
		if m.maxGap > 100*time.Millisecond {
			t.Errorf("%s lost frames: %s gap", what, m.maxGap)
		}
		if dur := m.end - m.first; m.videoFrames < int(dur.Seconds()*30)-2 {
			t.Errorf("%s: %d frames over %s", what, m.videoFrames, dur)
		}
	}
	flvs := nginx.recordings()
	if len(flvs) < 2 {
		t.Errorf("nginx got %d streams, want 2 (before and after the outage)", len(flvs))
	}
	for _, f := range flvs {
		if m := analyze(t, f); m.videoFrames < 30 {
			t.Errorf("rtmp recording %s has %d frames", f, m.videoFrames)
		}
	}
}

func outputBytes(e *Engine, name string) uint64 {
	for _, o := range e.Stats().Outputs {
		if o.Name == name {
			return o.Bytes
		}
	}
	return 0
}

// Fragmented MP4 recording: while the segment is being written, what is
// on disk already plays (what a crash or a power cut leaves of it), and the
// whole segment plays after a clean stop.
func TestMP4Recording(t *testing.T) {
	dir := t.TempDir()
	req := testRequest()
	req.Record = &pipelines.RecordSettings{Dir: dir, Format: "mp4", Segment: time.Hour}
	_, stop := runEngine(t, mustPlan(t, req))
	time.Sleep(4 * time.Second)
	segs := segments(t, dir)
	if len(segs) != 1 || !strings.HasSuffix(segs[0], ".mp4") {
		stop()
		t.Fatalf("segments %v", segs)
	}
	cut, err := os.ReadFile(segs[0])
	if err != nil {
		stop()
		t.Fatal(err)
	}
	stop()
	if n := bytes.Count(cut, []byte("moof")); n < 2 {
		t.Errorf("the segment being written holds %d fragments (%d bytes)", n, len(cut))
	}
	cutFile := filepath.Join(t.TempDir(), "cut.mp4")
	if err := os.WriteFile(cutFile, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	if m := analyze(t, cutFile); m.videoFrames < 60 {
		t.Errorf("the segment as it was mid-recording plays %d frames, want the first seconds: %+v", m.videoFrames, m)
	}
	if m := analyze(t, segs[0]); m.videoFrames < 90 || !m.hasAudio {
		t.Errorf("mp4 recording: %+v", m)
	}
}

// An SRT caller whose receiver dies is reported down (srtsink itself only
// warns and reconnects), and up again when the receiver returns.
func TestSRTPeerLossIsReported(t *testing.T) {
	dir := t.TempDir()
	port := freeUDPPort(t)
	r := srtReceiver(t, port, true, filepath.Join(dir, "a.ts"))
	e, stop := runEngine(t, mustPlan(t, testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)))))
	defer stop()
	events := watchEvents(t, e)
	waitFor(t, 10*time.Second, "srt up", func() bool { return outputState(e, "srt") == pipelines.OutputUp })
	events.wait(t, pipelines.EventOutputUp, time.Second)
	r.kill()
	lost := time.Now()
	// A receiver that vanishes without a goodbye is noticed by SRT after
	// its peer idle timeout (5 s); a clean close at once.
	events.wait(t, pipelines.EventOutputDown, 8*time.Second)
	t.Logf("peer loss reported after %s", time.Since(lost).Round(10*time.Millisecond))
	if outputState(e, "srt") != pipelines.OutputDown {
		t.Errorf("state %s", outputState(e, "srt"))
	}
	srtReceiver(t, port, true, filepath.Join(dir, "b.ts"))
	back := time.Now()
	events.wait(t, pipelines.EventOutputUp, 10*time.Second)
	t.Logf("up again %s after the receiver returned", time.Since(back).Round(10*time.Millisecond))
}
