package health

import (
	"slices"
	"testing"

	"capbox/agent/fleet/wire"
)

func base() wire.Telemetry {
	return wire.Telemetry{
		Sys: wire.SysHealth{CPUPct: 10, ClockSynced: true, Throttle: wire.Throttle{Now: []string{}, SinceBoot: []string{}},
			TempsC: map[string]float64{"cpu-thermal": 50}},
		Net:       []wire.NetIf{{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000, Addrs: []string{"192.0.2.10/24"}, RxBytes: 1}},
		Capture:   &wire.CaptureHealth{Device: "/dev/video0", Signal: true, Width: 1920, Height: 1080, FPS: 59.94, Frames: 1},
		Audio:     &wire.AudioHealth{Device: "hw:CARD=tc358743", RMSDBFS: -20},
		Encoder:   &wire.EncoderHealth{Element: "v4l2h264enc", Hardware: true, ZeroCopy: true, Frames: 1},
		Outputs:   []wire.OutputHealth{{Name: "primary", Proto: "srt", State: "up", Bytes: 1}, {Name: "yt", Proto: "rtmps", State: "connecting"}},
		Recording: &wire.RecordingHealth{Path: "/data/recordings", Segments: 1},
	}
}

func TestChangedIgnoresCounters(t *testing.T) {
	a, b := base(), base()
	b.UptimeS, b.TS = 99, 99
	b.Sys.CPUPct, b.Sys.TempsC = 90, map[string]float64{"cpu-thermal": 79}
	b.Net = []wire.NetIf{{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000, Addrs: []string{"192.0.2.10/24"}, RxBytes: 1 << 40}}
	b.Capture = &wire.CaptureHealth{Device: "/dev/video0", Signal: true, Width: 1920, Height: 1080, FPS: 59.94, Frames: 1 << 30, Dropped: 7}
	b.Audio = &wire.AudioHealth{Device: "hw:CARD=tc358743", RMSDBFS: -50, PeakDBFS: -3}
	b.Outputs = []wire.OutputHealth{{Name: "primary", Proto: "srt", State: "up", Bytes: 1 << 33, RTTMs: 80}, {Name: "yt", Proto: "rtmps", State: "connecting", Reconnects: 9}}
	if cs := Changed(a, b); len(cs) != 0 {
		t.Fatalf("counters reported as changes: %v", cs)
	}
}

func TestChangedStates(t *testing.T) {
	a, b := base(), base()
	b.Sys.ClockSynced = false
	b.Sys.Throttle = wire.Throttle{Now: []string{"under_voltage"}, SinceBoot: []string{"under_voltage"}}
	b.Net = []wire.NetIf{
		{If: "eth0", Oper: "down", Carrier: false, SpeedMbps: -1},
		{If: "wlan0", Oper: "up", Carrier: true, SpeedMbps: -1, Addrs: []string{"198.51.100.7/24"}},
	}
	b.Capture = &wire.CaptureHealth{Device: "/dev/video0", Signal: false}
	b.Audio.Silent = true
	b.Encoder = &wire.EncoderHealth{Element: "x264enc"}
	b.Outputs = []wire.OutputHealth{{Name: "yt", Proto: "rtmps", State: "up"}, {Name: "backup", Proto: "srt", State: "connecting"}}
	b.Recording = nil
	b.ConfigVersion = 3
	got := Changed(a, b)
	var lines []string
	for _, c := range got {
		lines = append(lines, c.String())
	}
	want := []string{
		"sys clock_synced yes -> no",
		"sys throttle none -> under_voltage",
		"sys throttle_since_boot none -> under_voltage",
		"net:eth0 oper up -> down",
		"net:eth0 carrier yes -> no",
		"net:eth0 speed 1000Mb/s -> unknown",
		"net:eth0 addrs 192.0.2.10/24 -> none",
		"net:wlan0 present no -> yes",
		"net:wlan0 oper none -> up",
		"net:wlan0 carrier no -> yes",
		"net:wlan0 addrs none -> 198.51.100.7/24",
		"capture signal yes -> no",
		"capture format 1920x1080@59.94 -> none",
		"audio silent no -> yes",
		"encoder element v4l2h264enc (hardware, zero-copy) -> x264enc",
		"output:primary state up -> none",
		"output:yt state connecting -> up",
		"output:backup state none -> connecting",
		"recording path /data/recordings -> none",
		"config version 0 -> 3",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", joinLines(lines), joinLines(want))
	}
	if l := ChangeLine(got[:2]); l != "sys clock_synced yes -> no; sys throttle none -> under_voltage" {
		t.Fatalf("line %q", l)
	}
}

func TestChangedFromNothing(t *testing.T) {
	got := Changed(wire.Telemetry{}, base())
	has := func(s string) bool {
		for _, c := range got {
			if c.String() == s {
				return true
			}
		}
		return false
	}
	for _, s := range []string{"net:eth0 present no -> yes", "capture device none -> /dev/video0", "output:primary state none -> up", "recording path none -> /data/recordings"} {
		if !has(s) {
			t.Errorf("missing %q in %v", s, got)
		}
	}
	if cs := Changed(base(), base()); cs != nil {
		t.Fatalf("equal snapshots: %v", cs)
	}
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}
