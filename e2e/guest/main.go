// Command e2e-guest is the scenario runner of the virtual capture box. It runs as the last
// step of the guest's boot (e2e/guest-boot.sh) against real vivid/vicodec devices and the real
// bin/capboxd, and writes one result line per scenario into the results share.
//
// Each scenario is an assertion with timings. A scenario that needs an agent feature which
// capboxd does not have yet reports not_implemented (a failure, listed apart), never a pass.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"capbox/e2e/result"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		resultsDir = flag.String("results", "/run/e2e/results", "writable results directory (the host's share)")
		repo       = flag.String("repo", "", "the capbox checkout, as seen on the shared host root")
		arch       = flag.String("arch", "amd64", "guest architecture (amd64, arm64)")
		modroot    = flag.String("modroot", "", "directory holding lib/modules/<kernel> with the out-of-tree modules")
		runPat     = flag.String("run", "", "run only scenarios whose name matches this regular expression")
		list       = flag.Bool("list", false, "list the scenarios and exit")
		verbose    = flag.Bool("v", false, "debug logging")
	)
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: level}))

	table := scenarios()
	if *list {
		for _, s := range table {
			fmt.Printf("%-34s issue scenario %d\n", s.name, s.issue)
		}
		return 0
	}
	var re *regexp.Regexp
	if *runPat != "" {
		var err error
		if re, err = regexp.Compile(*runPat); err != nil {
			fmt.Fprintf(os.Stderr, "e2e-guest: bad -run: %v\n", err)
			return 2
		}
	}
	w, err := result.Create(filepath.Join(*resultsDir, "results.jsonl"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e-guest: %v\n", err)
		return 1
	}
	e := &env{
		log:      log,
		repo:     *repo,
		arch:     *arch,
		modroot:  *modroot,
		capboxd:  filepath.Join(*repo, "bin", "capboxd"),
		results:  *resultsDir,
		artifact: filepath.Join(*resultsDir, "artifacts"),
	}
	if *arch != "amd64" {
		e.capboxd = filepath.Join(*repo, "bin", "capboxd-"+*arch)
	}
	_ = os.MkdirAll(e.artifact, 0o755)

	ctx := context.Background()
	failed := 0
	// setup is always run first: everything else needs its devices.
	setupRec := runOne(ctx, e, scenario{name: "setup", run: setup, timeout: 90 * time.Second})
	if err := w.Write(setupRec); err != nil {
		log.Error("write result", "err", err)
	}
	if setupRec.Status != result.Pass {
		failed++
	}
	for _, s := range table {
		if re != nil && !re.MatchString(s.name) {
			continue
		}
		var rec result.Record
		if setupRec.Status != result.Pass {
			rec = result.Record{Name: s.name, Scenario: s.issue, Status: result.Fail, Reasons: []string{"setup failed"}}
		} else {
			log.Info("scenario start", "name", s.name)
			rec = runOne(ctx, e, s)
		}
		log.Info("scenario end", "name", s.name, "status", rec.Status, "ms", int(rec.DurationMS), "reasons", rec.Reasons)
		if rec.Status != result.Pass {
			failed++
		}
		if err := w.Write(rec); err != nil {
			log.Error("write result", "err", err)
		}
	}
	if err := w.Close(); err != nil {
		log.Error("close results", "err", err)
		return 1
	}
	if failed > 0 {
		return 1
	}
	return 0
}
