package gst

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// recordingSyncEvery is how often the segment being written is flushed to
// storage (fsync). Without it, what the recorder wrote waits in the page
// cache for the kernel's writeback (vm.dirty_expire_centisecs: 30 s by
// default) and a power cut loses all of it; with it, at most this much
// plus the group of pictures splitmuxsink holds back.
const recordingSyncEvery = 2 * time.Second

// recordingSync flushes the recording off the engine's loop: an fsync on a
// slow or dying SD card can take seconds, and the loop must not wait for
// it. fsync flushes the file's data whichever descriptor wrote it, so a
// descriptor of our own is enough (the muxer's sink writes through its own).
type recordingSync struct {
	log *slog.Logger

	mu     sync.Mutex
	busy   bool
	last   time.Time // when the last round started
	closed []string  // finished segments still to flush once
	synced time.Time // when the last round ended without an error
	failed string    // the last error, logged once until a round succeeds
}

// segmentClosed queues a finished segment for one last flush.
func (r *recordingSync) segmentClosed(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = append(r.closed, path)
}

// maybe starts a round when one is due: the closed segments and the one
// being written (current, "" for none).
func (r *recordingSync) maybe(now time.Time, current string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy || now.Sub(r.last) < recordingSyncEvery || (current == "" && len(r.closed) == 0) {
		return
	}
	files := append(r.closed, current)
	r.closed, r.busy, r.last = nil, true, now
	go r.round(files)
}

// flush runs a last round and waits for it, bounded (at shutdown).
func (r *recordingSync) flush(current string, timeout time.Duration) {
	r.mu.Lock()
	files := append(r.closed, current)
	r.closed = nil
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.syncFiles(files)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		r.log.Warn("recording not flushed to storage in time", "timeout", timeout)
	}
}

func (r *recordingSync) round(files []string) {
	r.syncFiles(files)
	r.mu.Lock()
	r.busy = false
	r.mu.Unlock()
}

func (r *recordingSync) syncFiles(files []string) {
	var errs []error
	for _, f := range files {
		if f != "" {
			errs = append(errs, syncFile(f))
		}
	}
	err := errors.Join(errs...)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.synced, r.failed = time.Now(), ""
	case err.Error() != r.failed:
		r.failed = err.Error()
		r.log.Warn("recording not flushed to storage", "err", err)
	}
}

// lastSynced is when the recording was last known safe on storage.
func (r *recordingSync) lastSynced() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced
}

// syncFile flushes one file's data to storage; a file deleted meanwhile
// (keep_free made room) needs nothing.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
