package gst

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// testRequest is a small, cheap plan: test pattern 640x360@30 -> x264.
func testRequest(outs ...pipelines.OutputSpec) pipelines.Request {
	return pipelines.Request{
		VideoPin: "test", AudioPin: "auto",
		BitrateKbps: 1000, KeyframeInterval: time.Second,
		MaxWidth: 640, MaxHeight: 360, MaxFPS: 30,
		Outputs: outs, SlateText: "Back soon",
		Elements: Registry{},
	}
}

func mustOutput(t *testing.T, name, url string) pipelines.OutputSpec {
	t.Helper()
	o, err := pipelines.ParseOutput(name, url, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustPlan(t *testing.T, req pipelines.Request) pipelines.Plan {
	t.Helper()
	p, err := pipelines.Build(req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freeUDPPort and freeTCPPort find a free loopback port.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runEngine starts an engine and returns a stop function that ends it
// cleanly (EOS) and waits.
func runEngine(t *testing.T, plan pipelines.Plan) (*Engine, func()) {
	t.Helper()
	e := New(plan, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("engine: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("engine did not stop within 20 s")
			}
		})
	}
	t.Cleanup(stop)
	return e, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// proc is a helper process (receiver, server) killed at cleanup.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, out: &out}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}

// srtReceiver records what an SRT peer sends into a file: caller mode
// connects to a listener output, listener mode serves a caller output.
func srtReceiver(t *testing.T, port int, listener bool, file string) *proc {
	mode := "caller"
	if listener {
		mode = "listener"
	}
	uri := fmt.Sprintf("srt://127.0.0.1:%d?mode=%s", port, mode)
	return startProc(t, "gst-launch-1.0", "-e", "srtsrc", "uri="+uri, "!", "filesink", "location="+file)
}

// media is what decoding a file found.
type media struct {
	videoFrames, audioBuffers int
	width, height             int
	// maxGap is the largest gap between consecutive video timestamps.
	maxGap     time.Duration
	first, end time.Duration
	videoCodec string
	hasAudio   bool
	// sizes are the distinct frame sizes in order ("640x360").
	sizes []string
}

// analyze decodes a file to the end and counts frames and timestamp gaps.
func analyze(t *testing.T, file string) media {
	t.Helper()
	Init()
	desc := fmt.Sprintf("filesrc location=%s ! decodebin name=d d. ! queue ! video/x-raw ! fakesink name=v sync=false d. ! queue ! audio/x-raw ! fakesink name=a sync=false", file)
	p, err := gst.NewPipelineFromString(desc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var m media
	var pts []time.Duration
	v, _ := p.GetElementByName("v")
	a, _ := p.GetElementByName("a")
	v.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		mu.Lock()
		defer mu.Unlock()
		m.videoFrames++
		if b := info.GetBuffer(); b != nil {
			pts = append(pts, time.Duration(b.PresentationTimestamp()))
		}
		if caps := pad.GetCurrentCaps(); caps != nil {
			s := caps.GetStructureAt(0)
			w, _ := s.GetValue("width")
			h, _ := s.GetValue("height")
			wi, _ := w.(int)
			hi, _ := h.(int)
			if m.width == 0 {
				m.width, m.height = wi, hi
			}
			if size := fmt.Sprintf("%dx%d", wi, hi); len(m.sizes) == 0 || m.sizes[len(m.sizes)-1] != size {
				m.sizes = append(m.sizes, size)
			}
		}
		return gst.PadProbeOK
	})
	a.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn {
		mu.Lock()
		m.audioBuffers++
		mu.Unlock()
		return gst.PadProbeOK
	})
	if err := p.SetState(gst.StatePlaying); err != nil {
		t.Fatal(err)
	}
	msg := p.GetPipelineBus().TimedPopFiltered(gst.ClockTime(60*time.Second), gst.MessageEOS|gst.MessageError)
	_ = p.SetState(gst.StateNull)
	if msg == nil {
		t.Fatalf("decoding %s: no end within 60 s", file)
	}
	if msg.Type() == gst.MessageError {
		// A file cut by a crash ends in an error at the cut: what was
		// decoded before it still counts.
		t.Logf("decoding %s ended with: %v", file, msg.ParseError())
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
	for i := 1; i < len(pts); i++ {
		if g := pts[i] - pts[i-1]; g > m.maxGap {
			m.maxGap = g
		}
	}
	if len(pts) > 0 {
		m.first, m.end = pts[0], pts[len(pts)-1]
	}
	m.hasAudio = m.audioBuffers > 0
	m.videoCodec = discoverVideoCodec(t, file)
	return m
}

// discoverVideoCodec asks gst-discoverer-1.0 what the video stream is.
func discoverVideoCodec(t *testing.T, file string) string {
	out, _ := exec.Command("gst-discoverer-1.0", file).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "video #") {
			_, codec, _ := strings.Cut(line, ": ")
			return strings.TrimSpace(codec)
		}
	}
	return ""
}

// segments lists recorded files in order.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func outputState(e *Engine, name string) pipelines.OutputState {
	for _, o := range e.Stats().Outputs {
		if o.Name == name {
			return o.State
		}
	}
	return ""
}
