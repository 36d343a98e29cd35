package board

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// CPUTimes is the aggregate "cpu" line of /proc/stat, in USER_HZ ticks
// (proc(5)). Guest time is already counted in user/nice.
type CPUTimes struct {
	User    uint64 `json:"user"`
	Nice    uint64 `json:"nice"`
	System  uint64 `json:"system"`
	Idle    uint64 `json:"idle"`
	IOWait  uint64 `json:"iowait"`
	IRQ     uint64 `json:"irq"`
	SoftIRQ uint64 `json:"softirq"`
	Steal   uint64 `json:"steal"`
}

// Total is every tick counted.
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// Busy is every tick not idle or waiting for I/O.
func (c CPUTimes) Busy() uint64 { return c.Total() - c.Idle - c.IOWait }

// CPUPercent is the busy share between two readings, 0-100 (all cores
// together). A counter that went backwards (reboot) gives 0.
func CPUPercent(prev, cur CPUTimes) float64 {
	if cur.Total() <= prev.Total() || cur.Busy() < prev.Busy() {
		return 0
	}
	return 100 * float64(cur.Busy()-prev.Busy()) / float64(cur.Total()-prev.Total())
}

func readCPU(f fsys) (CPUTimes, error) {
	var c CPUTimes
	b, err := f.readFile("/proc/stat")
	if err != nil {
		return c, fmt.Errorf("cpu: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		dst := []*uint64{&c.User, &c.Nice, &c.System, &c.Idle, &c.IOWait, &c.IRQ, &c.SoftIRQ, &c.Steal}
		var errs []error
		for i, p := range dst {
			if i+1 >= len(fields) {
				break // old kernels have fewer columns
			}
			v, err := strconv.ParseUint(fields[i+1], 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("cpu column %d: %w", i+1, err))
				continue
			}
			*p = v
		}
		return c, joinErrs(errs)
	}
	return c, fmt.Errorf("cpu: no aggregate cpu line in /proc/stat")
}
