package main

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

var nan = math.NaN()

// Machine is where and when the figures were taken.
type Machine struct {
	Date   string            `json:"date"`
	CPU    string            `json:"cpu"`
	Cores  int               `json:"cores"`
	MemMiB int64             `json:"mem_mib"`
	Kernel string            `json:"kernel"`
	OS     string            `json:"os"`
	Commit string            `json:"commit"`
	Tools  map[string]string `json:"tools"`
	// Load averages (1, 5, 15 min) at the start and the end: the other
	// work sharing the machine.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

func describeMachine(capboxdBin string) Machine {
	m := Machine{Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(), LoadStart: loadavg()}
	m.CPU = firstMatch("/proc/cpuinfo", "model name")
	if v := firstMatch("/proc/meminfo", "MemTotal"); v != "" {
		kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		m.MemMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = strings.Trim(firstMatch("/etc/os-release", "PRETTY_NAME"), `"`)
	m.Commit = firstLine("git", "describe", "--always", "--dirty")
	m.Tools = map[string]string{
		"capboxd":        firstLine(capboxdBin, "version"),
		"gst-launch-1.0": lineWith("GStreamer", "gst-launch-1.0", "--version"),
		"ffmpeg":         firstLine("ffmpeg", "-hide_banner", "-version"),
		"mosquitto":      firstLine(mosquittoBin, "-h"),
		"go":             runtime.Version(),
	}
	return m
}

// firstMatch is the value of the first "key: value" or "key=value" line.
func firstMatch(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		rest := strings.TrimSpace(line[len(key):])
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, ":"), "=")
		return strings.TrimSpace(rest)
	}
	return ""
}

func firstLine(name string, args ...string) string {
	return lineWith("", name, args...)
}

// lineWith runs a command and returns its first output line containing sub.
func lineWith(sub, name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// load1 is the 1-minute load average now (0 when unreadable).
func load1() float64 {
	f := strings.Fields(loadavg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
