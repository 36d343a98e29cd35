package gst

import (
	"context"
	"math"
	"time"

	"capbox/internal/backoff"
	"capbox/pipelines"
)

// audioTrack is what the audio track carries: the configured source, or
// silence while it fails. Owned by the Run loop.
type audioTrack struct {
	live, silence *front
	// failing: a failure streak was reported; cleared when the source is
	// back on air.
	failing bool
	retry   *backoff.Backoff
}

func (e *Engine) startAudio() {
	if e.audio.live != nil || e.closing {
		return
	}
	f, err := e.startFront("audio", e.plan.Audio)
	if err != nil {
		e.audioFailed(nil, err)
		return
	}
	e.audio.live = f
	e.statsMu.Lock()
	e.stats.Audio.Kind, e.stats.Audio.Device = e.plan.Audio.Kind, e.plan.Audio.Device
	e.statsMu.Unlock()
}

// audioFailed keeps the audio track alive with silence (many services
// drop a stream without audio) and retries the real source.
func (e *Engine) audioFailed(f *front, err error) {
	if e.closing {
		return
	}
	if !e.audio.failing {
		e.log.Warn("audio source failed, sending silence", "err", err)
		e.emit(pipelines.EventAudioFailed, "audio", err.Error())
		e.audio.failing = true
	}
	if f != nil {
		e.hub.detach(f)
		f.stop()
		if f == e.audio.live {
			e.audio.live = nil
		} else {
			e.audio.silence = nil
		}
	}
	if e.audio.silence == nil && e.plan.Audio.Kind != pipelines.SourceSilence {
		sil := silenceFront(e.plan.Audio)
		if s, err2 := e.startFront("audio", sil); err2 == nil {
			e.audio.silence = s
		} else {
			e.log.Error("silent audio failed to start", "err", err2)
		}
	}
	e.later("audio", e.audio.retry.Next(), e.startAudio)
}

// ReplaceAudio swaps the audio source (a config change); the old source
// keeps sounding until the new one delivers.
func (e *Engine) ReplaceAudio(ctx context.Context, f pipelines.Front) error {
	return e.do(ctx, func() error {
		e.plan.Audio = f
		old := e.audio.live
		e.audio.live = nil
		e.cancelTimer("audio")
		e.startAudio()
		if old != nil {
			e.later(retireKey(old), 5*time.Second, func() { e.hub.detach(old); old.stop() })
		}
		return nil
	})
}

// silenceFront replaces the audio source with digital silence, same encode.
func silenceFront(a pipelines.Front) pipelines.Front {
	chain := append([]pipelines.Element{{Factory: "audiotestsrc", Props: []pipelines.Prop{
		{Name: "is-live", Value: "true"}, {Name: "wave", Value: "silence"},
	}}}, a.Chain[1:]...)
	return pipelines.Front{Kind: pipelines.SourceSilence, Chain: chain}
}

func (e *Engine) onLevel(l levelReading) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	a := &e.stats.Audio
	a.PeakDBFS, a.RMSDBFS = clampDB(l.peak), clampDB(l.rms)
	now := time.Now()
	e.levelAt = now
	if e.lastLoud.IsZero() || a.RMSDBFS > pipelines.SilenceDBFS {
		e.lastLoud = now
	}
	a.Silent = now.Sub(e.lastLoud) >= pipelines.SilenceFor
}

// Level is the audio level as last measured (the loudest channel's peak
// and RMS) and when, read without the engine's loop: the fleet's meters
// ask for it several times a second while someone watches.
func (e *Engine) Level() (peak, rms float64, at time.Time) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.stats.Audio.PeakDBFS, e.stats.Audio.RMSDBFS, e.levelAt
}

func clampDB(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) || v < -200 {
		return -200
	}
	return math.Round(v*10) / 10
}
