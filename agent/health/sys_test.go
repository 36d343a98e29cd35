package health

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

type fixedClock struct {
	cs  ClockSync
	err error
}

func (f fixedClock) ClockSync() (ClockSync, error) { return f.cs, f.err }

func TestSysReaderFixtures(t *testing.T) {
	for _, c := range []struct {
		fixture       string
		temps         map[string]float64
		memTotal      int64
		memAvail      int64
		load1         float64
		sinceBoot     []string
		points        map[string]float64 // zone name -> throttle point
		pointFrom     string
		noThrottleAPI bool
	}{
		{fixture: "rpi4", temps: map[string]float64{"cpu-thermal": 67.5}, memTotal: 3793, memAvail: 2210, load1: 1.2,
			sinceBoot: []string{"soft_temp_limit"}, points: map[string]float64{"cpu-thermal": 80}, pointFrom: "raspberry pi firmware"},
		{fixture: "rpi5", temps: map[string]float64{"cpu-thermal": 61.25}, memTotal: 8052, memAvail: 6847, load1: 0.52,
			sinceBoot: []string{}, points: map[string]float64{"cpu-thermal": 80}, pointFrom: "raspberry pi firmware"},
		{fixture: "imx8mp", temps: map[string]float64{"cpu-thermal": 47, "soc-thermal": 46}, memTotal: 3810, memAvail: 3027, load1: 0.31,
			sinceBoot: []string{}, points: map[string]float64{"cpu-thermal": 85, "soc-thermal": 85}, pointFrom: "passive trip", noThrottleAPI: true},
		{fixture: "x86", temps: map[string]float64{"acpitz": 27.8, "x86_pkg_temp": 44}, memTotal: 15878, memAvail: 11761, load1: 0.9,
			sinceBoot: []string{}, points: map[string]float64{"acpitz": 0, "x86_pkg_temp": 0}, pointFrom: "unknown", noThrottleAPI: true},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			root := filepath.Join("testdata", c.fixture)
			r := SysReader{Root: root, Mounts: []string{"/", "/data/recordings"}, Clock: fixedClock{cs: ClockSync{Synced: true}}}
			got, err := r.ReadSys()
			if err != nil {
				t.Fatalf("ReadSys: %v", err)
			}
			s := sysHealth(got, 12.34)
			if !reflect.DeepEqual(s.TempsC, c.temps) {
				t.Errorf("temps %v want %v", s.TempsC, c.temps)
			}
			if s.MemTotalMB != c.memTotal || s.MemAvailMB != c.memAvail || s.Load1 != c.load1 || s.CPUPct != 12.3 || !s.ClockSynced {
				t.Errorf("sys %+v", s)
			}
			if !slices.Equal(s.Throttle.SinceBoot, c.sinceBoot) || s.Throttle.Now == nil || len(s.Throttle.Now) != 0 {
				t.Errorf("throttle %+v want since_boot %v", s.Throttle, c.sinceBoot)
			}
			if (got.Health.Throttle == nil) != c.noThrottleAPI {
				t.Errorf("throttle interface present=%v", got.Health.Throttle != nil)
			}
			// Both disks, under the names asked for; the recording folder
			// does not exist in the tree and is measured at "/".
			if len(s.Disks) != 2 || s.Disks[0].Mount != "/" || s.Disks[1].Mount != "/data/recordings" ||
				s.Disks[0].TotalMB <= 0 || s.Disks[1].TotalMB != s.Disks[0].TotalMB {
				t.Errorf("disks %+v", s.Disks)
			}
			in := thermalInput(got)
			if len(in.Zones) != len(c.points) {
				t.Fatalf("zones %+v", in.Zones)
			}
			for _, z := range in.Zones {
				if want, ok := c.points[z.Name]; !ok || z.PointC != want || z.PointFrom != c.pointFrom {
					t.Errorf("zone %+v want point %v from %q", z, want, c.pointFrom)
				}
			}
			if in.Firmware != "" {
				t.Errorf("firmware %q on a cool fixture", in.Firmware)
			}
		})
	}
}

// copyTree copies a fixture so a test can change files in it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, root, p, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, p), []byte(s+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestThermalInputFirmwareFlags(t *testing.T) {
	const gt = "sys/devices/platform/soc/soc:firmware/get_throttled"
	for _, c := range []struct {
		raw, want string
	}{
		{"0", ""},
		{"80000", ""},                // soft limit since boot only
		{"8", "soft_temp_limit"},     // bit 3 now
		{"4", "throttled"},           // bit 2 now
		{"2", "arm_freq_capped"},     // bit 1 now
		{"50005", ""},                // throttled by under-voltage: not thermal
		{"5000d", "soft_temp_limit"}, // under-voltage and the soft limit
	} {
		root := copyTree(t, "testdata/rpi4")
		writeFile(t, root, gt, c.raw)
		got, err := SysReader{Root: root}.ReadSys()
		if err != nil {
			t.Fatal(err)
		}
		if in := thermalInput(got); in.Firmware != c.want {
			t.Errorf("get_throttled %s: firmware %q want %q", c.raw, in.Firmware, c.want)
		}
	}
}

func TestSysReaderPartial(t *testing.T) {
	root := copyTree(t, "testdata/imx8mp")
	writeFile(t, root, "sys/devices/virtual/thermal/thermal_zone1/trip_point_0_temp", "hot")
	if err := os.Remove(filepath.Join(root, "proc/loadavg")); err != nil {
		t.Fatal(err)
	}
	clockErr := errors.New("adjtimex: operation not permitted")
	got, err := SysReader{Root: root, Clock: fixedClock{err: clockErr}}.ReadSys()
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, clockErr) {
		t.Fatalf("want the loadavg, trip and clock errors joined, got %v", err)
	}
	// Everything else is still there; zone1 lost the broken trip only.
	if len(got.Health.Thermal) != 2 || got.Health.MemTotal == 0 || len(got.Trips["thermal_zone0"]) != 2 || len(got.Trips["thermal_zone1"]) != 1 {
		t.Fatalf("partial reading %+v trips %+v", got.Health, got.Trips)
	}
}

func TestThrottlePoint(t *testing.T) {
	for _, c := range []struct {
		trips []Trip
		pi    float64
		want  float64
		from  string
	}{
		{[]Trip{{Type: "critical", TempC: 95}, {Type: "passive", TempC: 85}, {Type: "passive", TempC: 75}}, 0, 75, "passive trip"},
		{[]Trip{{Type: "critical", TempC: 110}, {Type: "hot", TempC: 95}, {Type: "active", TempC: 50}}, 80, 95, "hot trip"},
		{[]Trip{{Type: "critical", TempC: 90}}, 80, 80, "raspberry pi firmware"},
		{[]Trip{{Type: "passive", TempC: 0}, {Type: "passive", TempC: -274}}, 0, 0, "unknown"},
		{nil, 0, 0, "unknown"},
	} {
		got, from := ThrottlePointC(c.trips, c.pi)
		if got != c.want || from != c.from {
			t.Errorf("%+v pi=%v: %v %q want %v %q", c.trips, c.pi, got, from, c.want, c.from)
		}
	}
}

func TestClockSyncFromTimex(t *testing.T) {
	for _, c := range []struct {
		name   string
		state  int
		status int32
		maxerr int64
		want   bool
	}{
		{"chrony synced", unix.TIME_OK, 0x2001, 120_000, true}, // STA_PLL|STA_NANO
		{"no daemon since boot", unix.TIME_ERROR, unix.STA_UNSYNC, 16_000_000, false},
		{"unsync bit but state ok", unix.TIME_OK, unix.STA_UNSYNC, 1000, false},
		{"maxerror past the phase limit", unix.TIME_OK, 0, 16_000_000, false},
		{"leap second pending", unix.TIME_INS, 0x11, 5000, true},
	} {
		tx := unix.Timex{Status: c.status}
		reflect.ValueOf(&tx.Maxerror).Elem().SetInt(c.maxerr) // int32 on 32-bit arm
		if got := ClockSyncFromTimex(c.state, &tx); got.Synced != c.want || got.MaxErrorUS != c.maxerr {
			t.Errorf("%s: %+v want synced=%v", c.name, got, c.want)
		}
	}
}

func TestKernelClockLive(t *testing.T) {
	cs, err := KernelClock{}.ClockSync()
	if err != nil {
		t.Fatalf("adjtimex read: %v", err)
	}
	if cs.State < unix.TIME_OK || cs.State > unix.TIME_ERROR {
		t.Fatalf("state %d", cs.State)
	}
	t.Logf("this machine: %+v", cs)
}

func TestLiveSys(t *testing.T) {
	r := LiveSys(t.TempDir() + "/not-yet/recordings")
	if len(r.Mounts) != 2 || r.Mounts[1] != "/" {
		t.Fatalf("mounts %v", r.Mounts)
	}
	got, err := r.ReadSys()
	// A VM may lack thermal zones or a readable hwmon; the disks, memory
	// and CPU of this machine must be there.
	if len(got.Health.Disks) != 2 || got.Health.Disks[0].Path != r.Mounts[0] || got.Health.MemTotal == 0 || got.Health.CPU.Total() == 0 {
		t.Fatalf("live reading %+v (err %v)", got.Health, err)
	}
}
