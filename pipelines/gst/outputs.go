package gst

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"time"

	"capbox/internal/backoff"
	"capbox/pipelines"
)

// outputTable is the configured outputs (the recorder is apart), owned by
// the Run loop.
type outputTable struct {
	byName map[string]*outputRun
	// order is the config's order, which Stats reports.
	order []string
}

// inOrder lists the outputs in the config's order.
func (t *outputTable) inOrder() []*outputRun {
	rs := make([]*outputRun, 0, len(t.order))
	for _, n := range t.order {
		rs = append(rs, t.byName[n])
	}
	return rs
}

// outputRun is one output's (or the recorder's) life.
type outputRun struct {
	plan     pipelines.Sink
	spec     pipelines.OutputSpec
	rec      *pipelines.RecorderPlan
	sink     *sinkPipe
	enabled  bool
	retry    *backoff.Backoff
	st       pipelines.OutputStats
	lastByte uint64
	lastTick time.Time
	failing  bool
	starting bool
	// srtSent and srtSentAt follow an SRT caller's bytes sent to its peer.
	srtSent   int64
	srtSentAt time.Time
}

// congestionLimit is how much may queue for one output: two seconds of
// stream at the configured bitrate, at least 1 MiB.
func (e *Engine) congestionLimit() uint64 {
	kbps := e.plan.Encoder.BitrateKbps + pipelines.AudioBitrate/1000
	return max(uint64(kbps)*1000/8*2, 1<<20)
}

func (e *Engine) addOutput(o pipelines.OutputPlan) {
	r := &outputRun{plan: o.Sink, spec: o.Spec, enabled: o.Spec.Enabled,
		retry: backoff.New(e.opt.OutputRetryMin, e.opt.OutputRetryMax)}
	r.st = pipelines.OutputStats{Name: o.Spec.Name, Proto: o.Spec.Proto, URL: o.Spec.URL, State: pipelines.OutputDisabled, Since: time.Now()}
	e.outputs.byName[o.Spec.Name] = r
	e.outputs.order = append(e.outputs.order, o.Spec.Name)
	if r.enabled {
		e.startRun(r)
	}
}

// startRun builds and starts an output (or the recorder) off the loop: an
// SRT caller may take seconds to connect.
func (e *Engine) startRun(r *outputRun) {
	if r.sink != nil || r.starting || e.closing {
		return
	}
	r.starting = true
	recDir, recExt := "", ""
	if r.rec != nil {
		recDir, recExt = r.rec.Dir, segmentExt(r.rec.Format)
	}
	e.setState(r, pipelines.OutputConnecting, "")
	e.log.Debug("output starting", "output", r.st.Name)
	limit := e.congestionLimit()
	go func() {
		s, err := newSink(r.plan, limit, recDir, recExt)
		if err == nil {
			if err = s.start(); err != nil {
				s.stop()
				s = nil
			}
		}
		if !e.loop.Post(func() { e.runStarted(r, s, err) }) && s != nil {
			s.stop()
		}
	}()
}

func (e *Engine) runStarted(r *outputRun, s *sinkPipe, err error) {
	r.starting = false
	if err != nil {
		e.runFailed(r, err)
		return
	}
	if !r.enabled || !e.current(r) || e.closing {
		go s.stop()
		return
	}
	r.sink = s
	r.lastByte, r.lastTick = 0, time.Now()
	e.hub.addSink(s)
	go e.watchSink(r, s)
	if r.rec != nil {
		e.setState(r, pipelines.OutputUp, "")
	}
}

// current reports whether r is still configured.
func (e *Engine) current(r *outputRun) bool {
	return e.recorder == r || (r.rec == nil && e.outputs.byName[r.st.Name] == r)
}

func (e *Engine) watchSink(r *outputRun, s *sinkPipe) {
	for {
		select {
		case m := <-s.pipe.msgs:
			e.loop.Post(func() { e.onSinkMsg(r, s, m) })
		case <-s.unwatched:
			return
		case <-s.pipe.done:
			return
		}
	}
}

func (e *Engine) onSinkMsg(r *outputRun, s *sinkPipe, m busMsg) {
	if r.sink != s {
		return // an old instance
	}
	switch {
	case m.fragment != "" && m.opened:
		e.statsMu.Lock()
		e.stats.Recorder.File = m.fragment
		e.stats.Recorder.Segments++
		e.statsMu.Unlock()
		e.emit(pipelines.EventSegment, "recorder", filepath.Base(m.fragment))
		e.keepFree()
	case m.fragment != "":
		e.rsync.SegmentClosed(m.fragment)
	case m.err != nil || m.eos:
		err := m.err
		if err == nil {
			err = errors.New("ended")
		}
		e.hub.removeSink(s)
		s.stop()
		r.sink = nil
		e.runFailed(r, err)
	}
}

func (e *Engine) runFailed(r *outputRun, err error) {
	name := r.st.Name
	if r.rec != nil {
		name = "recorder"
	}
	if !r.failing {
		e.log.Warn("output down", "output", name, "err", err)
		if r.rec != nil {
			e.emit(pipelines.EventRecorderError, name, err.Error())
		} else {
			e.emit(pipelines.EventOutputDown, name, err.Error())
		}
	}
	r.failing = true
	r.st.Reconnects++
	e.setState(r, pipelines.OutputDown, err.Error())
	e.later("out:"+name, r.retry.Next(), func() {
		if r.enabled && e.current(r) {
			e.startRun(r)
		}
	})
}

func (e *Engine) setState(r *outputRun, st pipelines.OutputState, lastErr string) {
	if r.st.State != st {
		r.st.State, r.st.Since = st, time.Now()
	}
	if lastErr != "" {
		r.st.LastError = lastErr
	}
	if st == pipelines.OutputUp && r.failing {
		r.failing = false
		r.retry.Reset()
		name := r.st.Name
		if r.rec == nil {
			e.log.Info("output up", "output", name)
			e.emit(pipelines.EventOutputUp, name, "")
		}
	} else if st == pipelines.OutputUp && r.rec == nil && r.st.Reconnects == 0 && r.st.Bytes == 0 {
		e.emit(pipelines.EventOutputUp, r.st.Name, "")
	}
}

// stopRun takes an output off the hub at once and ends it cleanly in the
// background; the channel closes when its last data is out (the
// recorder's segment closed).
func (e *Engine) stopRun(r *outputRun) <-chan struct{} {
	done := make(chan struct{})
	e.cancelTimer("out:" + r.st.Name)
	s := r.sink
	r.sink = nil
	if s == nil {
		close(done)
		return done
	}
	recording := ""
	if r.rec != nil {
		recording = e.segmentFile()
	}
	e.hub.removeSink(s)
	go func() {
		defer close(done)
		if err := s.finish(e.opt.EOSTimeout); err != nil {
			e.log.Warn("output did not end cleanly", "output", r.st.Name, "err", err)
		}
		if recording != "" {
			e.rsync.SyncNow(recording, 5*time.Second)
		}
	}()
	return done
}

// get finds a configured output by name.
func (t *outputTable) get(name string) (*outputRun, error) {
	r, ok := t.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", pipelines.ErrUnknownOutput, name)
	}
	return r, nil
}

// RestartOutput tears an output down and starts it again.
func (e *Engine) RestartOutput(ctx context.Context, name string) error {
	return e.do(ctx, func() error {
		r, err := e.outputs.get(name)
		if err != nil {
			return err
		}
		e.stopRun(r)
		r.enabled = true
		r.retry.Reset()
		e.startRun(r)
		return nil
	})
}

// StartOutput enables an output.
func (e *Engine) StartOutput(ctx context.Context, name string) error {
	return e.do(ctx, func() error {
		r, err := e.outputs.get(name)
		if err != nil {
			return err
		}
		r.enabled = true
		e.startRun(r)
		return nil
	})
}

// StopOutput disables an output until started again; it returns once the
// output has ended its stream.
func (e *Engine) StopOutput(ctx context.Context, name string) error {
	var done <-chan struct{}
	err := e.do(ctx, func() error {
		r, err := e.outputs.get(name)
		if err != nil {
			return err
		}
		r.enabled = false
		done = e.stopRun(r)
		e.setState(r, pipelines.OutputDisabled, "")
		return nil
	})
	return waitDone(ctx, err, done)
}

// SetOutputs applies a new output list: unchanged outputs keep running,
// changed ones restart, removed ones stop, new ones start.
func (e *Engine) SetOutputs(ctx context.Context, outs []pipelines.OutputPlan) error {
	return e.do(ctx, func() error {
		keep := map[string]bool{}
		var order []string
		for _, o := range outs {
			keep[o.Spec.Name] = true
			order = append(order, o.Spec.Name)
			if r, ok := e.outputs.byName[o.Spec.Name]; ok {
				if reflect.DeepEqual(r.plan, o.Sink) && reflect.DeepEqual(r.spec, o.Spec) {
					continue
				}
				e.stopRun(r)
				delete(e.outputs.byName, o.Spec.Name)
			}
			e.addOutput(o)
		}
		for name, r := range e.outputs.byName {
			if !keep[name] {
				e.stopRun(r)
				delete(e.outputs.byName, name)
			}
		}
		e.outputs.order = order
		e.plan.Outputs = outs
		return nil
	})
}

// waitDone waits for a background stop after a command succeeded.
func waitDone(ctx context.Context, err error, done <-chan struct{}) error {
	if err != nil || done == nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// measureOutputs follows each running output (the tick): whether it is
// up, and its rate, bytes, drops and SRT link figures over whole seconds.
func (e *Engine) measureOutputs(now time.Time) {
	for _, r := range e.outputs.inOrder() {
		if r.sink == nil {
			continue
		}
		b := r.sink.bytes()
		if r.spec.Proto == pipelines.ProtoSRT && !r.spec.Listener {
			e.checkSRTPeer(r, now)
		} else if r.st.State == pipelines.OutputConnecting && b > 0 {
			e.setState(r, pipelines.OutputUp, "")
		}
		dt := now.Sub(r.lastTick).Seconds()
		if dt < 1 {
			continue
		}
		r.st.BitrateKbps = int(float64(b-r.lastByte) * 8 / 1000 / dt)
		r.st.Bytes += b - r.lastByte
		r.lastByte, r.lastTick = b, now
		r.st.Dropped = e.hub.dropped(r.sink)
		if rtt, loss, ok := r.sink.srtStats(); ok {
			r.st.RTTms, r.st.LossPct = rtt, math.Round(loss*100)/100
		}
	}
}

// srtPeerTimeout is how long an SRT caller may send nothing to its peer
// before the output is called down.
const srtPeerTimeout = 1500 * time.Millisecond

// checkSRTPeer follows an SRT caller's link by what srtsink says it sent:
// srtsink reconnects by itself and reports a lost peer only as a warning,
// so the data reaching it says nothing about the peer.
func (e *Engine) checkSRTPeer(r *outputRun, now time.Time) {
	sent := r.sink.srtSent()
	if sent < 0 {
		return
	}
	if sent > r.srtSent {
		r.srtSentAt = now
	}
	r.srtSent = sent
	linked := sent > 0 && now.Sub(r.srtSentAt) < srtPeerTimeout
	switch {
	case linked && r.st.State != pipelines.OutputUp:
		e.setState(r, pipelines.OutputUp, "")
	case !linked && r.st.State == pipelines.OutputUp:
		err := "SRT peer unreachable; reconnecting"
		e.log.Warn("output down", "output", r.st.Name, "err", err)
		e.emit(pipelines.EventOutputDown, r.st.Name, err)
		r.failing = true
		r.st.Reconnects++
		e.setState(r, pipelines.OutputDown, err)
	}
}
