package main

import (
	"context"
	"encoding/json"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/pipelines"
)

// The fleet benchmark's boxes run the real link (agent/fleet) with a
// simulated agent behind it. Their telemetry is a real health.Collector's
// sample of a Raspberry Pi 4 fixture tree (agent/health/testdata/rpi4)
// with the pipeline counters of a busy box: HDMI capture at 1080p60, the
// hardware encoder, an SRT and an RTMP output, recording. That is what a
// box in a venue sends, so the bytes per box are the real size.

// busyPipeline is the pipeline side of a box that streams and records.
type busyPipeline struct{ start time.Time }

func (p busyPipeline) Stats() pipelines.Stats {
	now := time.Now()
	s := now.Sub(p.start).Seconds()
	since := p.start
	return pipelines.Stats{
		Video: pipelines.FrontStats{Kind: pipelines.SourceV4L2, Device: "/dev/video0", Width: 1920, Height: 1080, FPS: 60,
			Frames: uint64(60 * s), Bytes: uint64(500_000 * s), LastFrame: now, Running: true},
		Audio: pipelines.AudioStats{Kind: pipelines.SourceALSA, Device: "hw:CARD=tc358743,DEV=0", PeakDBFS: -12.5, RMSDBFS: -23.1,
			Frames: uint64(46.875 * s), LastFrame: now},
		Encoder: pipelines.EncoderInfo{Element: "v4l2h264enc", Family: "v4l2-m2m", Hardware: true, Rung: pipelines.RungDMABuf,
			ZeroCopy: true, Reason: "hardware encoder with dmabuf import", BitrateKbps: 4000, KeyframeFrames: 120},
		Outputs: []pipelines.OutputStats{
			{Name: "primary", Proto: pipelines.ProtoSRT, URL: "srt://ingest.example.org:9000", State: pipelines.OutputUp,
				Bytes: uint64(520_000 * s), BitrateKbps: 4160, RTTms: 12.4, LossPct: 0.02, Since: since},
			{Name: "youtube", Proto: pipelines.ProtoRTMP, URL: "rtmps://a.rtmp.youtube.com/live2/***", State: pipelines.OutputUp,
				Bytes: uint64(515_000 * s), BitrateKbps: 4120, Since: since},
		},
		Recorder: pipelines.RecorderStats{Enabled: true, Recording: true, Dir: "/data/recordings",
			File: "/data/recordings/2026-11-25/room-101-0012.ts", Segments: 12, Bytes: uint64(520_000 * s),
			FreeBytes: 52_000_000_000, Since: since},
	}
}

// boxNet is a box's network: wired, up, with its addresses and counters.
type boxNet struct{ start time.Time }

func (n boxNet) ReadNet() ([]wire.NetIf, error) {
	s := uint64(time.Since(n.start).Seconds())
	return []wire.NetIf{
		{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000, Addrs: []string{"10.20.30.101/24", "fe80::dea6:32ff:fe01:2345/64"},
			RxBytes: 1_200_000 + 2_000*s, TxBytes: 9_000_000 + 1_040_000*s},
		{If: "wlan0", Oper: "down", SpeedMbps: health.SpeedUnknown},
	}, nil
}

// newTelemetrySource samples the fixture tree at the default interval;
// every simulated box reports its latest sample.
func newTelemetrySource(ctx context.Context, fixture string) *health.Collector {
	start := time.Now()
	c := health.New(health.Options{
		Sys:      health.SysReader{Root: fixture, Mounts: []string{"/"}},
		Net:      boxNet{start: start},
		Pipeline: busyPipeline{start: start},
	})
	c.Sample()
	go func() { _ = c.Run(ctx) }()
	return c
}

var simDetection = json.RawMessage(`{"board":{"id":"rpi4","family":"rpi","model":"Raspberry Pi 4 Model B Rev 1.4","compatible":["raspberrypi,4-model-b","brcm,bcm2711"]},` +
	`"video_inputs":[{"device":"/dev/video0","stable_path":"/dev/v4l/by-path/platform-fe801000.csi-video-index0","driver":"unicam","card":"unicam","kind":"hdmi-csi","probed":true,"signal":{"state":"locked","width":1920,"height":1080,"fps":60}}],` +
	`"audio_inputs":[{"device":"hw:CARD=tc358743,DEV=0","card":"tc358743"}],` +
	`"encoders":[{"element":"v4l2h264enc","device":"/dev/video11","driver":"bcm2835-codec","codec":"h264","family":"v4l2-m2m","hardware":true,"available":true}],` +
	`"chosen":{"video_input":"/dev/video0","encoder":"v4l2h264enc","zero_copy":true,"reason":"hardware encoder imports the capture's dmabufs"}}`)

// newSimBox is the agent side of one simulated box (agent/fleet/fleettest's
// box): steady, nothing changes but the telemetry counters; it runs no
// command and takes no config.
func newSimBox(tel *health.Collector) *fleettest.Box {
	b := fleettest.New()
	b.SetMeta(func(m *wire.Meta) {
		*m = wire.Meta{Agent: "bench", Versions: map[string]string{"gstreamer": "1.22.0", "kernel": "6.6.51-v8+", "os": "capbox 2026.11"},
			Detection: simDetection,
			Outputs: []wire.OutputInfo{{Name: "primary", Proto: "srt", URL: "srt://ingest.example.org:9000?streamid=***", Enabled: true},
				{Name: "youtube", Proto: "rtmp", URL: "rtmps://a.rtmp.youtube.com/live2/***", Enabled: true}}}
	})
	b.SetState(func(s *wire.State) {
		*s = wire.State{Mode: wire.ModeStreaming,
			Moods: map[string]wire.Mood{wire.PartCapture: wire.MoodHappy, wire.PartEncoder: wire.MoodHappy, wire.PartRecorder: wire.MoodHappy,
				wire.OutputPart("primary"): wire.MoodHappy, wire.OutputPart("youtube"): wire.MoodHappy},
			Capture: wire.CaptureState{Signal: "locked", Format: "1080p60"},
			Outputs: map[string]string{"primary": wire.OutputUp, "youtube": wire.OutputUp}, Recording: true,
			Alerts: []string{}}
	})
	b.TelemetryFrom(tel.Latest)
	b.OnCommand(func(context.Context, string, wire.Args) (fleet.Result, error) {
		return fleet.Result{}, fleet.ErrUnsupported
	})
	b.OnApply(func(int64, json.RawMessage) []config.FieldError {
		return []config.FieldError{{Path: "", Msg: "the benchmark's boxes take no config"}}
	})
	return b
}
