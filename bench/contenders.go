package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The stream every contender sends: the moving test pattern with a clock
// and silent stereo audio, x264 at 720p30, to an SRT ingest on loopback.
// No recording in any of them: ffmpeg's equivalent (a tee muxer with a
// segment muxer) differs enough in what it writes that the comparison
// would be about disks, not agents.
const (
	streamWidth   = 1280
	streamHeight  = 720
	streamFPS     = 30
	streamKbps    = 3000
	keyframeEvery = "2s"
	// srtLatencyMS is srtsink's latency in capboxd's plan (its default).
	srtLatencyMS = 200
)

// Contender names.
const (
	capboxd   = "capboxd"
	gstLaunch = "gst-launch"
	ffmpeg    = "ffmpeg"
)

var contenderNames = []string{capboxd, gstLaunch, ffmpeg}

// capboxdConfig is the agent's config for the stream: the test source,
// x264 pinned (the fallback ladder would pick it anyway on this machine),
// one SRT caller output, no recording, the fleet off (its cost is figure
// 5). The slate stays at its default: it only runs while the input has no
// signal, which the test pattern never loses.
func capboxdConfig(port int) string {
	return fmt.Sprintf(`device: { id: bench }
capture: { video: test, audio: none }
encode: { encoder: x264enc, bitrate_kbps: %d, keyframe_interval: %s, max_width: %d, max_height: %d, max_fps: %d }
outputs:
  - { name: ingest, url: "srt://127.0.0.1:%d" }
record: { enabled: false }
log: { level: info }
`, streamKbps, keyframeEvery, streamWidth, streamHeight, streamFPS, port)
}

// planJSON is the part of `capboxd pipeline --json` the benchmark reads.
type planJSON struct {
	Launch string `json:"launch"`
	Video  struct {
		Chain []struct {
			Factory string `json:"factory"`
			Props   []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"props"`
		} `json:"chain"`
		Width  int `json:"width"`
		Height int `json:"height"`
		FPS    int `json:"fps"`
	} `json:"video"`
}

// x264Settings are the encoder settings capboxd planned, which ffmpeg is
// given too so that all three encode alike.
type x264Settings struct {
	Preset  string
	Tune    string
	Kbps    int
	KeyInt  int
	VBVms   int
	Profile string
}

func (p planJSON) x264() (x264Settings, error) {
	s := x264Settings{VBVms: 600, Profile: "high"} // x264enc's default vbv-buf-capacity
	found := false
	for _, e := range p.Video.Chain {
		if e.Factory != "x264enc" {
			continue
		}
		found = true
		for _, pr := range e.Props {
			var err error
			switch pr.Name {
			case "speed-preset":
				s.Preset = pr.Value
			case "tune":
				s.Tune = pr.Value
			case "bitrate":
				s.Kbps, err = strconv.Atoi(pr.Value)
			case "key-int-max":
				s.KeyInt, err = strconv.Atoi(pr.Value)
			case "vbv-buf-capacity":
				s.VBVms, err = strconv.Atoi(pr.Value)
			}
			if err != nil {
				return s, fmt.Errorf("x264enc %s=%q: %w", pr.Name, pr.Value, err)
			}
		}
	}
	if !found {
		return s, errors.New("the plan has no x264enc")
	}
	if s.Preset == "" || s.Kbps == 0 || s.KeyInt == 0 {
		return s, fmt.Errorf("the plan's x264enc lacks preset, bitrate or key-int-max: %+v", s)
	}
	return s, nil
}

// stream is one contender's command for one ingest port.
type stream struct {
	name string
	argv []string
}

// setup writes the capboxd config for port and asks capboxd for its plan.
type setup struct {
	capboxd string
	dir     string
}

func (s setup) config(port int) (string, error) {
	path := filepath.Join(s.dir, "configs", fmt.Sprintf("capbox-%d.yaml", port))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(capboxdConfig(port)), 0o644)
}

func (s setup) plan(ctx context.Context, cfg string) (planJSON, error) {
	var p planJSON
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, s.capboxd, "pipeline", "-c", cfg, "--json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return p, fmt.Errorf("capboxd pipeline: %w: %s", err, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		return p, fmt.Errorf("capboxd pipeline --json: %w", err)
	}
	if p.Video.Width != streamWidth || p.Video.Height != streamHeight || p.Video.FPS != streamFPS {
		return p, fmt.Errorf("capboxd planned %dx%d@%d, want %dx%d@%d", p.Video.Width, p.Video.Height, p.Video.FPS, streamWidth, streamHeight, streamFPS)
	}
	return p, nil
}

// streams builds the three commands for an ingest on port.
func (s setup) streams(ctx context.Context, port int) ([]stream, error) {
	cfg, err := s.config(port)
	if err != nil {
		return nil, err
	}
	p, err := s.plan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	launch, err := shellWords(p.Launch)
	if err != nil {
		return nil, fmt.Errorf("launch line: %w", err)
	}
	if len(launch) < 3 || launch[0] != "gst-launch-1.0" {
		return nil, fmt.Errorf("launch line does not start with gst-launch-1.0: %q", p.Launch)
	}
	x, err := p.x264()
	if err != nil {
		return nil, err
	}
	return []stream{
		{capboxd, []string{s.capboxd, "run", "-c", cfg}},
		{gstLaunch, launch},
		{ffmpeg, ffmpegArgs(x, port)},
	}, nil
}

// ffmpegArgs is the ffmpeg command a venue's script would run for the
// same stream. The picture approximates videotestsrc's SMPTE pattern:
// the same bars scrolling 2 pixels a frame to the left, a block of
// luma-only snow where videotestsrc draws its own, and a clock. Encoder
// settings come from capboxd's plan: same preset, tune, bitrate, VBV
// buffer (x264enc's cbr pass: maxrate = bitrate) and keyframe interval.
func ffmpegArgs(x x264Settings, port int) []string {
	speed := 2.0 / streamWidth
	video := fmt.Sprintf("[1:v]noise=c0s=100:c0f=t+u[n];[0:v][n]overlay=x=560:y=540,scroll=horizontal=%g,"+
		"drawtext=text='capbox test pattern %%{localtime}':font=Sans:fontsize=48:x=24:y=h-th-24:fontcolor=white,format=yuv420p[v]", speed)
	args := []string{"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("smptebars=size=%dx%d:rate=%d", streamWidth, streamHeight, streamFPS),
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("color=c=gray:size=320x180:rate=%d", streamFPS),
		"-re", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
		"-filter_complex", video, "-map", "[v]", "-map", "2:a",
		"-c:v", "libx264", "-preset", x.Preset}
	if x.Tune != "" {
		args = append(args, "-tune", x.Tune)
	}
	return append(args,
		"-b:v", fmt.Sprintf("%dk", x.Kbps), "-maxrate", fmt.Sprintf("%dk", x.Kbps),
		"-bufsize", fmt.Sprintf("%dk", x.Kbps*x.VBVms/1000),
		"-g", strconv.Itoa(x.KeyInt), "-profile:v", x.Profile,
		"-c:a", "aac", "-b:a", "128k",
		"-f", "mpegts", fmt.Sprintf("srt://127.0.0.1:%d?pkt_size=1316&latency=%d", port, srtLatencyMS*1000))
}
