package gst

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
)

// A snapshot is a small JPEG of the live picture, within the protocol's
// size limit, taken without touching the running pipeline.
func TestSnapshot(t *testing.T) {
	e, stop := runEngine(t, mustPlan(t, testRequest()))
	defer stop()
	waitFor(t, 5*time.Second, "frames", func() bool { return e.Stats().Video.Frames > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, err := e.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != SnapshotWidth || b.Dy() != SnapshotHeight || len(data) > SnapshotMaxJPEG {
		t.Errorf("snapshot %dx%d, %d bytes", b.Dx(), b.Dy(), len(data))
	}
	t.Logf("snapshot: %d bytes", len(data))
}

// Changing one output restarts only that output: the recording and the
// other output keep running without a gap.
func TestSetOutputsRestartsOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	p1, p2, p3 := freeUDPPort(t), freeUDPPort(t), freeUDPPort(t)
	recvA := filepath.Join(dir, "a.ts")
	srtReceiver(t, p1, true, recvA)
	srtReceiver(t, p2, true, filepath.Join(dir, "b.ts"))
	srtReceiver(t, p3, true, filepath.Join(dir, "b2.ts"))
	a := mustOutput(t, "a", fmt.Sprintf("srt://127.0.0.1:%d", p1))
	req := testRequest(a, mustOutput(t, "b", fmt.Sprintf("srt://127.0.0.1:%d", p2)))
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	plan := mustPlan(t, req)
	e, stop := runEngine(t, plan)
	waitFor(t, 10*time.Second, "outputs up", func() bool {
		return outputState(e, "a") == pipelines.OutputUp && outputState(e, "b") == pipelines.OutputUp
	})
	time.Sleep(2 * time.Second)

	req2 := testRequest(a, mustOutput(t, "b", fmt.Sprintf("srt://127.0.0.1:%d", p3)))
	plan2 := mustPlan(t, req2)
	if err := e.SetOutputs(context.Background(), plan2.Outputs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b up on its new port", func() bool { return outputState(e, "b") == pipelines.OutputUp })
	time.Sleep(2 * time.Second)
	stop()

	for what, file := range map[string]string{"a": recvA, "recording": segments(t, filepath.Join(dir, "rec"))[0]} {
		m := analyze(t, file)
		if m.maxGap > 100*time.Millisecond || m.videoFrames < 30*3 {
			t.Errorf("%s was disturbed by the change: %+v", what, m)
		}
	}
	if m := analyze(t, filepath.Join(dir, "b2.ts")); m.videoFrames < 30 {
		t.Errorf("b did not move to its new destination: %+v", m)
	}
}

// A resolution change replaces only the video front: outputs follow the
// new size without reconnecting.
func TestResolutionChangeFollows(t *testing.T) {
	dir := t.TempDir()
	port := freeUDPPort(t)
	recv := filepath.Join(dir, "r.ts")
	srtReceiver(t, port, true, recv)
	req := testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)))
	req.MaxWidth, req.MaxHeight = 320, 180
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Hour}
	e, stop := runEngine(t, mustPlan(t, req))
	waitFor(t, 10*time.Second, "up", func() bool { return outputState(e, "srt") == pipelines.OutputUp })
	time.Sleep(2 * time.Second)
	req.MaxWidth, req.MaxHeight = 640, 360
	p2 := mustPlan(t, req)
	if err := e.ReplaceVideo(context.Background(), p2.Video, p2.Encoder, p2.Slate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "640x360 on air", func() bool { return e.Stats().Video.Width == 640 })
	time.Sleep(2 * time.Second)
	st := e.Stats()
	stop()
	if st.Outputs[0].Reconnects != 0 {
		t.Errorf("output reconnected on a resolution change")
	}
	for _, file := range []string{recv, segments(t, filepath.Join(dir, "rec"))[0]} {
		m := analyze(t, file)
		t.Logf("%s: %+v", filepath.Base(file), m)
		if fmt.Sprint(m.sizes) != "[320x180 640x360]" || m.maxGap > 150*time.Millisecond {
			t.Errorf("%s: sizes %v with a %s gap, want [320x180 640x360] without a gap", file, m.sizes, m.maxGap)
		}
	}
}

// The recorder keeps keep_free bytes free by deleting the oldest segments,
// never the one being written.
func TestKeepFreeDeletesOldestSegments(t *testing.T) {
	dir := t.TempDir()
	req := testRequest()
	// More free space than any disk has: every closed segment must go.
	req.Record = &pipelines.RecordSettings{Dir: dir, Format: "ts", Segment: time.Second, KeepFree: 1 << 62}
	e, stop := runEngine(t, mustPlan(t, req))
	events := watchEvents(t, e)
	events.wait(t, pipelines.EventSegmentDelete, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	st := e.Stats()
	files := segments(t, dir)
	current := st.Recorder.File
	stop()
	if st.Recorder.Deleted == 0 || len(files) > 2 {
		t.Errorf("deleted %d, left %v", st.Recorder.Deleted, files)
	}
	if _, err := os.Stat(current); err != nil {
		t.Errorf("the open segment %s was deleted: %v", current, err)
	}
}

// Stats report audio level, SRT link statistics and counters.
func TestStatsReportLevelsAndSRT(t *testing.T) {
	port := freeUDPPort(t)
	srtReceiver(t, port, true, filepath.Join(t.TempDir(), "r.ts"))
	e, stop := runEngine(t, mustPlan(t, testRequest(mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)))))
	defer stop()
	waitFor(t, 10*time.Second, "srt up", func() bool { return outputState(e, "srt") == pipelines.OutputUp })
	time.Sleep(2500 * time.Millisecond)
	st := e.Stats()
	// The test tone is a sine at volume 0.1: peak -20 dBFS, RMS -23 dBFS.
	if st.Audio.PeakDBFS < -21 || st.Audio.PeakDBFS > -19 || st.Audio.RMSDBFS < -24 || st.Audio.RMSDBFS > -22 || st.Audio.Silent {
		t.Errorf("audio level %+v", st.Audio)
	}
	o := st.Outputs[0]
	if o.Bytes == 0 || o.BitrateKbps < 500 || o.BitrateKbps > 3000 {
		t.Errorf("srt counters %+v", o)
	}
	if o.RTTms <= 0 {
		t.Errorf("no SRT RTT reported: %+v", o)
	}
	if st.Video.Frames < 60 || st.Audio.Frames == 0 {
		t.Errorf("front counters %+v %+v", st.Video, st.Audio)
	}
}

// A setting the encoder does not take (out of its range: GObject warns and
// keeps the old value) is read back and reported, not assumed.
func TestEncoderSettingsReadBack(t *testing.T) {
	plan := mustPlan(t, testRequest())
	for i, e := range plan.Video.Chain {
		if e.Name == "encoder" {
			for j, p := range e.Props {
				if p.Name == "bitrate" {
					plan.Video.Chain[i].Props[j].Value = "3000000" // x264enc takes at most 2048000 kbit/s
				}
			}
		}
	}
	e, stop := runEngine(t, plan)
	defer stop()
	waitFor(t, 5*time.Second, "the adjusted bitrate reported", func() bool {
		adj := e.Stats().Encoder.Adjusted
		return len(adj) == 1 && strings.HasPrefix(adj[0], "bitrate: asked 3000000, runs ")
	})
}
