package board

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadHealthPi(t *testing.T) {
	h, err := ReadHealth(filepath.Join("testdata", "rpi4-tc358743"))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Thermal) != 1 || h.Thermal[0].Type != "cpu-thermal" || h.Thermal[0].Celsius != 52.582 {
		t.Errorf("thermal %+v", h.Thermal)
	}
	th := h.Throttle
	if th == nil || th.Source != "get_throttled+rpi_volt" || th.Raw != 0x50005 {
		t.Fatalf("throttle %+v", th)
	}
	want := map[string][2]bool{"under_voltage": {true, true}, "freq_capped": {false, false}, "throttled": {true, true}, "soft_temp_limit": {false, false}}
	for _, f := range th.Flags {
		if w := want[f.Name]; f.Now != w[0] || f.SinceBoot != w[1] {
			t.Errorf("%s: now %v since boot %v", f.Name, f.Now, f.SinceBoot)
		}
	}
	if !th.Active("under_voltage") || th.Active("freq_capped") {
		t.Error("Active")
	}
	if h.CPU.User != 184356 || h.CPU.Idle != 3612877 || h.CPU.SoftIRQ != 5733 {
		t.Errorf("cpu %+v", h.CPU)
	}
	if h.Load1 != 0.42 || h.Load15 != 0.31 {
		t.Errorf("load %v %v", h.Load1, h.Load15)
	}
	if h.MemTotal != 3885308*1024 || h.MemAvailable != 3295520*1024 {
		t.Errorf("mem %d %d", h.MemTotal, h.MemAvailable)
	}
}

// writeTree writes files (system path -> content) under a new root.
func writeTree(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for p, c := range files {
		h := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadHealthPartial(t *testing.T) {
	root := writeTree(t, map[string]string{
		"/sys/class/thermal/thermal_zone0/type":   "soc-thermal\n",
		"/sys/class/thermal/thermal_zone0/temp":   "-1500\n",
		"/sys/class/thermal/thermal_zone1/type":   "broken\n",
		"/sys/class/thermal/thermal_zone1/temp":   "n/a\n",
		"/sys/class/hwmon/hwmon0/name":            "rpi_volt\n",
		"/sys/class/hwmon/hwmon0/in0_lcrit_alarm": "0\n",
		"/proc/stat":    "cpu  10 0 x 30 0 0 0 0\n",
		"/proc/meminfo": "MemTotal: 1000 kB\n",
		// no /proc/loadavg
	})
	h, err := ReadHealth(root, "/", "/missing")
	if err == nil {
		t.Fatal("errors expected")
	}
	if len(h.Thermal) != 1 || h.Thermal[0].Celsius != -1.5 {
		t.Errorf("the good zone survives the bad one: %+v", h.Thermal)
	}
	if h.Throttle == nil || h.Throttle.Source != "rpi_volt" || h.Throttle.Active("under_voltage") {
		t.Errorf("hwmon only: %+v", h.Throttle)
	}
	if h.CPU.User != 10 || h.CPU.Idle != 30 || h.CPU.System != 0 {
		t.Errorf("cpu keeps the columns it could parse: %+v", h.CPU)
	}
	if h.MemTotal != 1024000 || h.MemAvailable != 0 {
		t.Errorf("mem %d/%d", h.MemTotal, h.MemAvailable)
	}
	if len(h.Disks) != 1 || h.Disks[0].Path != "/" || h.Disks[0].Total == 0 || h.Disks[0].Avail > h.Disks[0].Total {
		t.Errorf("disks %+v", h.Disks)
	}
	for _, want := range []string{"thermal_zone1 temp", "cpu column 3", "no MemAvailable", "loadavg", "statfs /missing"} {
		if !containsErr(err, want) {
			t.Errorf("joined error lacks %q: %v", want, err)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing files keep their cause: %v", err)
	}
}

func containsErr(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func TestReadHealthNoThrottleOffPi(t *testing.T) {
	h, err := ReadHealth(filepath.Join("testdata", "x86-camlink"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Throttle != nil || len(h.Thermal) != 2 {
		t.Errorf("%+v", h)
	}
}

func TestCPUPercent(t *testing.T) {
	a := CPUTimes{User: 100, System: 50, Idle: 800, IOWait: 50}
	b := CPUTimes{User: 160, System: 90, Idle: 880, IOWait: 70}
	// busy +100 of total +200
	if got := CPUPercent(a, b); got != 50 {
		t.Errorf("got %v", got)
	}
	if CPUPercent(b, a) != 0 || CPUPercent(a, a) != 0 {
		t.Error("backwards or equal readings give 0")
	}
}

func TestSerial(t *testing.T) {
	for name, c := range map[string]struct {
		files map[string]string
		want  string
	}{
		"pi":         {map[string]string{"/sys/firmware/devicetree/base/serial-number": "10000000C0FFEE01\x00", "/etc/machine-id": "ab\n"}, "10000000c0ffee01"},
		"zeros":      {map[string]string{"/sys/firmware/devicetree/base/serial-number": "0000000000000000\x00", "/etc/machine-id": "0123456789abcdef0123456789abcdef\n"}, "0123456789abcdef0123456789abcdef"},
		"machine-id": {map[string]string{"/etc/machine-id": "0123456789abcdef0123456789abcdef\n"}, "0123456789abcdef0123456789abcdef"},
	} {
		got, err := Serial(writeTree(t, c.files))
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if _, err := Serial(t.TempDir()); !errors.Is(err, ErrNoSerial) {
		t.Errorf("nothing: %v", err)
	}
	if s, err := Serial(filepath.Join("testdata", "rpi4-tc358743")); err != nil || s != "10000000c0ffee01" {
		t.Errorf("fixture: %q %v", s, err)
	}
}
