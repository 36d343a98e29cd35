package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/broker"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// FleetRun is one fleet size on a fresh mosquitto.
type FleetRun struct {
	Boxes    int     `json:"boxes"`
	ConnectS float64 `json:"connect_s"` // until `capboxctl ls` shows every box online
	WindowS  float64 `json:"window_s"`
	// Per box, over the steady window: MQTT bytes (fixed headers
	// included, TCP/IP headers not) box to broker (up) and back (down).
	UpBps   float64            `json:"up_bytes_per_s_per_box"`
	DownBps float64            `json:"down_bytes_per_s_per_box"`
	PerKind map[string]float64 `json:"bytes_per_s_per_box_by_kind"`
	// TelemetryBytes is the mean size of one telemetry PUBLISH packet.
	TelemetryBytes float64 `json:"telemetry_packet_bytes"`
	BrokerCPUPct   float64 `json:"broker_cpu_pct"` // of one core
	BrokerRSSMiB   float64 `json:"broker_rss_mib"`
	WatchCPUPct    float64 `json:"capboxctl_watch_cpu_pct"`
	WatchRSSMiB    float64 `json:"capboxctl_watch_rss_mib"`
	WatchLines     int     `json:"capboxctl_watch_lines"`
	LsCPUms        float64 `json:"capboxctl_ls_cpu_ms"`
	LsWallms       float64 `json:"capboxctl_ls_wall_ms"`
	// LinksCPUPct is this process: every simulated box's link plus the
	// counting proxy.
	LinksCPUPct float64 `json:"links_and_proxy_cpu_pct"`
	Load1       float64 `json:"load1_at_start"`
	Err         string  `json:"error,omitempty"`
}

// FleetResult is figure 5.
type FleetResult struct {
	TelemetryIntervalS float64    `json:"telemetry_interval_s"`
	Runs               []FleetRun `json:"runs"`
}

const (
	fleetUser     = "fleet"
	fleetPassword = "bench-fleet-operator"
)

func boxPassword(id string) string { return "bench-" + id + "-pw" }

func (b *bench) fleet(ctx context.Context) (*FleetResult, error) {
	res := &FleetResult{TelemetryIntervalS: b.opt.telemetryInterval.Seconds()}
	for _, n := range b.opt.boxes {
		b.progress("fleet: %d simulated boxes on mosquitto", n)
		r := b.fleetRun(ctx, n)
		if r.Err != "" {
			b.progress("fleet: %d boxes: %s", n, r.Err)
		} else {
			b.progress("fleet: %d boxes: %.0f B/s up + %.0f B/s down per box; mosquitto %.1f%%, capboxctl watch %.1f%% of a core",
				n, r.UpBps, r.DownBps, r.BrokerCPUPct, r.WatchCPUPct)
		}
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

func (b *bench) fleetRun(ctx context.Context, n int) (r FleetRun) {
	r = FleetRun{Boxes: n, Load1: load1()}
	fail := func(err error) FleetRun { r.Err = err.Error(); return r }
	dir := filepath.Join(b.out, fmt.Sprintf("fleet-%d", n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("room-%04d", i)
	}
	brokerAddr, stopBroker, brokerPID, err := b.startMosquitto(dir, ids)
	if err != nil {
		return fail(err)
	}
	defer stopBroker()
	t := newTally()
	px, err := newCountingProxy(brokerAddr, t)
	if err != nil {
		return fail(err)
	}
	defer px.close()
	opPw := filepath.Join(dir, "fleet.pw")
	if err := os.WriteFile(opPw, []byte(fleetPassword+"\n"), 0o600); err != nil {
		return fail(err)
	}
	ctl := func(args ...string) []string {
		return append([]string{b.opt.capboxctl, "--broker", "mqtt://" + brokerAddr, "--username", fleetUser, "--password-file", opPw}, args...)
	}

	linkCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	tel := newTelemetrySource(linkCtx, b.opt.healthFixture)
	start := time.Now()
	for _, id := range ids {
		f := config.Default().Fleet
		f.Broker, f.Username, f.PasswordFile = "mqtt://"+px.addr(), id, filepath.Join(dir, id+".pw")
		f.TelemetryInterval = config.Duration(b.opt.telemetryInterval)
		if err := os.WriteFile(f.PasswordFile, []byte(boxPassword(id)), 0o600); err != nil {
			return fail(err)
		}
		link, err := fleet.New(f, id, newSimBox(tel), slog.New(slog.DiscardHandler), fleet.WithStateDir(filepath.Join(dir, "state", id)))
		if err != nil {
			return fail(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = link.Run(linkCtx) }()
	}
	if err := waitOnline(ctx, ctl, n, b.opt.fleetConnectTimeout); err != nil {
		return fail(err)
	}
	r.ConnectS = time.Since(start).Seconds()

	watchLog := filepath.Join(b.out, "logs", fmt.Sprintf("fleet-%d-watch.log", n))
	watch, err := startProc("capboxctl watch", ctl("watch", "--plain"), nil, watchLog, false)
	if err != nil {
		return fail(err)
	}
	defer watch.stop(syscall.SIGINT, 5*time.Second)
	// The birth storm is over once every box is online; the watcher gets
	// the retained documents on subscribing. Then the steady window.
	sleepUntil(ctx, time.Now().Add(b.opt.fleetSettle))
	if watch.exited() {
		return fail(fmt.Errorf("capboxctl watch ended early (see %s)", watchLog))
	}
	bytes0, count0 := t.snapshot()
	br0, errB0 := procCPU(brokerPID)
	wa0, errW0 := procCPU(watch.cmd.Process.Pid)
	self0 := selfCPU()
	w0 := time.Now()
	sleepUntil(ctx, w0.Add(b.opt.fleetWindow))
	window := time.Since(w0)
	bytes1, count1 := t.snapshot()
	br1, errB1 := procCPU(brokerPID)
	wa1, errW1 := procCPU(watch.cmd.Process.Pid)
	self1 := selfCPU()
	if err := errors.Join(errB0, errW0, errB1, errW1); err != nil {
		return fail(err)
	}
	r.WindowS = window.Seconds()
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(window) }
	r.BrokerCPUPct, r.WatchCPUPct, r.LinksCPUPct = pct(br1-br0), pct(wa1-wa0), pct(self1-self0)
	if kib, err := statusKiB(brokerPID, "VmRSS"); err == nil {
		r.BrokerRSSMiB = float64(kib) / 1024
	}
	if kib, err := statusKiB(watch.cmd.Process.Pid, "VmRSS"); err == nil {
		r.WatchRSSMiB = float64(kib) / 1024
	}
	r.PerKind = map[string]float64{}
	per := func(v int64) float64 { return float64(v) / float64(n) / window.Seconds() }
	for k, v := range bytes1 {
		d := v - bytes0[k]
		if d == 0 {
			continue
		}
		r.PerKind[k] = per(d)
		if strings.HasPrefix(k, "up ") {
			r.UpBps += per(d)
		} else {
			r.DownBps += per(d)
		}
	}
	if c := count1["up PUBLISH telemetry"] - count0["up PUBLISH telemetry"]; c > 0 {
		r.TelemetryBytes = float64(bytes1["up PUBLISH telemetry"]-bytes0["up PUBLISH telemetry"]) / float64(c)
	}

	// One `capboxctl ls` with every box: its CPU and wall time.
	ls := exec.CommandContext(ctx, ctl("ls", "--json")[0], ctl("ls", "--json")[1:]...)
	var out, errb bytes.Buffer
	ls.Stdout, ls.Stderr = &out, &errb
	t0 := time.Now()
	if err := ls.Run(); err != nil {
		return fail(fmt.Errorf("capboxctl ls: %w: %s", err, errb.String()))
	}
	r.LsWallms = ms(time.Since(t0))
	if ru, ok := ls.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.LsCPUms = ms(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
	}
	watch.stop(syscall.SIGINT, 5*time.Second)
	r.WatchLines = countLines(watchLog, "")
	if r.UpBps == 0 {
		r.Err = "no MQTT traffic from the boxes in the window"
	}
	return r
}

// startMosquitto runs mosquitto on loopback with a password per box and
// capboxctl's ACL (each box only under its own topics), like a venue's.
func (b *bench) startMosquitto(dir string, ids []string) (addr string, stop func(), pid int, err error) {
	if _, err := os.Stat(mosquittoBin); err != nil {
		return "", nil, 0, fmt.Errorf("mosquitto not installed (make deps): %w", err)
	}
	var pw strings.Builder
	h, err := broker.HashPassword(fleetPassword)
	if err != nil {
		return "", nil, 0, err
	}
	fmt.Fprintf(&pw, "%s:%s\n", fleetUser, h)
	for _, id := range ids {
		h, err := broker.HashPassword(boxPassword(id))
		if err != nil {
			return "", nil, 0, err
		}
		fmt.Fprintf(&pw, "%s:%s\n", id, h)
	}
	db, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if err := os.WriteFile(db, []byte(pw.String()), 0o600); err != nil {
		return "", nil, 0, err
	}
	aclText, err := exec.Command(b.opt.capboxctl, "acl").Output()
	if err != nil {
		return "", nil, 0, fmt.Errorf("capboxctl acl: %w", err)
	}
	if err := os.WriteFile(acl, aclText, 0o600); err != nil {
		return "", nil, 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, 0, err
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("per_listener_settings false\nallow_anonymous false\npersistence false\npassword_file %s\nacl_file %s\n"+
		"log_dest stderr\nlog_type error\nlog_type warning\nlistener %s 127.0.0.1\n", db, acl, port)
	if os.Geteuid() == 0 {
		conf += "user root\n" // mosquitto otherwise drops to its own user, which cannot read these files
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return "", nil, 0, err
	}
	p, err := startProc("mosquitto", []string{mosquittoBin, "-c", confFile}, nil, filepath.Join(b.out, "logs", fmt.Sprintf("fleet-%d-mosquitto.log", len(ids))), false)
	if err != nil {
		return "", nil, 0, err
	}
	stop = func() { p.stop(syscall.SIGTERM, 5*time.Second) }
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 || p.exited() {
			stop()
			return "", nil, 0, errors.New("mosquitto did not start listening")
		}
		time.Sleep(25 * time.Millisecond)
	}
	return addr, stop, p.cmd.Process.Pid, nil
}

// lsRow is the part of `capboxctl ls --json` the benchmark reads.
type lsRow struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
}

// waitOnline polls `capboxctl ls` until n boxes are online.
func waitOnline(ctx context.Context, ctl func(...string) []string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := 0
	for {
		argv := ctl("ls", "--json", "--wait", "3s")
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
		var rows []lsRow
		if err == nil && json.Unmarshal(out, &rows) == nil {
			on := 0
			for _, r := range rows {
				if r.Online {
					on++
				}
			}
			if on == n {
				return nil
			}
			last = on
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d boxes online after %s", last, n, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kindsByRate lists "kind rate" pairs, largest first.
func kindsByRate(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %.1f B/s", k, m[k]))
	}
	return out
}
