package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// TTFBRun is one contender started against a listening ingest.
type TTFBRun struct {
	Contender string  `json:"contender"`
	Rep       int     `json:"rep"`
	TTFBms    float64 `json:"ttfb_ms"`
	// Marks are capboxd's own log lines, in ms from process start: where
	// its start-up time goes.
	Marks map[string]float64 `json:"marks_ms,omitempty"`
	Load1 float64            `json:"load1_at_start"`
	Err   string             `json:"error,omitempty"`
}

// TTFBResult is figure 2.
type TTFBResult struct {
	Reps  int               `json:"reps"`
	Runs  []TTFBRun         `json:"runs"`
	TTFBs map[string]Spread `json:"ttfb_ms"`
	// RatioGst is capboxd's time over gst-launch's, paired by round.
	RatioGst Spread            `json:"ratio_capboxd_over_gst_launch"`
	Marks    map[string]Spread `json:"capboxd_marks_ms"`
}

// capboxdMarks are the log messages whose time tells where start-up goes.
var capboxdMarks = []string{"capboxd starting", "pipeline planned", "video_started", "output_up"}

func (b *bench) ttfb(ctx context.Context) (*TTFBResult, error) {
	res := &TTFBResult{Reps: b.opt.ttfbReps}
	for rep := 1; rep <= b.opt.ttfbReps; rep++ {
		for _, name := range contenderNames {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			r := b.ttfbRun(ctx, name, rep)
			b.progress("ttfb: round %d/%d %s %.0f ms %s", rep, b.opt.ttfbReps, name, r.TTFBms, r.Err)
			res.Runs = append(res.Runs, r)
		}
	}
	all := map[string][]float64{}
	marks := map[string][]float64{}
	for _, r := range res.Runs {
		v := r.TTFBms
		if r.Err != "" {
			v = nan
		}
		all[r.Contender] = append(all[r.Contender], v)
		for k, m := range r.Marks {
			marks[k] = append(marks[k], m)
		}
	}
	res.TTFBs, res.Marks = map[string]Spread{}, map[string]Spread{}
	for _, n := range contenderNames {
		res.TTFBs[n] = spreadOf(all[n])
	}
	for k, v := range marks {
		res.Marks[k] = spreadOf(v)
	}
	res.RatioGst = spreadOf(ratios(all[capboxd], all[gstLaunch]))
	return res, nil
}

// ttfbRun: the ingest listens first; the clock starts just before the
// contender's process is started and stops at the ingest's first byte.
func (b *bench) ttfbRun(ctx context.Context, name string, rep int) TTFBRun {
	r := TTFBRun{Contender: name, Rep: rep, Load1: load1()}
	fail := func(err error) TTFBRun { r.Err = err.Error(); return r }
	tag := fmt.Sprintf("ttfb-%d-%s", rep, name)
	in, st, _, err := b.ingestAndStreams(ctx, filepath.Join(b.out, "logs", tag+"-ingest.log"))
	if err != nil {
		return fail(err)
	}
	defer in.kill()
	logPath := filepath.Join(b.out, "logs", tag+".log")
	p, err := startProc(name, pick(st, name), nil, logPath, false)
	if err != nil {
		return fail(err)
	}
	first, err := in.waitFirst(ctx, 15*time.Second)
	p.stop(syscall.SIGINT, 10*time.Second)
	if err != nil {
		return fail(err)
	}
	r.TTFBms = ms(first.Sub(p.started))
	if name == capboxd {
		r.Marks = logMarks(logPath, p.started, capboxdMarks)
	}
	return r
}

// logMarks finds the first line of each message in a capboxd log (slog's
// text format: time=RFC3339 with milliseconds ... msg=...) and returns its
// time in ms after start.
func logMarks(path string, start time.Time, msgs []string) map[string]float64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		ts, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if _, seen := out[m]; seen {
				continue
			}
			if strings.Contains(line, "msg="+m+" ") || strings.Contains(line, `msg="`+m+`"`) {
				out[m] = ms(at.Sub(start))
			}
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
