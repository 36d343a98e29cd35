package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// timeBin is GNU time (Debian package "time"); its -v report is the
// measurement of record for CPU and peak RSS.
const timeBin = "/usr/bin/time"

// userHZ is the unit of /proc/PID/stat's CPU fields: USER_HZ is 100 on
// Linux (proc(5), sysconf(_SC_CLK_TCK)).
const userHZ = 100

// proc is a process started in its own process group, so that a signal
// reaches it and everything it started (gst-launch's plugin scanner, the
// wrapper loop's child).
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	started time.Time
	done    chan struct{}
	waitErr error
	// timeFile is time -v's report when the process runs under it.
	timeFile string
}

// startProc starts argv with stdout and stderr into logPath. With timed,
// it runs under `time -v -o logPath.time`; time ignores SIGINT while it
// waits, so the signal reaches only the measured program.
func startProc(name string, argv []string, env []string, logPath string, timed bool) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, log: logf, done: make(chan struct{})}
	if timed {
		p.timeFile = logPath + ".time"
		argv = append([]string{timeBin, "-v", "-o", p.timeFile}, argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// signalGroup sends sig to the process group.
func (p *proc) signalGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// stop sends sig to the group, waits up to grace for the process to end,
// then kills the group.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	p.signalGroup(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.signalGroup(syscall.SIGKILL)
		<-p.done
	}
	// Anything the process left behind in its group goes too.
	p.signalGroup(syscall.SIGKILL)
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// usage reads time -v's report once the process has ended.
func (p *proc) usage() (Usage, error) {
	<-p.done
	if p.timeFile == "" {
		return Usage{}, errors.New("not run under time -v")
	}
	b, err := os.ReadFile(p.timeFile)
	if err != nil {
		return Usage{}, err
	}
	u, err := parseTimeV(strings.NewReader(string(b)))
	u.Signal = parseTimeVSignal(string(b))
	return u, err
}

// measuredPID is the measured program's pid: time's child when timed.
func (p *proc) measuredPID() (int, error) {
	pid := p.cmd.Process.Pid
	if p.timeFile == "" {
		return pid, nil
	}
	for range 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			return 0, err
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			return strconv.Atoi(f[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: time -v has no child", p.name)
}

// statCPU parses user+system CPU out of a /proc/PID/stat or
// /proc/PID/task/TID/stat line (fields 14 and 15, proc(5)); the comm
// field may hold spaces and parentheses, so fields count from the last ')'.
func statCPU(line string) (comm string, cpu time.Duration, err error) {
	open, closeAt := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || closeAt < open {
		return "", 0, fmt.Errorf("stat line without (comm): %q", line)
	}
	comm = line[open+1 : closeAt]
	f := strings.Fields(line[closeAt+1:])
	if len(f) < 13 {
		return comm, 0, fmt.Errorf("stat line with %d fields after comm", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return comm, 0, err
	}
	return comm, time.Duration(ut+st) * time.Second / userHZ, nil
}

// procCPU is a live process's CPU time so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, cpu, err := statCPU(string(b))
	return cpu, err
}

// threadCPU sums CPU time by thread name (comm: GStreamer names its
// streaming threads after the element, e.g. "x264enc0:src"; Go's threads
// carry the program's name). Threads that already ended are not counted.
func threadCPU(pid int) (map[string]time.Duration, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	var errs []error
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // the thread ended meanwhile
		}
		comm, cpu, err := statCPU(string(b))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[comm] += cpu
	}
	return out, errors.Join(errs...)
}

// threadDelta is b - a by thread name, in seconds, dropping threads that
// used less than 0.1% of the window.
func threadDelta(a, b map[string]time.Duration, window time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		d := v - a[k]
		// 0.1 % is small enough to show the agent's own threads (the Go
		// runtime, an output's appsrc), which are what an overhead is.
		if d > 0 && float64(d) > 0.001*float64(window) {
			out[k] = d.Seconds()
		}
	}
	return out
}

// statusKiB reads one "Name:   123 kB" line of /proc/PID/status.
func statusKiB(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// topThreads lists the n busiest thread names, "name 1.23 s" each.
func topThreads(m map[string]float64, n int) []string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var out []string
	for i, e := range all {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%s %.2f s", e.k, e.v))
	}
	return out
}
