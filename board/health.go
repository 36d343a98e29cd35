package board

// Health is one reading of the box's vital signs. Each collector reads its
// own files and parses each attribute separately: a missing or odd file
// costs only that value, reported in the joined error.
type Health struct {
	Thermal  []ThermalZone `json:"thermal,omitempty"`
	Throttle *Throttle     `json:"throttle,omitempty"`
	// CPU is the cumulative time from /proc/stat; compute a percentage
	// from two readings with CPUPercent.
	CPU    CPUTimes `json:"cpu"`
	Load1  float64  `json:"load1"`
	Load5  float64  `json:"load5"`
	Load15 float64  `json:"load15"`
	// Memory in bytes (/proc/meminfo MemTotal, MemAvailable).
	MemTotal     uint64 `json:"mem_total"`
	MemAvailable uint64 `json:"mem_available"`
	Disks        []Disk `json:"disks,omitempty"`
}

// ReadHealth reads every collector under root ("" or "/" is the live
// system), plus statfs of the given mount points. It returns what it could
// read and the joined errors of what it could not.
func ReadHealth(root string, mounts ...string) (Health, error) {
	return readHealth(newFsys(root), mounts)
}

func readHealth(f fsys, mounts []string) (Health, error) {
	var h Health
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	h.Thermal, err = readThermal(f)
	add(err)
	h.Throttle, err = readThrottle(f)
	add(err)
	h.CPU, err = readCPU(f)
	add(err)
	h.Load1, h.Load5, h.Load15, err = readLoad(f)
	add(err)
	h.MemTotal, h.MemAvailable, err = readMem(f)
	add(err)
	if len(mounts) > 0 {
		h.Disks, err = readDisks(f, mounts)
		add(err)
	}
	return h, joinErrs(errs)
}
