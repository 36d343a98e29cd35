package gst

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"time"

	"capbox/internal/backoff"
	"capbox/pipelines"
	"capbox/pipelines/recdir"
)

func (e *Engine) setRecorder(p *pipelines.RecorderPlan, enabled bool) {
	r := &outputRun{plan: p.Sink, rec: p, enabled: enabled,
		retry: backoff.New(e.opt.FrontRetryMin, e.opt.FrontRetryMax)}
	r.st = pipelines.OutputStats{Name: "recorder", State: pipelines.OutputDisabled, Since: time.Now()}
	e.recorder = r
	e.statsMu.Lock()
	e.stats.Recorder.Enabled, e.stats.Recorder.Dir = true, p.Dir
	e.statsMu.Unlock()
	if enabled {
		e.startRun(r)
	}
}

// SetRecorder applies a new recorder plan (nil: no recording); an
// unchanged plan keeps recording.
func (e *Engine) SetRecorder(ctx context.Context, p *pipelines.RecorderPlan) error {
	return e.do(ctx, func() error {
		if e.recorder != nil && p != nil && reflect.DeepEqual(*e.recorder.rec, *p) {
			return nil
		}
		if e.recorder != nil {
			e.stopRun(e.recorder)
			e.recorder = nil
		}
		e.plan.Recorder = p
		if p != nil {
			e.setRecorder(p, true)
		} else {
			e.statsMu.Lock()
			e.stats.Recorder = pipelines.RecorderStats{}
			e.statsMu.Unlock()
		}
		return nil
	})
}

// StartRecording starts the configured recorder.
func (e *Engine) StartRecording(ctx context.Context) error {
	return e.do(ctx, func() error {
		if e.recorder == nil {
			return errors.New("recording is not configured")
		}
		e.recorder.enabled = true
		e.startRun(e.recorder)
		return nil
	})
}

// StopRecording closes the current segment and stops recording; it
// returns once the segment is closed.
func (e *Engine) StopRecording(ctx context.Context) error {
	var done <-chan struct{}
	err := e.do(ctx, func() error {
		if e.recorder == nil {
			return errors.New("recording is not configured")
		}
		e.recorder.enabled = false
		done = e.stopRun(e.recorder)
		e.setState(e.recorder, pipelines.OutputDisabled, "")
		return nil
	})
	return waitDone(ctx, err, done)
}

// keepFree deletes the oldest segments while the recording's file system
// has less free space than keep_free; the open segment is never deleted.
func (e *Engine) keepFree() {
	r := e.recorder
	if r == nil || r.rec == nil {
		return
	}
	free, err := recdir.FreeBytes(r.rec.Dir)
	if err != nil {
		return
	}
	e.statsMu.Lock()
	current := e.stats.Recorder.File
	e.stats.Recorder.FreeBytes = free
	e.statsMu.Unlock()
	retention := recdir.Retention{Dir: r.rec.Dir, Ext: segmentExt(r.rec.Format), KeepFree: r.rec.KeepFree}
	err = retention.MakeRoom(current, func(f string) {
		e.emit(pipelines.EventSegmentDelete, "recorder", filepath.Base(f))
		e.statsMu.Lock()
		e.stats.Recorder.Deleted++
		e.statsMu.Unlock()
	})
	if del, ok := errors.AsType[*recdir.DeleteError](err); ok {
		e.log.Warn("cannot delete old segment", "file", del.Path, "err", del.Err)
	}
}

// tickRecording runs keep_free every 10 s (it also runs at each new
// segment) and starts a flush of the recording when one is due.
func (e *Engine) tickRecording(now time.Time) {
	if now.Sub(e.lastKeepFree) >= 10*time.Second {
		e.lastKeepFree = now
		e.keepFree()
	}
	e.rsync.SyncIfDue(now, e.recordingFile())
}

// recordingFile is the segment being written ("" when not recording).
func (e *Engine) recordingFile() string {
	if e.recorder == nil || e.recorder.sink == nil {
		return ""
	}
	return e.segmentFile()
}

// segmentFile is the recorder's newest segment, written or just closed.
func (e *Engine) segmentFile() string {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.stats.Recorder.File
}
