package pipelines_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/board"
	"capbox/pipelines"
)

// hdmiPlan plans a locked HDMI input at the given timings for one encoder.
func hdmiPlan(t *testing.T, s board.Signal, enc board.Encoder, outputs ...pipelines.OutputSpec) pipelines.Plan {
	t.Helper()
	s.State = board.SignalLocked
	in := board.VideoInput{Device: "/dev/video0", Driver: "vivid", Kind: board.KindVirtual, Probed: true, DVTimings: true,
		Signal: s, Formats: []board.Format{{FourCC: "UYVY"}}}
	enc.Codec, enc.Available = "h264", true
	p, err := pipelines.Build(pipelines.Request{
		Detection: board.Detection{VideoInputs: []board.VideoInput{in}, Encoders: []board.Encoder{enc},
			Chosen: board.Choice{VideoInput: "/dev/video0", Encoder: enc.Element}},
		VideoPin: "/dev/video0", AudioPin: "none", EncoderPin: "auto", BitrateKbps: 3000, KeyframeInterval: time.Second,
		MaxWidth: 4096, MaxHeight: 2304, MaxFPS: 60, Outputs: outputs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var piEncoder = board.Encoder{Element: "v4l2h264enc", Device: "/dev/video11", Driver: "bcm2835-codec", Family: board.FamilyV4L2M2M, Hardware: true}

// The H.264 level asked of a hardware encoder is the lowest that carries the
// format (ITU-T H.264 table A-1, macroblocks per second), limits included.
func TestH264LevelFollowsTheFormat(t *testing.T) {
	cases := []struct {
		w, h, fps int
		level     string
	}{
		{1280, 720, 30, "3.1"}, // 108000 MB/s: 3.1's limit
		{1280, 736, 30, "3.2"},
		{1280, 720, 60, "3.2"}, // 216000: 3.2's limit
		{1280, 736, 60, "4"},
		{2048, 1024, 30, "4"}, // 245760: 4's limit
		{1920, 1080, 30, "4"},
		{2048, 1040, 30, "4.2"},
		{1920, 1080, 60, "4.2"},
		{2048, 1088, 60, "4.2"}, // 522240: 4.2's limit
		{2064, 1088, 60, "5.1"},
		{3840, 2160, 30, "5.1"},
	}
	for _, c := range cases {
		p := hdmiPlan(t, board.Signal{Width: c.w, Height: c.h, FPS: c.fps, FPSExact: float64(c.fps)}, piEncoder)
		if want := "level=(string)" + c.level + ","; !strings.Contains(p.Launch, want) {
			t.Errorf("%dx%d@%d: want %s in %s", c.w, c.h, c.fps, want, p.Launch)
		}
	}
}

// NTSC-style rates are asked of the device as N*1000/1001, others as they are.
func TestCaptureRates(t *testing.T) {
	cases := map[float64]string{60: "60/1", 59.94: "60000/1001", 29.97: "30000/1001", 23.976: "24000/1001", 50: "50/1", 12.5: "12500/1000"}
	for fps, want := range cases {
		p := hdmiPlan(t, board.Signal{Width: 1280, Height: 720, FPS: int(fps + 0.5), FPSExact: fps}, piEncoder)
		if !strings.Contains(p.Launch, "framerate="+want+" ") {
			t.Errorf("%v fps: want framerate=%s in %s", fps, want, p.Launch)
		}
	}
}

// Each hardware family is told the bitrate in its own unit.
func TestEncoderBitrateUnits(t *testing.T) {
	cases := []struct {
		enc  board.Encoder
		prop string
	}{
		{piEncoder, "video_bitrate=3000000,"},
		{board.Encoder{Element: "omxh264enc", Family: board.FamilyOMX, Hardware: true}, "target-bitrate=3000000 "},
		{board.Encoder{Element: "mpph264enc", Family: board.FamilyVendor, Hardware: true}, "bps=3000000 "},
		{board.Encoder{Element: "nvv4l2h264enc", Family: board.FamilyNVENC, Hardware: true}, "bitrate=3000000 "},
		{board.Encoder{Element: "vpuenc_h264", Family: board.FamilyVendor, Hardware: true}, "bitrate=3000 "},
		{board.Encoder{Element: "vah264enc", Family: board.FamilyVAAPI, Hardware: true}, "bitrate=3000 "},
		{board.Encoder{Element: "x264enc", Family: board.FamilySoftware}, "bitrate=3000 "},
		{board.Encoder{Element: "openh264enc", Family: board.FamilySoftware}, "bitrate=3000000 "},
	}
	for _, c := range cases {
		p := hdmiPlan(t, board.Signal{Width: 1280, Height: 720, FPS: 30, FPSExact: 30}, c.enc)
		if p.Encoder.Element != c.enc.Element || !strings.Contains(p.Launch, c.enc.Element+" name=encoder") {
			t.Errorf("%s: planned %s", c.enc.Element, p.Encoder.Element)
			continue
		}
		if !strings.Contains(p.Launch, c.prop) {
			t.Errorf("%s: want %q in %s", c.enc.Element, c.prop, p.Launch)
		}
		if p.Encoder.BitrateKbps != 3000 {
			t.Errorf("%s: bitrate %d kbps", c.enc.Element, p.Encoder.BitrateKbps)
		}
	}
}

// A dongle without a signal to report: the largest size within the bounds,
// at its best rate within them.
func TestModeChoiceWithinBounds(t *testing.T) {
	in := board.VideoInput{Device: "/dev/video2", Driver: "uvcvideo", Kind: board.KindUSB, Probed: true,
		Formats: []board.Format{{FourCC: "YUYV", Sizes: []board.FrameSize{
			{Width: 640, Height: 480, FPS: []float64{60, 30}},
			{Width: 1280, Height: 720, FPS: []float64{10, 59.94, 30}},
			{Width: 1280, Height: 720, FPS: []float64{50}},
			{Width: 1920, Height: 1080, FPS: []float64{5}},
			{Width: 3840, Height: 2160, FPS: []float64{30}},
		}}}}
	plan := func(maxW, maxH, maxFPS int) pipelines.Plan {
		p, err := pipelines.Build(pipelines.Request{
			Detection: board.Detection{VideoInputs: []board.VideoInput{in}, Chosen: board.Choice{VideoInput: "/dev/video2"}},
			VideoPin:  "/dev/video2", AudioPin: "none", BitrateKbps: 1000, KeyframeInterval: time.Second,
			MaxWidth: maxW, MaxHeight: maxH, MaxFPS: maxFPS,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		maxW, maxH, maxFPS int
		want               string
	}{
		{1920, 1080, 60, "width=1920,height=1080,framerate=5/1"},
		{1280, 720, 60, "width=1280,height=720,framerate=60000/1001"},
		{1280, 720, 50, "width=1280,height=720,framerate=50/1"},
		{1280, 720, 30, "width=1280,height=720,framerate=30/1"},
		{1279, 720, 60, "width=640,height=480,framerate=60/1"},
		{1280, 719, 60, "width=640,height=480,framerate=60/1"},
		{3840, 2160, 60, "width=3840,height=2160,framerate=30/1"},
	}
	for _, c := range cases {
		p := plan(c.maxW, c.maxH, c.maxFPS)
		if !strings.Contains(p.Launch, "format=YUY2,"+c.want+" ") {
			t.Errorf("bounds %dx%d@%d: want %s in %s", c.maxW, c.maxH, c.maxFPS, c.want, p.Launch)
		}
	}
}

func TestParseOutput(t *testing.T) {
	ok := []struct {
		url, key, keyFile string
		check             func(o pipelines.OutputSpec) bool
	}{
		{"srt://ingest.example.org:9000?streamid=room1&latency=20", "", "", func(o pipelines.OutputSpec) bool {
			return o.Proto == pipelines.ProtoSRT && !o.Listener && o.Host == "ingest.example.org" && o.Port == 9000 && o.StreamID == "room1" && o.Latency == 20*time.Millisecond
		}},
		{"srt://:8890?mode=listener&latency=60000", "", "", func(o pipelines.OutputSpec) bool {
			return o.Listener && o.Port == 8890 && o.Latency == time.Minute && o.ListenAddr() == ":8890"
		}},
		{"srt://h:1?mode=caller&passphrase=0123456789&pbkeylen=16", "", "", func(o pipelines.OutputSpec) bool {
			return o.Passphrase.Value.Reveal() == "0123456789" && o.PBKeyLen == 16 && !strings.Contains(o.URL, "0123456789")
		}},
		{"srt://h:65535?passphrase=" + strings.Repeat("p", 79) + "&pbkeylen=32", "", "", func(o pipelines.OutputSpec) bool { return o.PBKeyLen == 32 && o.Port == 65535 }},
		{"srt://h:1?passphrase_file=/etc/capbox/srt.key&pbkeylen=24", "", "", func(o pipelines.OutputSpec) bool {
			return o.Passphrase.File == "/etc/capbox/srt.key" && o.PBKeyLen == 24
		}},
		{"srt://h:1?streamid=" + strings.Repeat("s", 512), "", "", func(o pipelines.OutputSpec) bool { return len(o.StreamID) == 512 }},
		{"rtmp://a.example/live2/sekrit", "", "", func(o pipelines.OutputSpec) bool {
			return o.Port == 1935 && o.Application == "live2" && o.StreamKey.Value.Reveal() == "sekrit" && !strings.Contains(o.URL, "sekrit")
		}},
		{"rtmps://a.example/live2", "", "/etc/capbox/yt.key", func(o pipelines.OutputSpec) bool {
			return o.Proto == pipelines.ProtoRTMPS && o.Port == 443 && o.Application == "live2" && o.StreamKey.File == "/etc/capbox/yt.key"
		}},
		{"RTMP://a.example:1936/app/x", "", "", func(o pipelines.OutputSpec) bool { return o.Proto == pipelines.ProtoRTMP && o.Port == 1936 }},
		{"rtmp://a.example/live2", "sekrit", "", func(o pipelines.OutputSpec) bool { return o.StreamKey.Value.Reveal() == "sekrit" }},
		{"rtsp://user:pw@cam.example/live/room1", "", "", func(o pipelines.OutputSpec) bool {
			return o.Port == 554 && o.Path == "live/room1" && o.User == "user" && o.Password.Value.Reveal() == "pw" && !strings.Contains(o.URL, "pw")
		}},
		{"rtsp://cam.example:8554/x", "", "", func(o pipelines.OutputSpec) bool { return o.Port == 8554 && o.User == "" && !o.Password.Set() }},
		{"rtsp://user@cam.example/x", "", "", func(o pipelines.OutputSpec) bool { return o.User == "user" && !o.Password.Set() }},
	}
	for _, c := range ok {
		o, err := pipelines.ParseOutput("out", c.url, c.key, c.keyFile)
		if err != nil || !c.check(o) || !o.Enabled || o.Name != "out" {
			t.Errorf("%q: %+v, %v", c.url, o, err)
		}
	}
	bad := []struct{ url, key, keyFile, why string }{
		{"srt://h:1?latency=19", "", "", "latency"},
		{"srt://h:1?latency=60001", "", "", "latency"},
		{"srt://h:1?latency=soon", "", "", "latency"},
		{"srt://h:1?passphrase=012345678", "", "", "10..79"},
		{"srt://h:1?passphrase=" + strings.Repeat("p", 80), "", "", "10..79"},
		{"srt://h:1?passphrase=0123456789&passphrase_file=/k", "", "", "both set"},
		{"srt://h:1?pbkeylen=20", "", "", "pbkeylen"},
		{"srt://h:1?pbkeylen=x", "", "", "pbkeylen"},
		{"srt://h:1?mode=rendezvous", "", "", "srt mode"},
		{"srt://h:1?colour=red", "", "", "unknown srt parameter"},
		{"srt://h:1?streamid=" + strings.Repeat("s", 513), "", "", "512"},
		{"srt://h", "", "", "needs a port"},
		{"srt://:9000", "", "", "needs a host"},
		{"srt://h:0", "", "", "port"},
		{"srt://h:65536", "", "", "port"},
		{"rtmp:///live2/x", "", "", "needs a host"},
		{"rtmp://a.example", "", "", "application path"},
		{"rtmp://a.example/live2", "", "", "no stream key"},
		{"rtmp://a.example/live2/", "", "", "no stream key"},
		{"rtmp://a.example/live2/x?y=1", "", "", "no query"},
		{"rtmp://u:p@a.example/live2/x", "", "", "no query or credentials"},
		{"rtmp://a.example/live2", "k", "/k", "both set"},
		{"srt://h:1", "k", "", "rtmp and rtmps only"},
		{"rtsp:///x", "", "", "needs a host"},
		{"rtsp://h/x?a=1", "", "", "no query"},
		{"file:///tmp/x.ts", "", "", "use record"},
		{"ingest.example.org:9000", "", "", "scheme"},
		{"/just/a/path", "", "", "no scheme"},
		{"ftp://h/x", "", "", "unknown scheme"},
		{"srt://h:1\x00", "", "", "bad output url"},
	}
	for _, c := range bad {
		_, err := pipelines.ParseOutput("out", c.url, c.key, c.keyFile)
		if !errors.Is(err, pipelines.ErrOutputURL) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: %v, want an error about %q", c.url, err, c.why)
		}
	}
}

// The sinks carry what the URL asked for; secrets never appear in the plan.
func TestOutputSinks(t *testing.T) {
	parse := func(url string) pipelines.OutputSpec {
		o, err := pipelines.ParseOutput("o", url, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	p := hdmiPlan(t, board.Signal{Width: 1280, Height: 720, FPS: 30, FPSExact: 30}, piEncoder,
		parse("srt://h:9000?passphrase=0123456789abc&pbkeylen=24&streamid=r1"),
		parse("srt://:9001?mode=listener"),
		parse("rtsp://cam:pw-sekrit@h:8554/live"),
		parse("rtsp://h/anon"),
	)
	launch := p.Launch
	for _, want := range []string{
		`'uri="srt://h:9000?mode=caller"' latency=200 `, "pbkeylen=24", `streamid=r1`, `'passphrase=***'`,
		`'uri="srt://:9001?mode=listener"' latency=200 `,
		`location=rtsp://h:8554/live protocols=tcp user-id=cam 'user-pw=***'`,
		`location=rtsp://h:554/anon protocols=tcp `,
	} {
		if !strings.Contains(launch, want) {
			t.Errorf("want %s in %s", want, launch)
		}
	}
	if strings.Contains(launch, "0123456789abc") || strings.Contains(launch, "pw-sekrit") {
		t.Errorf("a secret in the launch line: %s", launch)
	}
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "0123456789abc") || strings.Contains(string(b), "pw-sekrit") {
		t.Errorf("a secret in the plan: %s", b)
	}
	if n := strings.Count(launch, "user-id="); n != 1 {
		t.Errorf("user-id %d times, want only for the output with a user", n)
	}
	if n := strings.Count(launch, "pbkeylen="); n != 1 {
		t.Errorf("pbkeylen %d times", n)
	}
}

// A secret read from a file loses its line ending; an empty or missing file
// is an error that names the file, never a value.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := (pipelines.SecretRef{File: write("k", "sekrit\r\n")}).Resolve(); err != nil || s.Reveal() != "sekrit" {
		t.Errorf("a key file: %q, %v", s.Reveal(), err)
	}
	if s, err := (pipelines.SecretRef{Value: "inline"}).Resolve(); err != nil || s.Reveal() != "inline" {
		t.Errorf("an inline key: %q, %v", s.Reveal(), err)
	}
	for _, f := range []string{write("empty", "\n"), filepath.Join(dir, "absent")} {
		if _, err := (pipelines.SecretRef{File: f}).Resolve(); !errors.Is(err, pipelines.ErrSecretFile) {
			t.Errorf("%s: %v", f, err)
		}
	}
	s := pipelines.Secret("sekrit")
	for _, shown := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s)} {
		if strings.Contains(shown, "sekrit") {
			t.Errorf("a secret formatted: %s", shown)
		}
	}
	if (pipelines.SecretRef{}).Set() || !(pipelines.SecretRef{File: "/k"}).Set() || !(pipelines.SecretRef{Value: "v"}).Set() {
		t.Error("SecretRef.Set")
	}
}

// pi4 is the Raspberry Pi 4 fixture with its TC358743 locked at the given
// timings.
func pi4(t *testing.T, s board.Signal) board.Detection {
	t.Helper()
	det, _ := board.Detect(context.Background(), board.Options{Root: "../board/testdata/rpi4-tc358743"})
	if len(det.VideoInputs) == 0 {
		t.Fatal("no input in the rpi4-tc358743 fixture")
	}
	s.State = board.SignalLocked
	det.VideoInputs[0].Signal = s
	return det
}

// noReason drops detection's choice of encoder, so the planner walks the
// detected hardware encoders and gives its own reasons.
func noReason(det board.Detection) board.Detection {
	det.Chosen.Encoder, det.Chosen.Reason = "", ""
	return det
}

// The ladder's rungs as the planner gives them: zero-copy only when the
// capture goes to the encoder untouched, the copying rung when asked or
// when the picture is scaled, the software encoder when asked; each says why.
func TestEncoderRungs(t *testing.T) {
	p1080p30 := board.Signal{Width: 1920, Height: 1080, FPS: 30, FPSExact: 30}
	cases := []struct {
		name    string
		det     board.Detection
		change  func(r *pipelines.Request)
		element string
		rung    pipelines.Rung
		reason  string
	}{
		{"zero-copy", pi4(t, p1080p30), nil, "v4l2h264enc", pipelines.RungDMABuf, "zero-copy"},
		{"copy asked", pi4(t, p1080p30), func(r *pipelines.Request) { r.Rung = pipelines.RungMMAP }, "v4l2h264enc", pipelines.RungMMAP, ""},
		{"software asked", pi4(t, p1080p30), func(r *pipelines.Request) { r.Rung = pipelines.RungSoftware }, "x264enc", pipelines.RungSoftware, "software rung requested"},
		{"scaled", pi4(t, p1080p30), func(r *pipelines.Request) { r.MaxWidth, r.MaxHeight = 1280, 720 }, "v4l2h264enc", pipelines.RungMMAP, ""},
		{"at the bounds", pi4(t, p1080p30), func(r *pipelines.Request) { r.MaxWidth, r.MaxHeight, r.MaxFPS = 1920, 1080, 30 }, "v4l2h264enc", pipelines.RungDMABuf, ""},
		{"rate bound", pi4(t, p1080p30), func(r *pipelines.Request) { r.MaxFPS = 25 }, "v4l2h264enc", pipelines.RungMMAP, ""},
		{"test pattern", pi4(t, p1080p30), func(r *pipelines.Request) { r.VideoPin = "test" }, "v4l2h264enc", pipelines.RungMMAP, ""},
		// Without detection's own reason, the planner's says why not zero-copy.
		{"test pattern, why", noReason(pi4(t, p1080p30)), func(r *pipelines.Request) { r.VideoPin = "test" }, "v4l2h264enc", pipelines.RungMMAP, "no capture device"},
		{"scaled, why", noReason(pi4(t, p1080p30)), func(r *pipelines.Request) { r.MaxFPS = 25 }, "v4l2h264enc", pipelines.RungMMAP, "input is scaled"},
		{"zero-copy, why", noReason(pi4(t, p1080p30)), nil, "v4l2h264enc", pipelines.RungDMABuf, ""},
		{"pinned", pi4(t, p1080p30), func(r *pipelines.Request) { r.EncoderPin = "openh264enc" }, "openh264enc", pipelines.RungSoftware, "pinned by config"},
		{"no x264", pi4(t, p1080p30), func(r *pipelines.Request) {
			r.Rung, r.Elements = pipelines.RungSoftware, elementsWithout{"x264enc"}
		}, "openh264enc", pipelines.RungSoftware, ""},
		{"no hardware element", pi4(t, p1080p30), func(r *pipelines.Request) { r.Elements = elementsWithout{"v4l2h264enc"} }, "x264enc", pipelines.RungSoftware, ""},
	}
	for _, c := range cases {
		req := defaultRequest(t, c.det)
		if c.change != nil {
			c.change(&req)
		}
		p, err := pipelines.Build(req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Encoder.Element != c.element || p.Encoder.Rung != c.rung || p.Encoder.ZeroCopy != (c.rung == pipelines.RungDMABuf) ||
			!strings.Contains(p.Encoder.Reason, c.reason) {
			t.Errorf("%s: %s on %s (zero-copy %v): %s", c.name, p.Encoder.Element, p.Encoder.Rung, p.Encoder.ZeroCopy, p.Encoder.Reason)
		}
		if p.Encoder.Hardware != (c.rung != pipelines.RungSoftware) {
			t.Errorf("%s: hardware %v", c.name, p.Encoder.Hardware)
		}
	}
	req := defaultRequest(t, pi4(t, p1080p30))
	req.Rung, req.Elements = pipelines.RungSoftware, elementsWithout{"x264enc", "openh264enc"}
	if _, err := pipelines.Build(req); !errors.Is(err, pipelines.ErrNoEncoder) {
		t.Errorf("no software encoder on the software rung: %v", err)
	}
}

// A pinned or configured input that is not there is an error naming it.
func TestMissingInput(t *testing.T) {
	req := defaultRequest(t, pi4(t, board.Signal{Width: 1920, Height: 1080, FPS: 30}))
	req.VideoPin = "/dev/video7"
	if _, err := pipelines.Build(req); !errors.Is(err, pipelines.ErrUnknownInput) || !strings.Contains(err.Error(), "/dev/video7") {
		t.Errorf("missing input: %v", err)
	}
	// The stable path finds the input whatever its /dev/video number, and
	// the capture reads it by that path.
	req.VideoPin = "/dev/v4l/by-path/platform-fe801000.csi-video-index0"
	p, err := pipelines.Build(req)
	if err != nil || p.Video.Device != req.VideoPin {
		t.Errorf("by stable path: %s, %v", p.Video.Device, err)
	}
}
