package gst

import (
	"context"
	"time"

	"capbox/pipelines"
	"capbox/pipelines/recdir"
)

// Stats is a snapshot of the running pipeline.
func (e *Engine) Stats() pipelines.Stats {
	var outs []pipelines.OutputStats
	var rec pipelines.OutputStats
	recRunning := false
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.do(ctx, func() error {
		for _, r := range e.outputs.inOrder() {
			outs = append(outs, r.st)
		}
		if e.recorder != nil {
			rec = e.recorder.st
			recRunning = e.recorder.sink != nil
		}
		return nil
	})
	e.statsMu.Lock()
	s := e.stats
	e.statsMu.Unlock()
	s.Outputs = outs
	s.Recorder.Recording = recRunning
	s.Recorder.SyncedAt = e.rsync.LastSynced()
	if rec.LastError != "" {
		s.Recorder.LastError = rec.LastError
	}
	frames, bytes, last, active := e.hub.trackStats("video")
	s.Video.Frames, s.Video.Bytes, s.Video.LastFrame = frames, bytes, last
	if active != nil {
		s.Video.Kind, s.Video.Device = active.plan.Kind, active.plan.Device
		s.Video.Width, s.Video.Height, s.Video.FPS = active.plan.Width, active.plan.Height, active.plan.FPS
		s.Video.Running = true
		s.Slate = active.plan.Kind == pipelines.SourceSlate
	}
	aframes, _, alast, aactive := e.hub.trackStats("audio")
	s.Audio.Frames, s.Audio.LastFrame = aframes, alast
	if aactive != nil {
		s.Audio.Kind, s.Audio.Device = aactive.plan.Kind, aactive.plan.Device
	}
	if s.Recorder.Dir != "" {
		if b, err := recdir.Size(s.Recorder.Dir); err == nil {
			s.Recorder.Bytes = b
		}
	}
	return s
}
