package health

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Trip is one trip point of a thermal zone
// (/sys/class/thermal/thermal_zoneN/trip_point_K_{type,temp,hyst};
// drivers/thermal/thermal_sysfs.c).
type Trip struct {
	// Type is "active" (fan), "passive" (the kernel starts cooling by
	// slowing the CPU), "hot" (notify) or "critical" (shut down).
	Type  string  `json:"type"`
	TempC float64 `json:"temp_c"`
	HystC float64 `json:"hyst_c"`
}

// Zone is one thermal zone with its trip points.
type Zone struct {
	Zone  string  `json:"zone"` // thermal_zone0
	Type  string  `json:"type"` // cpu-thermal
	TempC float64 `json:"temp_c"`
	Trips []Trip  `json:"trips,omitempty"`
}

// openRoot opens the system root ("" is "/"). os.Root keeps every path,
// symlinks included, inside it, so a fixture cannot reach the host.
func openRoot(root string) (*os.Root, error) {
	if root == "" {
		root = "/"
	}
	return os.OpenRoot(root)
}

// readAttr reads one sysfs attribute, trimmed.
func readAttr(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, strings.TrimPrefix(name, "/"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readTrips reads the trip points of every thermal zone. A zone without
// trips (or a VM without the thermal class) gives no entry and no error.
func readTrips(fsys fs.FS) (map[string][]Trip, error) {
	const class = "sys/class/thermal"
	ents, err := fs.ReadDir(fsys, class)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("thermal trips: %w", err)
	}
	out := map[string][]Trip{}
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "thermal_zone") {
			continue
		}
		dir := path.Join(class, e.Name())
		files, err := fs.ReadDir(fsys, dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("thermal %s: %w", e.Name(), err))
			continue
		}
		var idx []int
		for _, f := range files {
			n, ok := strings.CutPrefix(f.Name(), "trip_point_")
			if !ok {
				continue
			}
			n, ok = strings.CutSuffix(n, "_type")
			if !ok {
				continue
			}
			if k, err := strconv.Atoi(n); err == nil {
				idx = append(idx, k)
			}
		}
		sort.Ints(idx)
		for _, k := range idx {
			t, err := readTrip(fsys, dir, k)
			if err != nil {
				errs = append(errs, fmt.Errorf("thermal %s: %w", e.Name(), err))
				continue
			}
			out[e.Name()] = append(out[e.Name()], t)
		}
	}
	return out, errors.Join(errs...)
}

func readTrip(fsys fs.FS, dir string, k int) (Trip, error) {
	var t Trip
	base := fmt.Sprintf("%s/trip_point_%d_", dir, k)
	typ, err := readAttr(fsys, base+"type")
	if err != nil {
		return t, fmt.Errorf("trip %d type: %w", k, err)
	}
	t.Type = typ
	milli, err := readMilli(fsys, base+"temp")
	if err != nil {
		return t, fmt.Errorf("trip %d temp: %w", k, err)
	}
	t.TempC = milli
	// hyst is absent on zones whose driver cannot set it; 0 then.
	if h, err := readMilli(fsys, base+"hyst"); err == nil {
		t.HystC = h
	}
	return t, nil
}

// readMilli reads a millidegree attribute as degrees Celsius.
func readMilli(fsys fs.FS, name string) (float64, error) {
	s, err := readAttr(fsys, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return float64(v) / 1000, nil
}

// ThrottlePointC is where a zone starts being slowed down, and how that was
// decided:
//   - the lowest passive trip (the kernel's own CPU cooling starts there;
//     i.MX, Rockchip and most device-tree SoCs declare one), else
//   - the lowest hot trip, else
//   - piFirmwareC when the Raspberry Pi firmware throttle interface exists:
//     the Pi's device tree has only a critical trip (bcm283x.dtsi 90 C,
//     bcm2712.dtsi 110 C) because the firmware, not Linux, throttles, and
//     raspberrypi.com documents that it starts at 80 C (limit 85 C), else
//   - 0: unknown (x86 boards usually declare no passive trip; the CPU
//     throttles itself at TjMax, which the thermal class does not show).
//
// Trips at or below 0 C are unset (x86_pkg_temp's passive trips read 0
// until user space writes them; THERMAL_TEMP_INVALID is -274 C).
func ThrottlePointC(trips []Trip, piFirmwareC float64) (float64, string) {
	for _, typ := range []string{"passive", "hot"} {
		best := 0.0
		for _, t := range trips {
			if t.Type == typ && t.TempC > 0 && (best == 0 || t.TempC < best) {
				best = t.TempC
			}
		}
		if best > 0 {
			return best, typ + " trip"
		}
	}
	if piFirmwareC > 0 {
		return piFirmwareC, "raspberry pi firmware"
	}
	return 0, "unknown"
}
