package board

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ThermalZone is one /sys/class/thermal/thermal_zoneN.
type ThermalZone struct {
	Zone    string  `json:"zone"`    // thermal_zone0
	Type    string  `json:"type"`    // cpu-thermal (Pi), soc-thermal, x86_pkg_temp...
	Celsius float64 `json:"celsius"` // from the millidegree "temp" attribute
}

func readThermal(f fsys) ([]ThermalZone, error) {
	ents, err := f.readDir("/sys/class/thermal")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no thermal framework (VMs): nothing to report
		}
		return nil, fmt.Errorf("thermal: %w", err)
	}
	var out []ThermalZone
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "thermal_zone") {
			continue
		}
		dir := "/sys/class/thermal/" + e.Name()
		z := ThermalZone{Zone: e.Name()}
		if t, err := f.readString(dir + "/type"); err == nil {
			z.Type = t
		} else {
			errs = append(errs, fmt.Errorf("thermal %s type: %w", e.Name(), err))
		}
		milli, err := f.readInt(dir + "/temp")
		if err != nil {
			// A zone whose sensor is not ready answers EAGAIN/EINVAL: skip it.
			errs = append(errs, fmt.Errorf("thermal %s temp: %w", e.Name(), err))
			continue
		}
		z.Celsius = float64(milli) / 1000
		out = append(out, z)
	}
	return out, joinErrs(errs)
}
