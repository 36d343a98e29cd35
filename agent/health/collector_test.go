package health

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/pipelines"
)

type fakeNet struct{ ifs []wire.NetIf }

func (f fakeNet) ReadNet() ([]wire.NetIf, error) { return f.ifs, nil }

type fakePipe struct {
	mu sync.Mutex
	st pipelines.Stats
}

func (f *fakePipe) Stats() pipelines.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func stats(frames, outBytes uint64) pipelines.Stats {
	return pipelines.Stats{
		Video:   pipelines.FrontStats{Kind: pipelines.SourceV4L2, Device: "/dev/v4l/by-path/platform-fe801000.csi-video-index0", Width: 1920, Height: 1080, FPS: 60, Frames: frames, Running: true},
		Audio:   pipelines.AudioStats{Kind: pipelines.SourceALSA, Device: "hw:CARD=tc358743", PeakDBFS: math.Inf(-1), RMSDBFS: -23.04},
		Encoder: pipelines.EncoderInfo{Element: "v4l2h264enc", Hardware: true, ZeroCopy: true, BitrateKbps: 6000},
		Outputs: []pipelines.OutputStats{{
			Name: "primary", Proto: pipelines.ProtoSRT, URL: "srt://ingest.example.org:9000?passphrase=***",
			State: pipelines.OutputUp, Bytes: outBytes, BitrateKbps: 5980, Reconnects: 1, RTTms: 35.04, LossPct: math.NaN(),
			LastError: "connection refused",
		}},
		Recorder: pipelines.RecorderStats{Enabled: true, Recording: true, Dir: "/data/recordings", Segments: 12, Bytes: 1 << 30, FreeBytes: 21000 * MiB},
	}
}

// closedWithin reports whether ch closes before d passes on the bubble's
// clock.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestCollectorRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := copyTree(t, "testdata/rpi4")
		pipe := &fakePipe{st: stats(100, 5000)}
		nets := []wire.NetIf{{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000}}
		c := New(Options{
			Interval: 10 * time.Second,
			Sys:      SysReader{Root: root, Mounts: []string{"/"}, Clock: fixedClock{cs: ClockSync{Synced: true}}},
			Net:      fakeNet{nets},
			Pipeline: pipe,
			Thermal:  ThermalOptions{Hold: 30 * time.Second},
		})
		c.SetConfigVersion(17)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()

		// The first sample is taken at once.
		first, changed := c.Watch()
		if first.TS == 0 || first.IntervalS != 10 || first.ConfigVersion != 17 || first.Sys.TempsC["cpu-thermal"] != 67.5 ||
			!first.Sys.ClockSynced || len(first.Net) != 1 || first.Capture == nil || first.Capture.Frames != 100 || !first.Capture.Signal {
			t.Fatalf("first sample %+v", first)
		}
		if first.Audio.PeakDBFS != MinDBFS || first.Audio.RMSDBFS != -23 || first.Outputs[0].LossPct != 0 || first.Outputs[0].RTTMs != 35 {
			t.Fatalf("levels and rates %+v %+v", first.Audio, first.Outputs[0])
		}
		b, err := json.Marshal(first)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if s := string(b); strings.Contains(s, "srt://") || strings.Contains(s, "refused") {
			t.Fatalf("output URL or error leaked into telemetry: %s", s)
		}
		// The next one comes one interval later, and not before.
		if closedWithin(changed, 9*time.Second) {
			t.Fatal("sampled before the interval")
		}
		if !closedWithin(changed, 2*time.Second) {
			t.Fatal("no sample after the interval")
		}
		if got := c.Latest(); got.UptimeS != 10 || got.TS-first.TS != 10_000 {
			t.Fatalf("second sample uptime %d ts delta %d", got.UptimeS, got.TS-first.TS)
		}

		// Heating: 76 C on a Pi (firmware point 80 C) is warm, 81 C is
		// throttling; each is reported at the next sample.
		writeFile(t, root, "sys/devices/virtual/thermal/thermal_zone0/temp", "76000")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		ev := <-c.ThermalEvents()
		if ev.Type != EvtThermalWarning || c.Thermal().Level != ThermalWarm || c.Thermal().PointC != 80 {
			t.Fatalf("warm: %+v status %+v", ev, c.Thermal())
		}
		writeFile(t, root, "sys/devices/virtual/thermal/thermal_zone0/temp", "81000")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if ev := <-c.ThermalEvents(); ev.Type != EvtThermalThrottle || ev.Status.Action.BitrateFactor != 0.5 {
			t.Fatalf("throttle: %+v", ev)
		}
		// Cooling to 60 C: the spell starts at the first cool sample (+10 s),
		// warm after the 30 s hold (+40 s), normal a hold later (+70 s).
		writeFile(t, root, "sys/devices/virtual/thermal/thermal_zone0/temp", "60000")
		cooled := time.Now()
		ev = <-c.ThermalEvents()
		if ev.Type != EvtThermalWarning || ev.From != ThermalThrottling || time.Since(cooled) != 40*time.Second {
			t.Fatalf("cooling: %+v after %v", ev, time.Since(cooled))
		}
		ev = <-c.ThermalEvents()
		if ev.Type != EvtThermalOK {
			t.Fatalf("cooled: %+v", ev)
		}
		if d := time.Since(cooled); d != 70*time.Second {
			t.Fatalf("normal again after %v", d)
		}

		// A new runtime counts from zero; the session total goes on.
		c.SetPipeline(&fakePipe{st: stats(10, 700)})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := c.Latest(); got.Capture.Frames != 110 || got.Encoder.Frames != 110 || got.Outputs[0].Bytes != 5700 || got.Outputs[0].Reconnects != 2 {
			t.Fatalf("after a new runtime: capture %+v outputs %+v", got.Capture, got.Outputs)
		}

		// A shorter interval takes effect from now.
		c.SetInterval(5 * time.Second)
		synctest.Wait()
		_, changed = c.Watch()
		if !closedWithin(changed, 5*time.Second+time.Millisecond) {
			t.Fatal("no sample 5 s after SetInterval")
		}
		if got := c.Latest(); got.IntervalS != 5 {
			t.Fatalf("interval_s %d", got.IntervalS)
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	})
}

func TestCountersAcrossRestarts(t *testing.T) {
	c := newCounters()
	for _, step := range []struct {
		raw     uint64
		restart bool
		want    uint64
	}{
		{100, false, 100},
		{150, false, 150},
		{20, false, 170}, // went backwards: the runtime restarted unannounced
		{30, false, 180},
		{5, true, 185}, // announced restart, even though 5 < 30 would also show it
		{200, true, 385},
	} {
		if step.restart {
			c.restart()
		}
		if got := c.add("k", step.raw); got != step.want {
			t.Fatalf("raw %d: %d want %d", step.raw, got, step.want)
		}
	}
}

func TestPipelineSectionsAbsentParts(t *testing.T) {
	var tel wire.Telemetry
	pipelineSections(pipelines.Stats{Video: pipelines.FrontStats{Kind: pipelines.SourceTest, Running: true}, Slate: true}, newCounters(), &tel)
	if tel.Capture == nil || tel.Capture.Device != "test" || tel.Capture.Signal {
		t.Fatalf("test source on the slate: %+v", tel.Capture)
	}
	if tel.Audio != nil || tel.Encoder != nil || tel.Outputs != nil || tel.Recording != nil {
		t.Fatalf("absent parts reported: %+v", tel)
	}
}

func TestThermalEventsDropOldest(t *testing.T) {
	c := New(Options{Sys: fakeSys{}, Net: fakeNet{}})
	for i := range thermalEventBuffer + 3 {
		c.deliver(ThermalEvent{Type: string(rune('a' + i))})
	}
	if got := (<-c.ThermalEvents()).Type; got != "d" {
		t.Fatalf("oldest kept is %q, want the 4th", got)
	}
}

type fakeSys struct{}

func (fakeSys) ReadSys() (SysReading, error) { return SysReading{}, nil }
