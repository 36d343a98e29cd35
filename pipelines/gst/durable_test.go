package gst

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
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
	waitFor(t, 3*recordingSyncEvery, "the next flush", func() bool { return e.Stats().Recorder.SyncedAt.After(first) })
	t.Logf("flushed %s and %s after the start", first.Sub(start).Round(time.Millisecond), e.Stats().Recorder.SyncedAt.Sub(start).Round(time.Millisecond))
}

// A flush that fails is logged once, not every round, and a later good one
// is reported; a segment deleted meanwhile (keep_free) is no failure.
func TestRecordingSyncFailuresAreLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	r := recordingSync{log: slog.New(slog.NewTextHandler(&logs, nil))}
	good := filepath.Join(t.TempDir(), "capbox-1.ts")
	if err := os.WriteFile(good, []byte("segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(good, "not-a-directory.ts") // ENOTDIR
	r.syncFiles([]string{bad})
	r.syncFiles([]string{bad, filepath.Join(t.TempDir(), "deleted.ts")})
	if n := strings.Count(logs.String(), "not flushed"); n != 1 {
		t.Errorf("%d log lines for the same failure, want 1:\n%s", n, logs.String())
	}
	if !r.lastSynced().IsZero() {
		t.Errorf("a failed flush reported as done")
	}
	r.syncFiles([]string{good, filepath.Join(t.TempDir(), "deleted.ts")})
	if r.lastSynced().IsZero() {
		t.Errorf("a good flush not reported")
	}
	r.syncFiles([]string{bad})
	if n := strings.Count(logs.String(), "not flushed"); n != 2 {
		t.Errorf("a failure after a good flush is logged again: %d lines, want 2", n)
	}
}
