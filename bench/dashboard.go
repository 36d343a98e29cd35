package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"capbox/internal/simbox"
)

// DashboardResult is figure 9: `capboxctl web` with a fleet of simulated
// boxes (internal/simbox) on mosquitto, with and without a browser open.
type DashboardResult struct {
	Boxes   int     `json:"boxes"`
	WindowS float64 `json:"window_s"`
	// TelemetryIntervalS is the boxes' telemetry interval.
	TelemetryIntervalS float64 `json:"telemetry_interval_s"`
	ConnectS           float64 `json:"connect_s"`
	// First paint of the grid in headless chromium, from the navigation's
	// start: the first contentful paint, and every tile in the page.
	FirstPaintMS float64 `json:"first_contentful_paint_ms"`
	AllTilesMS   float64 `json:"all_tiles_ms"`
	PageKiB      float64 `json:"page_kib"`
	// capboxctl web's CPU (% of one core) over the steady window, with no
	// browser and with the grid open (its visible rooms watched).
	IdleCPUPct    float64 `json:"web_cpu_pct_no_viewer"`
	WatchedCPUPct float64 `json:"web_cpu_pct_page_open"`
	WebRSSMiB     float64 `json:"web_rss_mib"`
	// MQTT bytes per second per box, both ways, with no viewer; and what
	// one watched box adds (previews, meters, leases and their answers).
	NoViewerBps  float64            `json:"bytes_per_s_per_box_no_viewer"`
	Watched      int                `json:"watched_boxes"`
	WatchedBps   float64            `json:"added_bytes_per_s_per_watched_box"`
	WatchedKinds map[string]float64 `json:"added_bytes_per_s_per_watched_box_by_kind"`
	PreviewBytes float64            `json:"preview_packet_bytes"`
	// One real capboxd joins them (the test pattern at 720p30, x264, one
	// SRT listener), first in the grid so the open page watches it: its
	// CPU (% of one core) watched and not, the mean of two alternating
	// windows of each.
	AgentIdleCPUPct    float64 `json:"capboxd_cpu_pct_not_watched"`
	AgentWatchedCPUPct float64 `json:"capboxd_cpu_pct_watched"`
	AgentRounds        int     `json:"capboxd_rounds"`
	Err                string  `json:"error,omitempty"`
}

// watchKinds are the tally kinds a lease adds.
var watchKinds = []string{"up PUBLISH preview", "up PUBLISH meter", "up PUBLISH cmd", "down PUBLISH cmd"}

var dashboardURL = regexp.MustCompile(`dashboard on (http://[0-9.:]+)`)

func (b *bench) dashboard(ctx context.Context) (r *DashboardResult, _ error) {
	n := b.opt.dashBoxes
	r = &DashboardResult{Boxes: n, TelemetryIntervalS: b.opt.telemetryInterval.Seconds()}
	fail := func(err error) (*DashboardResult, error) { r.Err = err.Error(); return r, err }
	dir := filepath.Join(b.out, fmt.Sprintf("dashboard-%d", n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	users := map[string]string{fleetUser: fleetPassword}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("room-%04d", i)
		users[ids[i]] = boxPassword(ids[i])
	}
	const live = "live-0000" // sorts before room-*: the first tile
	users[live] = boxPassword(live)
	mq, err := simbox.StartMosquitto(dir, users, fleetUser)
	if err != nil {
		return fail(err)
	}
	defer mq.Stop()
	t := newTally()
	px, err := newCountingProxy(strings.TrimPrefix(mq.URL, "mqtt://"), t)
	if err != nil {
		return fail(err)
	}
	defer px.close()
	opPw := filepath.Join(dir, "fleet.pw")
	if err := os.WriteFile(opPw, []byte(fleetPassword+"\n"), 0o600); err != nil {
		return fail(err)
	}
	ctl := func(args ...string) []string {
		return append([]string{b.opt.capboxctl, "--broker", mq.URL, "--username", fleetUser, "--password-file", opPw}, args...)
	}
	boxCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	start := time.Now()
	for i, id := range ids {
		box := simbox.New(simbox.Options{ID: id, Index: i, Broker: "mqtt://" + px.addr(), Password: users[id], TelemetryInterval: b.opt.telemetryInterval})
		wg.Add(1)
		go func() { defer wg.Done(); _ = box.Run(boxCtx) }()
	}
	if err := waitOnline(ctx, ctl, n, b.opt.fleetConnectTimeout); err != nil {
		return fail(err)
	}
	r.ConnectS = time.Since(start).Seconds()

	logPath := filepath.Join(b.out, "logs", fmt.Sprintf("dashboard-%d-web.log", n))
	// The dashboard's default lease; a tiny run waits for a shorter one.
	lease, rounds := 15*time.Second, 2
	if b.opt.tiny {
		lease, rounds = 3*time.Second, 1
	}
	web, err := startProc("capboxctl web", ctl("web", "--listen", "127.0.0.1:0", "--lease", lease.String()), nil, logPath, false)
	if err != nil {
		return fail(err)
	}
	defer web.stop(syscall.SIGINT, 5*time.Second)
	url := ""
	for deadline := time.Now().Add(30 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		log, _ := os.ReadFile(logPath)
		if m := dashboardURL.FindSubmatch(log); m != nil {
			url = string(m[1])
		}
	}
	if url == "" {
		return fail(fmt.Errorf("capboxctl web did not start (see %s)", logPath))
	}
	sleepUntil(ctx, time.Now().Add(b.opt.fleetSettle))
	pid := web.cmd.Process.Pid

	// No viewer: the boxes' traffic is version 1's, and the dashboard only
	// follows it.
	window := func() (cpuPct float64, bytes map[string]float64, count map[string]int64, err error) {
		b0, c0 := t.snapshot()
		cpu0, err := procCPU(pid)
		if err != nil {
			return 0, nil, nil, err
		}
		w0 := time.Now()
		sleepUntil(ctx, w0.Add(b.opt.dashWindow))
		w := time.Since(w0)
		b1, c1 := t.snapshot()
		cpu1, err := procCPU(pid)
		if err != nil {
			return 0, nil, nil, err
		}

		bytes, count = map[string]float64{}, map[string]int64{}
		for k, v := range b1 {
			if d := v - b0[k]; d > 0 {
				bytes[k] = float64(d) / w.Seconds()
				count[k] = c1[k] - c0[k]
			}
		}
		r.WindowS = w.Seconds()
		return 100 * float64(cpu1-cpu0) / float64(w), bytes, count, nil
	}
	idleCPU, idle, _, err := window()
	if err != nil {
		return fail(err)
	}
	r.IdleCPUPct = idleCPU
	for _, v := range idle {
		r.NoViewerBps += v / float64(n)
	}

	// The grid in a browser: first paint, then the visible rooms watched.
	br, stopBrowser, err := headlessChromium(dir)
	if err != nil {
		return fail(err)
	}
	defer stopBrowser()
	nctx, ncancel := context.WithTimeout(br, 60*time.Second)
	err = chromedp.Do(nctx, chromedp.Navigate(url))
	ncancel()
	if err != nil {
		return fail(fmt.Errorf("open the grid: %w", err))
	}
	type paint struct {
		FCP, Tiles, Bytes float64
		Count, Visible    int
	}
	var p paint
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ectx, ecancel := context.WithTimeout(br, 10*time.Second)
		p, err = chromedp.Run(ectx, chromedp.Evaluate[paint](`(() => {
			const fcp = performance.getEntriesByName("first-contentful-paint")[0];
			const nav = performance.getEntriesByType("navigation")[0];
			const tiles = document.querySelectorAll("#grid .tile");
			let visible = 0;
			for (const t of tiles) { const r = t.getBoundingClientRect(); if (r.bottom > 0 && r.top < innerHeight) visible++; }
			return {FCP: fcp ? fcp.startTime : 0, Tiles: nav ? nav.domContentLoadedEventEnd : 0,
				Bytes: nav ? nav.transferSize : 0, Count: tiles.length, Visible: visible};
		})()`))
		ecancel()
		if err == nil && p.FCP > 0 && p.Count == n {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the grid did not show %d rooms: %+v %v", n, p, err))
		}
	}
	r.FirstPaintMS, r.AllTilesMS, r.PageKiB, r.Watched = p.FCP, p.Tiles, p.Bytes/1024, p.Visible
	sleepUntil(ctx, time.Now().Add(b.opt.fleetSettle))
	watchedCPU, watched, count, err := window()
	if err != nil {
		return fail(err)
	}
	r.WatchedCPUPct = watchedCPU
	if kib, err := statusKiB(pid, "VmRSS"); err == nil {
		r.WebRSSMiB = float64(kib) / 1024
	}
	r.WatchedKinds = map[string]float64{}
	if r.Watched > 0 {
		for _, k := range watchKinds {
			if v := watched[k] - idle[k]; v > 0 {
				r.WatchedKinds[k] = v / float64(r.Watched)
				r.WatchedBps += v / float64(r.Watched)
			}
		}
	}
	if c := count["up PUBLISH preview"]; c > 0 {
		r.PreviewBytes = watched["up PUBLISH preview"] * r.WindowS / float64(c)
	}
	if r.WatchedBps == 0 {
		return fail(errors.New("no preview or meter traffic with the grid open"))
	}

	// A real capboxd joins; its tile comes first, so the open grid watches
	// it. Its CPU watched and not (the page closed and the lease lapsed),
	// in alternating windows.
	agent, err := b.startLiveBox(dir, live, "mqtt://"+px.addr(), users[live])
	if err != nil {
		return fail(err)
	}
	defer agent.stop(syscall.SIGINT, 10*time.Second)
	watchedTile := func() error {
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			ectx, ecancel := context.WithTimeout(br, 10*time.Second)
			ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector("#t-live-0000 .pv img");
				return !!i && i.complete && i.naturalWidth > 0 })()`))
			ecancel()
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no preview from capboxd in the grid: %v", err)
			}
		}
	}
	navigate := func(u string) error {
		nctx, ncancel := context.WithTimeout(br, 60*time.Second)
		defer ncancel()
		return chromedp.Do(nctx, chromedp.Navigate(u))
	}
	agentCPU := func() (float64, error) {
		c0, err := procCPU(agent.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		w0 := time.Now()
		sleepUntil(ctx, w0.Add(b.opt.dashWindow))
		c1, err := procCPU(agent.cmd.Process.Pid)
		return 100 * float64(c1-c0) / float64(time.Since(w0)), err
	}
	var on, off []float64
	for round := range rounds {
		if round > 0 {
			if err := navigate(url); err != nil {
				return fail(err)
			}
		}
		if err := watchedTile(); err != nil {
			return fail(err)
		}
		pct, err := agentCPU()
		if err != nil {
			return fail(err)
		}
		on = append(on, pct)
		if err := navigate("about:blank"); err != nil {
			return fail(err)
		}
		sleepUntil(ctx, time.Now().Add(lease+2*time.Second)) // the lease lapses
		if pct, err = agentCPU(); err != nil {
			return fail(err)
		}
		off = append(off, pct)
	}
	r.AgentRounds = len(on)
	for i := range on {
		r.AgentWatchedCPUPct += on[i] / float64(len(on))
		r.AgentIdleCPUPct += off[i] / float64(len(off))
	}
	return r, nil
}

// headlessChromium is Debian's chromium, headless, with a fresh profile
// and the flags that keep it off the network.
func headlessChromium(dir string) (context.Context, func(), error) {
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, errors.New("chromium is not installed (make deps)")
	}
	profile, err := os.MkdirTemp(dir, "chromium-")
	if err != nil {
		return nil, nil, err
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1600, 1000))
	ctx, cancelC := chromedp.NewContext(actx)
	stop := func() { cancelC(); cancelA() }
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("chromium: %w", err)
	}
	return ctx, stop, nil
}

// startLiveBox runs bin/capboxd on the test pattern with the fleet link.
func (b *bench) startLiveBox(dir, id, broker, password string) (*proc, error) {
	pw := filepath.Join(dir, id+".pw")
	if err := os.WriteFile(pw, []byte(password), 0o600); err != nil {
		return nil, err
	}
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`device: {id: %s}
capture: {video: test, audio: test}
encode: {encoder: x264enc, bitrate_kbps: 3000, max_width: 1280, max_height: 720, max_fps: 30}
outputs:
  - {name: primary, url: "srt://127.0.0.1:%d?mode=listener"}
record: {enabled: false}
fleet: {broker: "%s", password_file: %s}
`, id, port, broker, pw)
	cfgFile := filepath.Join(dir, id+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return startProc("capboxd "+id, []string{b.opt.capboxd, "run", "-c", cfgFile},
		[]string{"STATE_DIRECTORY=" + filepath.Join(dir, "state-"+id)}, filepath.Join(b.out, "logs", "dashboard-"+id+".log"), false)
}
