package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// procTicks is every process's CPU time so far (user+system, clock ticks of 10 ms), by pid,
// with its name: what took the one emulated CPU during a row (kernel threads such as vivid's
// frame generator included).
type procTicks map[int]struct {
	comm  string
	ticks int64
}

func readProcTicks() procTicks {
	out := procTicks{}
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(s[j+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = struct {
			comm  string
			ticks int64
		}{s[i+1 : j], u + k}
	}
	return out
}

// cpuTop starts measuring which processes use the CPU; the returned function, registered
// as a cleanup once the row's programs run (so that it runs before they are stopped),
// records the top ones as a fact and all of them as artifacts/cpu-<name>.txt.
func cpuTop(t *T, name string) func() {
	before, start := readProcTicks(), time.Now()
	return func() {
		after, wall := readProcTicks(), time.Since(start)
		type use struct {
			what  string
			ticks int64
		}
		var uses []use
		for pid, a := range after {
			d := a.ticks - before[pid].ticks // a process that started meanwhile counts from zero
			if d > 0 {
				uses = append(uses, use{fmt.Sprintf("%s[%d]", a.comm, pid), d})
			}
		}
		sort.Slice(uses, func(i, j int) bool { return uses[i].ticks > uses[j].ticks })
		var b strings.Builder
		fmt.Fprintf(&b, "CPU time by process over %s of wall time\n", wall.Round(time.Second))
		var top []string
		for i, u := range uses {
			fmt.Fprintf(&b, "%8.2fs %s\n", float64(u.ticks)/100, u.what)
			if i < 6 {
				top = append(top, fmt.Sprintf("%s %.1fs", u.what, float64(u.ticks)/100))
			}
		}
		_ = os.WriteFile(filepath.Join(t.e.artifact, "cpu-"+name+".txt"), []byte(b.String()), 0o644)
		t.Fact("cpu_top", "%s (of %s)", strings.Join(top, ", "), wall.Round(time.Second))
	}
}
