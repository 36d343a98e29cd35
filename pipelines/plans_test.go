package pipelines_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/board"
	"capbox/pipelines"
)

var update = flag.Bool("update", false, "rewrite testdata/plans golden files")

// defaultRequest is what the embedded default asks for, with one SRT
// listener and one RTMP output, on the detected hardware.
func defaultRequest(t *testing.T, det board.Detection) pipelines.Request {
	t.Helper()
	srt, err := pipelines.ParseOutput("live", "srt://:8890?mode=listener", "", "")
	if err != nil {
		t.Fatal(err)
	}
	rtmp, err := pipelines.ParseOutput("yt", "rtmp://a.rtmp.youtube.com/live2", "", "/etc/capbox/yt.key")
	if err != nil {
		t.Fatal(err)
	}
	return pipelines.Request{
		Detection: det, VideoPin: "auto", AudioPin: "auto", EncoderPin: "auto",
		BitrateKbps: 4000, KeyframeInterval: 2 * time.Second, MaxWidth: 1920, MaxHeight: 1080, MaxFPS: 60,
		Outputs:   []pipelines.OutputSpec{srt, rtmp},
		Record:    &pipelines.RecordSettings{Dir: "/data/recordings", Format: "ts", Segment: 5 * time.Minute, KeepFree: 2e9},
		SlateText: "Back soon",
		// Elements: nil - the board's evidence decides, not this machine's registry.
	}
}

// Plans for every board fixture, golden-tested, plus the facts that
// matter per board asserted outright.
func TestBoardPlans(t *testing.T) {
	fixtures, err := filepath.Glob("../board/testdata/*/NOTES")
	if err != nil || len(fixtures) < 6 {
		t.Fatalf("board fixtures: %v %v", fixtures, err)
	}
	for _, notes := range fixtures {
		root := filepath.Dir(notes)
		name := filepath.Base(root)
		t.Run(name, func(t *testing.T) {
			det, err := board.Detect(context.Background(), board.Options{Root: root})
			if err != nil {
				t.Logf("detection notes: %v", err)
			}
			plan, err := pipelines.Build(defaultRequest(t, det))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(plan, "", "  ")
			golden := filepath.Join("testdata", "plans", name+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("plan differs from %s (run with -update and review the diff)", golden)
			}
			checkBoardFacts(t, name, plan)
			if strings.Contains(string(got), "yt.key\"") && strings.Contains(plan.Launch, "yt.key") {
				t.Error("key file path leaked into the launch line")
			}
		})
	}
}

func checkBoardFacts(t *testing.T, name string, p pipelines.Plan) {
	t.Helper()
	enc := p.Video.Chain
	var encoder pipelines.Element
	capsAfter := ""
	for i, e := range enc {
		if e.Name == "encoder" {
			encoder = e
			if i+1 < len(enc) && enc[i+1].Factory == "capsfilter" {
				capsAfter, _ = enc[i+1].Prop("caps")
			}
		}
	}
	src := enc[0]
	switch name {
	case "rpi4-tc358743":
		io, _ := src.Prop("io-mode")
		oio, _ := encoder.Prop("output-io-mode")
		ctl, _ := encoder.Prop("extra-controls")
		if encoder.Factory != "v4l2h264enc" || p.Encoder.Rung != pipelines.RungDMABuf || io != "dmabuf" || oio != "dmabuf-import" {
			t.Errorf("Pi 4 + TC358743: %s rung %s io %s/%s, want v4l2h264enc zero-copy", encoder.Factory, p.Encoder.Rung, io, oio)
		}
		if !strings.Contains(capsAfter, "level=(string)4") || !strings.Contains(ctl, "video_bitrate=4000000") || !strings.Contains(ctl, "repeat_sequence_header=1") {
			t.Errorf("Pi 4 encoder settings: caps %q controls %q", capsAfter, ctl)
		}
	case "rpi4-ms2109":
		if encoder.Factory != "v4l2h264enc" || p.Encoder.ZeroCopy {
			t.Errorf("Pi 4 + MS2109: %s zero-copy %v, want v4l2h264enc with a copy (MJPEG, UVC)", encoder.Factory, p.Encoder.ZeroCopy)
		}
		if !containsFactory(enc, "v4l2jpegdec") && !containsFactory(enc, "jpegdec") && !containsFactory(enc, "decodebin") {
			t.Error("MJPEG dongle without a JPEG decoder")
		}
	case "rpi5-ms2130":
		if encoder.Factory != "x264enc" || p.Encoder.Hardware {
			t.Errorf("Pi 5: %s, want x264enc (no hardware encoder)", encoder.Factory)
		}
	case "imx8mp":
		if encoder.Factory != "vpuenc_h264" {
			t.Errorf("i.MX8M Plus: %s, want vpuenc_h264", encoder.Factory)
		}
	case "x86-camlink":
		if !p.Encoder.Hardware && encoder.Factory != "x264enc" {
			t.Errorf("x86: %s", encoder.Factory)
		}
	}
	for _, o := range p.Outputs {
		if o.Spec.Proto == pipelines.ProtoRTMP {
			if v, _ := o.Sink.Chain[1].Prop("stream"); v != pipelines.Redacted {
				t.Errorf("stream key visible in the plan: %q", v)
			}
		}
	}
}

func containsFactory(chain []pipelines.Element, f string) bool {
	for _, e := range chain {
		if e.Factory == f {
			return true
		}
	}
	return false
}

// The virtual capture box's test configuration: vicodec's FWHT encoder
// stands in for a hardware encoder, on the zero-copy rung, recorded raw.
func TestFWHTPlanOnTheVirtualBox(t *testing.T) {
	det, _ := board.Detect(context.Background(), board.Options{Root: "../board/testdata/vm-vivid-vicodec"})
	req := defaultRequest(t, det)
	req.Codec = "fwht"
	if _, err := pipelines.Build(req); err == nil {
		t.Error("fwht with outputs must be refused")
	}
	req.Outputs = nil
	p, err := pipelines.Build(req)
	if err != nil {
		t.Fatal(err)
	}
	enc := p.Video.Chain[len(p.Video.Chain)-1]
	io, _ := p.Video.Chain[0].Prop("io-mode")
	oio, _ := enc.Prop("output-io-mode")
	if enc.Factory != "v4l2fwhtenc" || p.Encoder.Rung != pipelines.RungDMABuf || io != "dmabuf" || oio != "dmabuf-import" {
		t.Errorf("fwht plan: %s rung %s io %s/%s\n%s", enc.Factory, p.Encoder.Rung, io, oio, p.Launch)
	}
	if p.Recorder == nil || p.Recorder.Sink.Chain[0].Factory != "filesink" || !strings.Contains(p.Launch, "fakesink") {
		t.Errorf("fwht recorder: %+v\n%s", p.Recorder, p.Launch)
	}
	req.Rung = pipelines.RungMMAP
	if p, err = pipelines.Build(req); err != nil || p.Encoder.Rung != pipelines.RungMMAP {
		t.Errorf("mmap rung: %v %v", p.Encoder.Rung, err)
	}
}
