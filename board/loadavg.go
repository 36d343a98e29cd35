package board

import (
	"fmt"
	"strconv"
	"strings"
)

// readLoad parses /proc/loadavg: "0.52 0.58 0.59 2/345 12345".
func readLoad(f fsys) (l1, l5, l15 float64, err error) {
	s, err := f.readString("/proc/loadavg")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("loadavg: %w", err)
	}
	fields := strings.Fields(s)
	if len(fields) < 3 {
		return 0, 0, 0, fmt.Errorf("loadavg: %q", s)
	}
	var errs []error
	out := []*float64{&l1, &l5, &l15}
	for i, p := range out {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("loadavg field %d: %w", i+1, err))
			continue
		}
		*p = v
	}
	return l1, l5, l15, joinErrs(errs)
}
