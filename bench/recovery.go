package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// loopScript is bench/loop.sh: `while :; do CMD; sleep 1; done`, what a
// script around gst-launch-1.0 or ffmpeg must do, since neither
// reconnects on its own.
//
//go:embed loop.sh
var loopScript []byte

// RecoveryRun is one outage: the ingest crashes (SIGKILL, no SRT shutdown
// reaches the sender) or stops cleanly, stays down, and comes back on the
// same port.
type RecoveryRun struct {
	Contender string  `json:"contender"`
	Rep       int     `json:"rep"`
	DownS     float64 `json:"down_s"`
	// RecoverMs is from the new ingest's socket being bound to its first
	// byte.
	RecoverMs float64 `json:"recover_ms"`
	// Restarts counts the wrapper loop's restarts during the run.
	Restarts int     `json:"restarts"`
	Load1    float64 `json:"load1_at_start"`
	Err      string  `json:"error,omitempty"`
}

// RecoveryResult is figure 3.
type RecoveryResult struct {
	Reps  int     `json:"reps"`
	DownS float64 `json:"down_s"`
	// Crash: the ingest was killed (SIGKILL); otherwise stopped cleanly.
	Crash     bool              `json:"crash"`
	Runs      []RecoveryRun     `json:"runs"`
	RecoverMs map[string]Spread `json:"recover_ms"`
	Restarts  map[string]Spread `json:"restarts"`
}

func (b *bench) recovery(ctx context.Context) (*RecoveryResult, error) {
	loop := filepath.Join(b.out, "loop.sh")
	if err := os.WriteFile(loop, loopScript, 0o755); err != nil {
		return nil, err
	}
	res := &RecoveryResult{Reps: b.opt.recoveryReps, DownS: b.opt.down.Seconds(), Crash: b.opt.crash}
	for rep := 1; rep <= b.opt.recoveryReps; rep++ {
		for _, name := range contenderNames {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			r := b.recoveryRun(ctx, name, rep, loop)
			b.progress("recovery: round %d/%d %s %.0f ms after the ingest was back, %d restarts %s", rep, b.opt.recoveryReps, name, r.RecoverMs, r.Restarts, r.Err)
			res.Runs = append(res.Runs, r)
		}
	}
	rec, rst := map[string][]float64{}, map[string][]float64{}
	for _, r := range res.Runs {
		v := r.RecoverMs
		if r.Err != "" {
			v = nan
		}
		rec[r.Contender] = append(rec[r.Contender], v)
		rst[r.Contender] = append(rst[r.Contender], float64(r.Restarts))
	}
	res.RecoverMs, res.Restarts = map[string]Spread{}, map[string]Spread{}
	for _, n := range contenderNames {
		res.RecoverMs[n] = spreadOf(rec[n])
		res.Restarts[n] = spreadOf(rst[n])
	}
	return res, nil
}

func (b *bench) recoveryRun(ctx context.Context, name string, rep int, loop string) (r RecoveryRun) {
	r = RecoveryRun{Contender: name, Rep: rep, DownS: b.opt.down.Seconds(), Load1: load1()}
	fail := func(err error) RecoveryRun { r.Err = err.Error(); return r }
	tag := fmt.Sprintf("recovery-%d-%s", rep, name)
	ingestLog := func(n int) string { return filepath.Join(b.out, "logs", fmt.Sprintf("%s-ingest%d.log", tag, n)) }
	in, st, port, err := b.ingestAndStreams(ctx, ingestLog(1))
	if err != nil {
		return fail(err)
	}
	argv := pick(st, name)
	if name != capboxd {
		argv = append([]string{"/bin/sh", loop}, argv...)
	}
	logPath := filepath.Join(b.out, "logs", tag+".log")
	p, err := startProc(name, argv, nil, logPath, false)
	if err != nil {
		in.kill()
		return fail(err)
	}
	defer func() {
		p.stop(syscall.SIGKILL, 5*time.Second)
		r.Restarts = countLines(logPath, "loop: ")
	}()
	if _, err := in.waitFirst(ctx, 15*time.Second); err != nil {
		in.kill()
		return fail(fmt.Errorf("before the outage: %w", err))
	}
	sleepUntil(ctx, time.Now().Add(b.opt.streamBefore))
	if b.opt.crash {
		in.kill()
	} else {
		in.close()
	}
	sleepUntil(ctx, time.Now().Add(b.opt.down))
	in2, err := startIngest(port, ingestLog(2))
	if err != nil {
		return fail(err)
	}
	defer in2.kill()
	first, err := in2.waitFirst(ctx, b.opt.recoverTimeout)
	if err != nil {
		return fail(err)
	}
	r.RecoverMs = ms(first.Sub(in2.up))
	return r
}

func countLines(path, prefix string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
