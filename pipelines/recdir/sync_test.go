package recdir

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

func TestFlushOfAFile(t *testing.T) {
	good := segment(t, t.TempDir(), "capbox-1.ts", 100)
	if err := Flush(good); err != nil {
		t.Errorf("Flush(%s) = %v", good, err)
	}
	// Nothing there, nothing flushed: an error, not a success.
	if err := Flush(filepath.Join(t.TempDir(), "deleted.ts")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Flush of a missing file = %v, want ENOENT", err)
	}
	if err := Flush(filepath.Join(good, "not-a-directory.ts")); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("Flush below a file = %v, want ENOTDIR", err)
	}
}

// A flush that fails is logged once, not every round, and a later good one
// is reported; a segment deleted meanwhile (keep_free) is no failure.
func TestRecordingSyncFailuresAreLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	r := NewSyncer(slog.New(slog.NewTextHandler(&logs, nil)))
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
	if !r.LastSynced().IsZero() {
		t.Errorf("a failed flush reported as done")
	}
	r.syncFiles([]string{good, filepath.Join(t.TempDir(), "deleted.ts")})
	if r.LastSynced().IsZero() {
		t.Errorf("a good flush not reported")
	}
	r.syncFiles([]string{bad})
	if n := strings.Count(logs.String(), "not flushed"); n != 2 {
		t.Errorf("a failure after a good flush is logged again: %d lines, want 2", n)
	}
}

// A round runs when SyncEvery has passed since the last one began, and
// only when there is something to flush: the segment being written or one
// that has just closed.
func TestSyncRoundsComeEverySyncEvery(t *testing.T) {
	dir := t.TempDir()
	writing := segment(t, dir, "capbox-2.ts", 100)
	closed := segment(t, dir, "capbox-1.ts", 100)
	synctest.Test(t, func(t *testing.T) {
		s := NewSyncer(slog.New(slog.DiscardHandler))
		round := func(current string) time.Time {
			s.SyncIfDue(time.Now(), current)
			synctest.Wait()
			return s.LastSynced()
		}
		if got := round(""); !got.IsZero() {
			t.Fatalf("a round with nothing to flush, at %v", got)
		}
		first := round(writing)
		if first.IsZero() {
			t.Fatal("the first round did not run")
		}
		time.Sleep(SyncEvery / 2)
		if got := round(writing); !got.Equal(first) {
			t.Fatalf("a round %v after the last, before SyncEvery", got.Sub(first))
		}
		time.Sleep(SyncEvery / 2)
		second := round(writing)
		if !second.Equal(first.Add(SyncEvery)) {
			t.Fatalf("second round at %v after the first, want %v", second.Sub(first), SyncEvery)
		}
		// Recording stopped: the segment that closed still gets its round.
		s.SegmentClosed(closed)
		time.Sleep(SyncEvery)
		if got := round(""); !got.Equal(second.Add(SyncEvery)) {
			t.Fatalf("the closed segment's round at %v after the second, want %v", got.Sub(second), SyncEvery)
		}
	})
}
