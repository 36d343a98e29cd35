//go:build linux

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/broker"
)

var (
	scaleBoxes  = flag.Int("scale", 0, "TestScale: simulated boxes against mosquitto (0 skips; make test-fleet-scale runs 500)")
	scaleWindow = flag.Duration("scale.window", 30*time.Second, "TestScale: CPU measurement window")
)

// TestScale runs N simulated boxes (the real link, a fake pipeline side,
// default 10 s telemetry) against a real mosquitto with the password file
// and ACL, checks that `capboxctl ls` answers with every box in < 2 s, and
// reports the broker's and the boxes' CPU.
func TestScale(t *testing.T) {
	n := *scaleBoxes
	if n == 0 {
		t.Skip("run with -scale=500 (make test-fleet-scale)")
	}
	const mosq = "/usr/sbin/mosquitto"
	if _, err := os.Stat(mosq); err != nil {
		t.Skip("mosquitto not installed: run make deps")
	}
	dir := t.TempDir()
	ids := make([]string, n)
	var pw strings.Builder
	h, err := broker.HashPassword(fleetPassword)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&pw, "fleet:%s\n", h)
	for i := range ids {
		ids[i] = fmt.Sprintf("room-%03d", i)
		h, err := broker.HashPassword(boxPassword(ids[i]))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:%s\n", ids[i], h)
	}
	db := filepath.Join(dir, "passwd")
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(db, []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var aclText strings.Builder
	if code := run(context.Background(), []string{"acl"}, &aclText, os.Stderr); code != 0 {
		t.Fatal("acl")
	}
	if err := os.WriteFile(acl, []byte(aclText.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("per_listener_settings false\nallow_anonymous false\npersistence false\npassword_file %s\nacl_file %s\n"+
		"log_dest stderr\nlog_type error\nlistener %s 127.0.0.1\n", db, acl, port)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	startBroker := func() {
		cmd = exec.Command(mosq, "-c", confFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if i > 100 {
				t.Fatal("mosquitto did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	startBroker()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := &lab{t: t, dir: dir, url: "mqtt://" + addr, pwFile: filepath.Join(dir, "fleet.pw")}
	if err := os.WriteFile(l.pwFile, []byte(fleetPassword), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	for i, id := range ids {
		f := config.Default().Fleet
		f.Broker, f.Username, f.PasswordFile = l.url, id, filepath.Join(dir, id+".pw")
		if err := os.WriteFile(f.PasswordFile, []byte(boxPassword(id)), 0o600); err != nil {
			t.Fatal(err)
		}
		link, err := fleet.New(f, id, newSimBox(i), slog.New(slog.DiscardHandler), fleet.WithStateDir(filepath.Join(dir, "state", id)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = link.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	l.waitLs(fmt.Sprint(n, " boxes online"), func(rows []row) bool {
		on := 0
		for _, r := range rows {
			if r.Online {
				on++
			}
		}
		return on == n
	})
	t.Logf("%d boxes connected and visible in %s", n, time.Since(start).Round(time.Millisecond))

	// CPU over a window of steady state: birth storm over, telemetry every
	// 10 s per box (n/10 messages a second), state unchanged.
	time.Sleep(2 * time.Second)
	b0, s0 := procCPU(t, cmd.Process.Pid), selfCPU()
	w0 := time.Now()
	time.Sleep(*scaleWindow)
	wall := time.Since(w0)
	b1, s1 := procCPU(t, cmd.Process.Pid), selfCPU()
	brokerPct := 100 * float64(b1-b0) / float64(wall)
	boxesPct := 100 * float64(s1-s0) / float64(wall)
	t.Logf("steady state over %s: mosquitto %.2f%% of one core; %d links in this process %.2f%% (%.4f%% per box)",
		wall.Round(time.Second), brokerPct, n, boxesPct, boxesPct/float64(n))

	var worst time.Duration
	for range 3 {
		t0 := time.Now()
		code, out, errw := l.ctl("ls", "--json")
		took := time.Since(t0)
		t.Logf("ls run took %s", took)
		worst = max(worst, took)
		var rows []row
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != n {
			t.Fatalf("ls: %d, %d rows, %s", code, len(rows), errw)
		}
		complete := 0
		for _, r := range rows {
			if r.TempC != nil && r.Online && r.Mood != "" && r.OutputsTotal > 0 && r.Sess > 0 {
				complete++
			}
		}
		if complete != n {
			t.Errorf("%d of %d rows have status, state and telemetry", complete, n)
		}
	}
	t.Logf("capboxctl ls with %d boxes: slowest of 3 runs %s", n, worst.Round(time.Millisecond))
	if worst > 2*time.Second {
		t.Errorf("ls took %s, want < 2 s", worst)
	}

	// Broker restart: every box comes back (session 2) on its own jittered
	// schedule; the broker's CPU for the whole reconnect storm.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t0 := time.Now()
	startBroker()
	b0 = procCPU(t, cmd.Process.Pid)
	l.waitLs(fmt.Sprint(n, " boxes back"), func(rows []row) bool {
		back := 0
		for _, r := range rows {
			if r.Online && r.Sess == 2 {
				back++
			}
		}
		return back == n
	})
	back := time.Since(t0)
	storm := procCPU(t, cmd.Process.Pid) - b0
	t.Logf("broker restart: all %d boxes back in %s; mosquitto used %s CPU for the storm", n, back.Round(time.Millisecond), storm)
	fmt.Printf("SCALE boxes=%d ls_worst=%s mosquitto_cpu_pct=%.2f links_cpu_pct=%.2f restart_all_back=%s restart_broker_cpu=%s\n",
		n, worst.Round(time.Millisecond), brokerPct, boxesPct, back.Round(time.Millisecond), storm)
}

// procCPU is a process's user+system CPU time from /proc/PID/stat (fields
// 14 and 15, in clock ticks; USER_HZ is 100 on Linux, see proc(5)).
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
