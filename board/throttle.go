package board

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Throttle is the Raspberry Pi firmware's power and thermal state.
type Throttle struct {
	// Source is where it came from: "get_throttled" (the firmware
	// interface, all bits), "rpi_volt" (hwmon, under-voltage only) or both.
	Source string         `json:"source"`
	Raw    uint32         `json:"raw,omitempty"` // get_throttled bits
	Flags  []ThrottleFlag `json:"flags"`
}

// ThrottleFlag is one condition, now and since boot.
type ThrottleFlag struct {
	Name      string `json:"name"` // under_voltage, freq_capped, throttled, soft_temp_limit
	Now       bool   `json:"now"`
	SinceBoot bool   `json:"since_boot"`
}

// Active reports whether a flag is set now.
func (t *Throttle) Active(name string) bool {
	if t == nil {
		return false
	}
	for _, f := range t.Flags {
		if f.Name == name {
			return f.Now
		}
	}
	return false
}

// throttleBits are get_throttled bits 0-3 ("now"); bits 16-19 are the same
// conditions "has occurred since boot" (HARDWARE.md section 7).
var throttleBits = []string{"under_voltage", "freq_capped", "throttled", "soft_temp_limit"}

// getThrottledPath is the deprecated firmware sysfs file; still present on
// Raspberry Pi OS kernels.
const getThrottledPath = "/sys/devices/platform/soc/soc:firmware/get_throttled"

// readThrottle returns nil (and no error) on boards without either source.
func readThrottle(f fsys) (*Throttle, error) {
	var errs []error
	var t *Throttle
	if s, err := f.readString(getThrottledPath); err == nil {
		v, perr := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
		if perr != nil {
			errs = append(errs, fmt.Errorf("get_throttled %q: %w", s, perr))
		} else {
			t = &Throttle{Source: "get_throttled", Raw: uint32(v)}
			for i, name := range throttleBits {
				t.Flags = append(t.Flags, ThrottleFlag{Name: name, Now: v&(1<<i) != 0, SinceBoot: v&(1<<(16+i)) != 0})
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("get_throttled: %w", err))
	}

	alarm, found, err := rpiVoltAlarm(f)
	if err != nil {
		errs = append(errs, err)
	}
	if found {
		if t == nil {
			t = &Throttle{Source: "rpi_volt", Flags: []ThrottleFlag{{Name: "under_voltage"}}}
		} else {
			t.Source += "+rpi_volt"
		}
		if alarm {
			// The hwmon alarm is the current state; it also proves the
			// condition happened since boot.
			t.Flags[0].Now, t.Flags[0].SinceBoot = true, true
		}
	}
	return t, joinErrs(errs)
}

// rpiVoltAlarm reads in0_lcrit_alarm of the hwmon device named rpi_volt
// (drivers/hwmon/raspberrypi-hwmon.c).
func rpiVoltAlarm(f fsys) (alarm, found bool, err error) {
	ents, err := f.readDir("/sys/class/hwmon")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("hwmon: %w", err)
	}
	for _, e := range ents {
		dir := "/sys/class/hwmon/" + e.Name()
		if name, _ := f.readString(dir + "/name"); name != "rpi_volt" {
			continue
		}
		v, err := f.readInt(dir + "/in0_lcrit_alarm")
		if err != nil {
			return false, true, fmt.Errorf("rpi_volt in0_lcrit_alarm: %w", err)
		}
		return v != 0, true, nil
	}
	return false, false, nil
}
