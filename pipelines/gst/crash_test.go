package gst

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"capbox/pipelines"
)

// When run as a child by TestKill9MidRecording, record until killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CAPBOX_TEST_RECORD_UNTIL_KILLED"); dir != "" {
		recordUntilKilled(dir)
		return
	}
	os.Exit(m.Run())
}

func recordUntilKilled(dir string) {
	req := pipelines.Request{
		VideoPin: "test", AudioPin: "test", BitrateKbps: 800, KeyframeInterval: time.Second,
		MaxWidth: 640, MaxHeight: 360, MaxFPS: 30, SlateOff: true, Elements: Registry{},
		Record: &pipelines.RecordSettings{Dir: dir, Format: "ts", Segment: 2 * time.Second},
	}
	p, err := pipelines.Build(req)
	if err != nil {
		os.Exit(3)
	}
	_ = New(p, Options{}).Run(context.Background())
}

// kill -9 mid-recording: every finished segment plays whole, and the cut
// one plays up to its last moments. MPEG-TS needs no index to be written
// at the end, which is why the recorder uses it.
func TestKill9MidRecording(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CAPBOX_TEST_RECORD_UNTIL_KILLED="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "three segments", func() bool { return len(segments(t, dir)) >= 3 })
	time.Sleep(time.Second) // a second into the third
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("segments: %v", segs)
	}
	var total time.Duration
	for i, f := range segs {
		m := analyze(t, f)
		dur := time.Duration(m.videoFrames) * time.Second / 30
		total += dur
		t.Logf("%s: %d frames (%s), audio %v, max gap %s", filepath.Base(f), m.videoFrames, dur, m.hasAudio, m.maxGap)
		last := i == len(segs)-1
		switch {
		case !last && dur < 1800*time.Millisecond:
			t.Errorf("finished segment %s plays only %s of 2 s", f, dur)
		case last && dur < 300*time.Millisecond:
			t.Errorf("cut segment %s plays only %s", f, dur)
		}
		if m.videoFrames > 0 && m.maxGap > 100*time.Millisecond {
			t.Errorf("%s has a %s gap", f, m.maxGap)
		}
		if !m.hasAudio {
			t.Errorf("%s has no audio", f)
		}
	}
	t.Logf("%d segments, %s playable, killed at %s", len(segs), total, killed.Format(time.TimeOnly))
}
