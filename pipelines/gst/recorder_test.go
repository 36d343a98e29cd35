package gst

import (
	"testing"
	"time"

	"capbox/pipelines"
	"capbox/pipelines/recdir"
)

// The segment being written is flushed to storage every few seconds, not
// only when the kernel gets to it: the time of the last flush moves on
// while recording, and the segments split on the way are flushed too.
func TestRecordingIsFlushedWhileWritten(t *testing.T) {
	dir := t.TempDir()
	req := testRequest()
	req.Record = &pipelines.RecordSettings{Dir: dir, Format: "ts", Segment: 2 * time.Second}
	e, stop := runEngine(t, mustPlan(t, req))
	defer stop()
	start := time.Now()
	waitFor(t, 10*time.Second, "a flush", func() bool { return e.Stats().Recorder.SyncedAt.After(start) })
	first := e.Stats().Recorder.SyncedAt
	waitFor(t, 3*recdir.SyncEvery, "the next flush", func() bool { return e.Stats().Recorder.SyncedAt.After(first) })
	t.Logf("flushed %s and %s after the start", first.Sub(start).Round(time.Millisecond), e.Stats().Recorder.SyncedAt.Sub(start).Round(time.Millisecond))
}
