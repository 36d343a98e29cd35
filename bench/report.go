package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// renderSummary is the Markdown summary of a run (summary.md): the
// figures with their targets, then the machine.
func renderSummary(r *Results) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	m := r.Machine
	// A tiny run checks that the benchmarks work; its figures judge nothing.
	judge := func(s Spread, target float64) string {
		if r.Mode == "tiny" {
			return "tiny run, no verdict"
		}
		return verdict(s, target)
	}
	p("# capbench (%s mode), %s", r.Mode, m.Date)
	p("")
	p("Machine: %s, %d cores, %d MiB, Linux %s, %s. Commit %s. Load average %s at the start, %s at the end. Run took %.0f s.",
		m.CPU, m.Cores, m.MemMiB, m.Kernel, m.OS, m.Commit, m.LoadStart, m.LoadEnd, r.DurationS)
	for _, k := range slices.Sorted(maps.Keys(m.Tools)) {
		p("- %s: %s", k, m.Tools[k])
	}
	p("")
	if o := r.Overhead; o != nil {
		p("## 1. Agent overhead")
		p("")
		how := "capboxd, gst-launch and ffmpeg one after the other"
		if o.Together {
			how = "capboxd and gst-launch at the same time, then ffmpeg"
		}
		p("%d rounds of %s; %d s of 720p30 x264 + silent AAC to an SRT ingest on loopback each; no recording in any. Median (min-max).", o.Reps, how, o.Seconds)
		p("")
		p("| contender | CPU s per 60 s | peak RSS MiB | steady RSS MiB | ingest received kbit/s |")
		p("|---|---|---|---|---|")
		for _, n := range contenderNames {
			p("| %s | %s | %s | %s | %s |", n, o.CPUPer60s[n].format("%.2f"), o.PeakRSSMiB[n].format("%.1f"), o.SteadyRSSMiB[n].format("%.1f"), o.RxKbps[n].format("%.0f"))
		}
		p("")
		p("- CPU capboxd / gst-launch (paired by round): %s; target <= %.2f: **%s**", o.CPURatioGst.format("%.3f"), targetCPURatio, judge(o.CPURatioGst, targetCPURatio))
		p("- CPU capboxd / ffmpeg: %s", o.CPURatioFFmpeg.format("%.3f"))
		p("- peak RSS capboxd - gst-launch: %s MiB; target <= %d MiB: **%s**", o.RSSOverheadMiB.format("%.1f"), targetRSSOverheadMiB, judge(o.RSSOverheadMiB, targetRSSOverheadMiB))
		p("- capboxd threads, CPU s per 60 s: %s", strings.Join(o.CapboxdThreads, ", "))
		p("- gst-launch threads, CPU s per 60 s: %s", strings.Join(o.GstThreads, ", "))
		p("")
	}
	if t := r.TTFB; t != nil {
		p("## 2. Time to first byte at the ingest")
		p("")
		p("%d interleaved rounds; from starting the process to the first byte the listening SRT ingest receives. Median (min-max).", t.Reps)
		p("")
		p("| contender | ms |")
		p("|---|---|")
		for _, n := range contenderNames {
			p("| %s | %s |", n, t.TTFBs[n].format("%.0f"))
		}
		p("")
		p("- capboxd: target <= %.0f ms: **%s**", targetTTFBs*1000, judge(t.TTFBs[capboxd], targetTTFBs*1000))
		p("- capboxd / gst-launch (paired): %s", t.RatioGst.format("%.2f"))
		var marks []string
		for _, k := range capboxdMarks {
			if s, ok := t.Marks[k]; ok {
				marks = append(marks, fmt.Sprintf("%s %s", k, s.format("%.0f")))
			}
		}
		p("- capboxd log marks, ms after start: %s", strings.Join(marks, "; "))
		p("")
	}
	if rc := r.Recovery; rc != nil {
		p("## 3. Recovery after an ingest outage")
		p("")
		how := "stopped cleanly (SIGINT: SRT tells the sender at once)"
		if rc.Crash {
			how = "killed (SIGKILL: no SRT shutdown reaches the sender, which notices when SRT's 5 s peer idle timeout runs out)"
		}
		p("%d rounds; the ingest is %s, stays down %.0f s and comes back on the same port. Time from its socket being bound again to its first byte. gst-launch-1.0 and ffmpeg run inside `bench/loop.sh` (`while :; do CMD; sleep 1; done`), the wrapper a script needs when they exit. Median (min-max).", rc.Reps, how, rc.DownS)
		p("")
		p("| contender | ms after the ingest is back | wrapper restarts |")
		p("|---|---|---|")
		for _, n := range contenderNames {
			p("| %s | %s | %s |", n, rc.RecoverMs[n].format("%.0f"), rc.Restarts[n].format("%.0f"))
		}
		p("")
		p("- capboxd: target <= %.0f ms: **%s**", targetRecoverys*1000, judge(rc.RecoverMs[capboxd], targetRecoverys*1000))
		p("")
	}
	if z := r.ZeroCopy; z != nil {
		p("## 4. Zero-copy gain in the virtual capture box")
		p("")
		p("The e2e harness's zero-copy rows (vivid -> vicodec under QEMU TCG). Median (min-max) over the boots.")
		p("")
		for _, row := range z.Rows {
			p("### %s (%s), %d run(s)", row.Name, row.What, len(row.Runs))
			p("")
			p("- CPU per frame: dmabuf-import %s ms, mmap %s ms", row.DMABufCPUms.format("%.1f"), row.MMAPCPUms.format("%.1f"))
			p("- ratio mmap / dmabuf: CPU %s, user CPU %s", row.CPURatio.format("%.2f"), row.UserRatio.format("%.2f"))
			for _, run := range row.Runs {
				fps := ""
				if run.FPS != "" {
					fps = ", frames/s dmabuf/mmap " + run.FPS
				}
				p("- %s (%s): %s dmabuf imports of %s exported fds; ratio %.2f%s", run.Source, run.Modified.Format("2006-01-02 15:04 MST"), run.Imports, run.Exported, run.CPURatio, fps)
			}
			p("")
		}
		for _, pr := range z.Problems {
			p("- problem: %s", pr)
		}
		p("")
	}
	if f := r.Fleet; f != nil {
		p("## 5. Fleet cost")
		p("")
		p("Simulated boxes: the real link (agent/fleet) with telemetry sampled by agent/health from a Raspberry Pi 4 fixture tree and a busy pipeline's counters, every %.0f s (the default), through a counting proxy to mosquitto (password file + capboxctl's ACL). `capboxctl watch` subscribed to everything during the window.", f.TelemetryIntervalS)
		p("")
		p("| boxes | all online s | B/s per box up | down | telemetry packet B | mosquitto CPU %% | mosquitto RSS MiB | watch CPU %% | watch RSS MiB | ls CPU ms | ls wall ms | links+proxy CPU %% |")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, x := range f.Runs {
			if x.Err != "" {
				p("| %d | error: %s |", x.Boxes, x.Err)
				continue
			}
			p("| %d | %.1f | %.1f | %.1f | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f |", x.Boxes, x.ConnectS, x.UpBps, x.DownBps, x.TelemetryBytes,
				x.BrokerCPUPct, x.BrokerRSSMiB, x.WatchCPUPct, x.WatchRSSMiB, x.LsCPUms, x.LsWallms, x.LinksCPUPct)
		}
		p("")
		for _, x := range f.Runs {
			if x.Err == "" {
				total := x.UpBps + x.DownBps
				met := judge(Spread{N: 1, Median: total}, targetFleetBps)
				p("- %d boxes: %.1f B/s per box both ways; target <= %d: **%s**. By kind: %s", x.Boxes, total, targetFleetBps, met, strings.Join(kindsByRate(x.PerKind), ", "))
			}
		}
		p("")
	}
	if fp := r.Footprint; fp != nil {
		p("## 6. Footprint")
		p("")
		p("| binary | built | as built | stripped (strip --strip-all) | stripped, gzip -6 |")
		p("|---|---|---|---|---|")
		for _, b := range fp.Binaries {
			if b.Err != "" {
				p("| %s | | error: %s | | |", b.Name, b.Err)
				continue
			}
			p("| %s | %s | %s | %s | %s |", b.Name, b.Built.Format("2006-01-02 15:04"), mib(b.Bytes), mib(b.Stripped), mib(b.Gzipped))
		}
		p("")
		p("- capboxd RSS streaming the test pattern (amd64, sampled every second for %.0f s, second half): %s MiB; RssAnon %.1f MiB, RssFile %.1f MiB, %d threads",
			fp.RunS, fp.SteadyRSSMiB.format("%.1f"), fp.RssAnonMiB, fp.RssFileMiB, fp.Threads)
		p("")
	}
	w.WriteString(uploadSummary(r))
	if d := r.Dashboard; d != nil && d.Err == "" {
		p("## 7. The dashboard")
		p("")
		p("`capboxctl web` with %d simulated boxes (internal/simbox: telemetry every %.0f s, previews and meters only under a watch lease) on mosquitto, the boxes through a counting proxy; windows of %.0f s, first without a browser, then with the grid open in headless chromium (1600x1000).", d.Boxes, d.TelemetryIntervalS, d.WindowS)
		p("")
		p("- first paint of the grid: first contentful paint %.0f ms, every tile in the page (DOMContentLoaded) %.0f ms, page %.0f KiB; target < 2000 ms: **%s**", d.FirstPaintMS, d.AllTilesMS, d.PageKiB, judge(Spread{N: 1, Median: max(d.FirstPaintMS, d.AllTilesMS)}, targetFirstPaintMS))
		p("- capboxctl web CPU: %.2f %% of a core with no browser, %.2f %% with the grid open (%d rooms watched); target < 5 %%: **%s**; RSS %.1f MiB", d.IdleCPUPct, d.WatchedCPUPct, d.Watched, judge(Spread{N: 1, Median: max(d.IdleCPUPct, d.WatchedCPUPct)}, targetWebCPUPct), d.WebRSSMiB)
		p("- MQTT per box with no viewer: %.1f B/s both ways; a watched box adds %.0f B/s (%s); a preview is %.0f bytes", d.NoViewerBps, d.WatchedBps, strings.Join(kindsByRate(d.WatchedKinds), ", "), d.PreviewBytes)
		p("- capboxd (720p30 test pattern, x264, joining them): %.1f %% of a core not watched, %.1f %% watched (previews every 3 s, meters 5 a second); the mean of %d alternating windows of each", d.AgentIdleCPUPct, d.AgentWatchedCPUPct, d.AgentRounds)
		p("")
	}
	if len(r.Errors) > 0 {
		p("## Errors")
		p("")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			p("- %s: %s", k, r.Errors[k])
		}
		p("")
	}
	return w.String()
}

func mib(n int64) string {
	return fmt.Sprintf("%.2f MiB (%d B)", float64(n)/(1<<20), n)
}
