package recdir

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// SyncEvery is how often the segment being written is flushed to storage
// (fsync). Without it, what the recorder wrote waits in the page cache for
// the kernel's writeback (vm.dirty_expire_centisecs: 30 s by default) and
// a power cut loses all of it; with it, at most this much plus the group
// of pictures splitmuxsink holds back.
const SyncEvery = 2 * time.Second

// Flush writes one file's data through to storage. fsync flushes the
// file's data whichever descriptor wrote it, so a descriptor of our own is
// enough (the muxer's sink writes through its own). A file that does not
// exist is an error (fs.ErrNotExist): nothing was flushed.
func Flush(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Syncer flushes the recording off the engine's loop: an fsync on a slow
// or dying SD card can take seconds, and the loop must not wait for it.
type Syncer struct {
	log *slog.Logger

	mu     sync.Mutex
	busy   bool
	last   time.Time // when the last round started
	closed []string  // finished segments still to flush once
	synced time.Time // when the last round ended without an error
	failed string    // the last error, logged once until a round succeeds
}

// NewSyncer makes a syncer that logs its failures to log.
func NewSyncer(log *slog.Logger) *Syncer { return &Syncer{log: log} }

// SegmentClosed queues a finished segment for one last flush.
func (s *Syncer) SegmentClosed(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, path)
}

// SyncIfDue starts a round in the background when one is due (SyncEvery
// after the last one began, none running): the closed segments and the
// one being written (current, "" for none).
func (s *Syncer) SyncIfDue(now time.Time, current string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy || now.Sub(s.last) < SyncEvery || (current == "" && len(s.closed) == 0) {
		return
	}
	files := append(s.closed, current)
	s.closed, s.busy, s.last = nil, true, now
	go s.round(files)
}

// SyncNow runs a last round and waits for it, bounded (at a stop).
func (s *Syncer) SyncNow(current string, timeout time.Duration) {
	s.mu.Lock()
	files := append(s.closed, current)
	s.closed = nil
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.syncFiles(files)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("recording not flushed to storage in time", "timeout", timeout)
	}
}

func (s *Syncer) round(files []string) {
	s.syncFiles(files)
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

// syncFiles flushes files; a segment deleted meanwhile (keep_free made
// room) needs nothing and is no failure.
func (s *Syncer) syncFiles(files []string) {
	var errs []error
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := Flush(f); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.synced, s.failed = time.Now(), ""
	case err.Error() != s.failed:
		s.failed = err.Error()
		s.log.Warn("recording not flushed to storage", "err", err)
	}
}

// LastSynced is when the recording was last known safe on storage.
func (s *Syncer) LastSynced() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}
