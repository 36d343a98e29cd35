package health

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

	"capbox/agent/fleet/wire"
	"capbox/board"
)

// SysReading is one raw reading of the machine.
type SysReading struct {
	Health board.Health
	// Trips are the trip points by zone directory name (thermal_zone0).
	Trips map[string][]Trip
	Clock ClockSync
}

// SysSource reads the machine; tests give fixture trees.
type SysSource interface {
	ReadSys() (SysReading, error)
}

// SysReader reads a system root ("/" live, a fixture tree in tests) with
// board.ReadHealth, the thermal trip points and the clock.
type SysReader struct {
	// Root is the system root.
	Root string
	// Mounts are the paths whose file systems are reported (the recording
	// folder and "/"); a path that does not exist yet is measured at its
	// nearest existing parent, and reported under its own name.
	Mounts []string
	// Clock is asked about time sync; nil reports unsynced.
	Clock ClockSource
}

// ReadSys implements SysSource.
func (r SysReader) ReadSys() (SysReading, error) {
	var out SysReading
	var errs []error
	rt, err := openRoot(r.Root)
	if err != nil {
		return out, fmt.Errorf("system root: %w", err)
	}
	defer rt.Close()
	fsys := rt.FS()

	measured := make([]string, len(r.Mounts))
	for i, m := range r.Mounts {
		measured[i] = existingParent(fsys, m)
	}
	out.Health, err = board.ReadHealth(r.Root, measured...)
	if err != nil {
		errs = append(errs, err)
	}
	// Give each disk the name it was asked under.
	for i := range out.Health.Disks {
		for j, m := range measured {
			if out.Health.Disks[i].Path == m {
				out.Health.Disks[i].Path = r.Mounts[j]
				measured[j] = "\x00" // each request once
				break
			}
		}
	}
	out.Trips, err = readTrips(fsys)
	if err != nil {
		errs = append(errs, err)
	}
	if r.Clock != nil {
		out.Clock, err = r.Clock.ClockSync()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// existingParent walks up from p to a path that exists under the root.
func existingParent(fsys fs.FS, p string) string {
	p = path.Clean("/" + filepath.ToSlash(p))
	for p != "/" {
		if _, err := fs.Stat(fsys, p[1:]); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return p
		}
		p = path.Dir(p)
	}
	return p
}

// MiB is what the protocol's *_mb fields count.
const MiB = 1 << 20

// throttleNames maps board's flag names to PROTOCOL.md's (get_throttled
// bits 0-3).
var throttleNames = map[string]string{
	"under_voltage":   "under_voltage",
	"freq_capped":     "arm_freq_capped",
	"throttled":       "throttled",
	"soft_temp_limit": "soft_temp_limit",
}

// sysHealth maps a reading into the protocol's section; cpuPct comes from
// two readings and is the caller's.
func sysHealth(r SysReading, cpuPct float64) wire.SysHealth {
	h := r.Health
	s := wire.SysHealth{
		CPUPct:      finite(cpuPct, 1),
		Load1:       h.Load1,
		MemTotalMB:  int64(h.MemTotal / MiB),
		MemAvailMB:  int64(h.MemAvailable / MiB),
		ClockSynced: r.Clock.Synced,
		Throttle:    wire.Throttle{Now: []string{}, SinceBoot: []string{}},
	}
	for _, d := range h.Disks {
		s.Disks = append(s.Disks, wire.Disk{Mount: d.Path, TotalMB: int64(d.Total / MiB), FreeMB: int64(d.Avail / MiB)})
	}
	for _, z := range zoneNames(h.Thermal) {
		if s.TempsC == nil {
			s.TempsC = map[string]float64{}
		}
		s.TempsC[z.name] = z.celsius
	}
	if h.Throttle != nil {
		for _, f := range h.Throttle.Flags {
			name := throttleNames[f.Name]
			if name == "" {
				name = f.Name
			}
			if f.Now {
				s.Throttle.Now = append(s.Throttle.Now, name)
			}
			if f.SinceBoot {
				s.Throttle.SinceBoot = append(s.Throttle.SinceBoot, name)
			}
		}
	}
	return s
}

type namedZone struct {
	zone, typ, name string
	celsius         float64
}

// zoneNames keys temperatures by zone type (cpu-thermal), as PROTOCOL.md
// shows; a second zone of the same type gets its zone name appended, and a
// zone without a type is named by its directory.
func zoneNames(zs []board.ThermalZone) []namedZone {
	seen := map[string]bool{}
	var out []namedZone
	for _, z := range zs {
		name := z.Type
		if name == "" {
			name = z.Zone
		}
		if seen[name] {
			name += "/" + z.Zone
		}
		seen[name] = true
		out = append(out, namedZone{zone: z.Zone, typ: z.Type, name: name, celsius: z.Celsius})
	}
	return out
}
