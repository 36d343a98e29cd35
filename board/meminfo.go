package board

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// readMem returns MemTotal and MemAvailable from /proc/meminfo in bytes
// (the file says "kB", meaning KiB).
func readMem(f fsys) (total, avail uint64, err error) {
	b, err := f.readFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("meminfo: %w", err)
	}
	want := map[string]*uint64{"MemTotal": &total, "MemAvailable": &avail}
	seen := map[string]bool{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		p, wanted := want[k]
		if !ok || !wanted {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			errs = append(errs, fmt.Errorf("meminfo %s: empty", k))
			continue
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("meminfo %s: %w", k, err))
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			v *= 1024
		}
		*p, seen[k] = v, true
	}
	for k := range want {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("meminfo: no %s", k))
		}
	}
	return total, avail, joinErrs(errs)
}
