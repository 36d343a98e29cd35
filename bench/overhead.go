package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// OverheadRun is one contender streaming for the configured time under
// time -v.
type OverheadRun struct {
	Contender string  `json:"contender"`
	Rep       int     `json:"rep"`
	StreamS   float64 `json:"stream_s"` // start to the stop signal
	UserS     float64 `json:"user_s"`
	SysS      float64 `json:"sys_s"`
	CPUPer60s float64 `json:"cpu_s_per_60s"`
	// PeakRSSMiB is time -v's maximum resident set; SteadyRSSMiB is VmRSS
	// half a second before the stop.
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	SteadyRSSMiB float64 `json:"steady_rss_mib"`
	// RxKbps is what the ingest received over the stream time: the check
	// that all three sent a comparable stream.
	RxKbps float64 `json:"rx_kbps"`
	Exit   int     `json:"exit"`
	Signal int     `json:"signal,omitempty"`
	// Threads is CPU seconds by thread name over the steady window.
	Threads map[string]float64 `json:"threads,omitempty"`
	WindowS float64            `json:"window_s"`
	Load1   float64            `json:"load1_at_start"`
	Err     string             `json:"error,omitempty"`
}

// OverheadResult is figure 1.
type OverheadResult struct {
	Seconds int      `json:"seconds"`
	Reps    int      `json:"reps"`
	Order   []string `json:"order"`
	// Together: capboxd and gst-launch streamed at the same time in each
	// round (ffmpeg after them); otherwise one after the other.
	Together     bool              `json:"together"`
	Runs         []OverheadRun     `json:"runs"`
	CPUPer60s    map[string]Spread `json:"cpu_s_per_60s"`
	PeakRSSMiB   map[string]Spread `json:"peak_rss_mib"`
	SteadyRSSMiB map[string]Spread `json:"steady_rss_mib"`
	RxKbps       map[string]Spread `json:"rx_kbps"`
	// Paired ratios: capboxd's run over the other contender's run of the
	// same round.
	CPURatioGst    Spread `json:"cpu_ratio_capboxd_over_gst_launch"`
	CPURatioFFmpeg Spread `json:"cpu_ratio_capboxd_over_ffmpeg"`
	RSSOverheadMiB Spread `json:"peak_rss_overhead_mib_vs_gst_launch"`
	// CapboxdThreads and GstThreads are the thread profiles of the first
	// successful run of each (where the extra CPU goes).
	CapboxdThreads []string `json:"capboxd_threads"`
	GstThreads     []string `json:"gst_launch_threads"`
}

// Targets (issue 9).
const (
	targetCPURatio       = 1.03
	targetRSSOverheadMiB = 20
	targetTTFBs          = 1.0
	targetRecoverys      = 1.0
	targetFleetBps       = 300
	targetFirstPaintMS   = 2000
	targetWebCPUPct      = 5
)

func (b *bench) overhead(ctx context.Context) (*OverheadResult, error) {
	d := time.Duration(b.opt.seconds) * time.Second
	res := &OverheadResult{Seconds: b.opt.seconds, Reps: b.opt.reps, Order: contenderNames}
	if b.opt.warmup > 0 {
		// One short untimed run each: GStreamer's registry, fonts and the
		// page cache settle before anything is measured.
		for _, name := range contenderNames {
			b.progress("overhead: warm-up %s", name)
			r := b.overheadRun(ctx, name, 0, b.opt.warmup)
			if r.Err != "" {
				return nil, fmt.Errorf("warm-up %s: %s", name, r.Err)
			}
		}
	}
	res.Together = !b.opt.apart
	for rep := 1; rep <= b.opt.reps; rep++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var runs []OverheadRun
		if res.Together {
			// capboxd and gst-launch stream at the same time, each to its
			// own ingest: whatever else the machine does in that minute
			// (a shared host's neighbours, frequency changes) weighs on
			// both alike, and their paired ratio keeps only what differs.
			b.progress("overhead: round %d/%d capboxd and gst-launch at the same time (%s)", rep, b.opt.reps, d)
			pair := make([]OverheadRun, 2)
			var wg sync.WaitGroup
			for i, name := range []string{capboxd, gstLaunch} {
				wg.Add(1)
				go func() { defer wg.Done(); pair[i] = b.overheadRun(ctx, name, rep, d) }()
			}
			wg.Wait()
			b.progress("overhead: round %d/%d ffmpeg (%s)", rep, b.opt.reps, d)
			runs = append(pair, b.overheadRun(ctx, ffmpeg, rep, d))
		} else {
			for _, name := range contenderNames {
				b.progress("overhead: round %d/%d %s (%s)", rep, b.opt.reps, name, d)
				runs = append(runs, b.overheadRun(ctx, name, rep, d))
			}
		}
		for _, r := range runs {
			if r.Err != "" {
				b.progress("overhead: %s: %s", r.Contender, r.Err)
			}
		}
		res.Runs = append(res.Runs, runs...)
	}
	res.summarise()
	return res, nil
}

// overheadRun streams one contender for d to a fresh ingest.
func (b *bench) overheadRun(ctx context.Context, name string, rep int, d time.Duration) OverheadRun {
	r := OverheadRun{Contender: name, Rep: rep, Load1: load1()}
	fail := func(err error) OverheadRun { r.Err = err.Error(); return r }
	tag := fmt.Sprintf("overhead-%d-%s", rep, name)
	if rep == 0 {
		tag = "overhead-warmup-" + name
	}
	in, st, _, err := b.ingestAndStreams(ctx, filepath.Join(b.out, "logs", tag+"-ingest.log"))
	if err != nil {
		return fail(err)
	}
	defer in.kill()
	argv := pick(st, name)
	p, err := startProc(name, argv, nil, filepath.Join(b.out, "logs", tag+".log"), true)
	if err != nil {
		return fail(err)
	}
	pid, err := p.measuredPID()
	if err != nil {
		p.stop(syscall.SIGKILL, time.Second)
		return fail(err)
	}
	// The steady window leaves out start-up (a third of the run, at most
	// 5 s) and the last half second.
	warm := min(d/3, 5*time.Second)
	sleepUntil(ctx, p.started.Add(warm))
	th0, _ := threadCPU(pid)
	w0 := time.Now()
	sleepUntil(ctx, p.started.Add(d-500*time.Millisecond))
	th1, _ := threadCPU(pid)
	window := time.Since(w0)
	rss, rssErr := statusKiB(pid, "VmRSS")
	sleepUntil(ctx, p.started.Add(d))
	died := p.exited()
	stopAt := time.Now()
	p.stop(syscall.SIGINT, 15*time.Second)
	u, err := p.usage()
	if err != nil {
		return fail(err)
	}
	r.StreamS = stopAt.Sub(p.started).Seconds()
	r.UserS, r.SysS = u.User.Seconds(), u.Sys.Seconds()
	r.CPUPer60s = u.CPU().Seconds() * 60 / r.StreamS
	r.PeakRSSMiB = float64(u.MaxRSSKiB) / 1024
	if rssErr == nil {
		r.SteadyRSSMiB = float64(rss) / 1024
	}
	r.Exit, r.Signal = u.Exit, u.Signal
	r.Threads = threadDelta(th0, th1, window)
	r.WindowS = window.Seconds()
	r.RxKbps = float64(in.bytes.Load()) * 8 / 1000 / r.StreamS
	switch {
	case died:
		r.Err = fmt.Sprintf("%s ended before the stop signal (exit %d); see logs/%s.log", name, u.Exit, tag)
	case in.bytes.Load() == 0:
		r.Err = "the ingest received nothing"
	}
	return r
}

func pick(st []stream, name string) []string {
	for _, s := range st {
		if s.name == name {
			return s.argv
		}
	}
	return nil
}

func (res *OverheadResult) summarise() {
	by := func(f func(OverheadRun) float64) map[string][]float64 {
		m := map[string][]float64{}
		for _, r := range res.Runs {
			v := f(r)
			if r.Err != "" {
				v = nan
			}
			m[r.Contender] = append(m[r.Contender], v)
		}
		return m
	}
	cpu := by(func(r OverheadRun) float64 { return r.CPUPer60s })
	peak := by(func(r OverheadRun) float64 { return r.PeakRSSMiB })
	steady := by(func(r OverheadRun) float64 { return r.SteadyRSSMiB })
	rx := by(func(r OverheadRun) float64 { return r.RxKbps })
	res.CPUPer60s, res.PeakRSSMiB, res.SteadyRSSMiB, res.RxKbps = map[string]Spread{}, map[string]Spread{}, map[string]Spread{}, map[string]Spread{}
	for _, n := range contenderNames {
		res.CPUPer60s[n] = spreadOf(cpu[n])
		res.PeakRSSMiB[n] = spreadOf(peak[n])
		res.SteadyRSSMiB[n] = spreadOf(steady[n])
		res.RxKbps[n] = spreadOf(rx[n])
	}
	res.CPURatioGst = spreadOf(ratios(cpu[capboxd], cpu[gstLaunch]))
	res.CPURatioFFmpeg = spreadOf(ratios(cpu[capboxd], cpu[ffmpeg]))
	res.RSSOverheadMiB = spreadOf(diffs(peak[capboxd], peak[gstLaunch]))
	for _, r := range res.Runs {
		if r.Err != "" {
			continue
		}
		if r.Contender == capboxd && res.CapboxdThreads == nil {
			res.CapboxdThreads = perMinute(r.Threads, r.WindowS)
		}
		if r.Contender == gstLaunch && res.GstThreads == nil {
			res.GstThreads = perMinute(r.Threads, r.WindowS)
		}
	}
}

// perMinute scales a thread profile to CPU seconds per 60 s and lists the
// busiest ten.
func perMinute(th map[string]float64, windowS float64) []string {
	if windowS <= 0 {
		return nil
	}
	m := map[string]float64{}
	for k, v := range th {
		m[k] = v * 60 / windowS
	}
	return topThreads(m, 10)
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
