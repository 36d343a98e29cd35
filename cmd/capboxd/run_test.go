package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// capboxdBin is the real binary, built once for these tests.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func capboxd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "capboxd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "capboxd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// agentProc is capboxd run under test, with its log and systemd
// notifications captured.
type agentProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
	notify []string
}

func (p *agentProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *agentProc) notes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.notify...)
}

func (p *agentProc) waitLog(t *testing.T, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(p.logText(), what) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q in the log within %s:\n%s", what, d, p.logText())
}

func startAgent(t *testing.T, cfgFile string) *agentProc {
	t.Helper()
	return startAgentEnv(t, cfgFile, nil)
}

// startAgentEnv is startAgent with more environment (after the test's).
func startAgentEnv(t *testing.T, cfgFile string, env []string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.notify = append(p.notify, string(buf[:n]))
			p.mu.Unlock()
		}
	}()
	p.cmd = exec.Command(capboxd(t), "run", "-c", cfgFile)
	p.cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+sock, "STATE_DIRECTORY="+filepath.Join(dir, "state")), env...)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		conn.Close()
	})
	return p
}

func (p *agentProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("capboxd exit: %v\n%s", err, p.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("capboxd did not stop\n%s", p.logText())
	}
}

func srtReceiver(t *testing.T, port int, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("gst-launch-1.0", "-e", "srtsrc", fmt.Sprintf("uri=srt://127.0.0.1:%d?mode=listener", port), "!", "filesink", "location="+file)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		}
	})
	return cmd
}

// frames decodes a file with gst-launch and counts video frames and the
// largest gap between frame timestamps (ms).
func frames(t *testing.T, file string) (n int, maxGapMS float64) {
	t.Helper()
	out, _ := exec.Command("gst-launch-1.0", "-v", "filesrc", "location="+file, "!", "tsdemux", "!", "h264parse", "!",
		"avdec_h264", "!", "fakesink", "silent=false").CombinedOutput()
	var pts []float64
	for _, line := range strings.Split(string(out), "\n") {
		_, rest, ok := strings.Cut(line, "last-message = chain")
		if !ok {
			continue
		}
		n++
		if _, after, ok := strings.Cut(rest, "pts: "); ok {
			var h, m int
			var s float64
			if _, err := fmt.Sscanf(after, "%d:%d:%f", &h, &m, &s); err == nil {
				pts = append(pts, float64(h)*3600e3+float64(m)*60e3+s*1e3)
			}
		}
	}
	sort.Float64s(pts)
	for i := 1; i < len(pts); i++ {
		maxGapMS = max(maxGapMS, pts[i]-pts[i-1])
	}
	return n, maxGapMS
}

const configTemplate = `
capture: { video: test, audio: test }
encode: { max_width: 640, max_height: 360, max_fps: 30, bitrate_kbps: 800 }
outputs:
  - { name: a, url: "srt://127.0.0.1:%d" }
record: { enabled: true, path: %s, segment: 1h }
log: { level: info }
`

// The daemon end to end: start, reload with a changed output (the
// recording keeps running without a gap), reload with a bad config
// (refused with every error listed, nothing restarted), stop (the last
// segment closed), with systemd told each step.
func TestRunReloadStop(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	p1, p2 := freePort(t, "udp"), freePort(t, "udp")
	srtReceiver(t, p1, filepath.Join(dir, "a1.ts"))
	srtReceiver(t, p2, filepath.Join(dir, "a2.ts"))
	cfgFile := filepath.Join(dir, "capbox.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(configTemplate, p1, rec)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, cfgFile)
	p.waitLog(t, 15*time.Second, "msg=output_up part=a")
	time.Sleep(2 * time.Second)

	// A changed output: only that output restarts.
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(configTemplate, p2, rec)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, 10*time.Second, "config reloaded")
	time.Sleep(3 * time.Second)

	// A bad config: refused, every error listed, nothing restarted.
	bad := "encode: { bitrate_kbps: 5 }\noutputs: [{ name: a, url: \"ftp://x\" }]\nbogus: 1\n"
	if err := os.WriteFile(cfgFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(p.logText(), "output starting")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, 10*time.Second, "config reload refused")
	time.Sleep(2 * time.Second)
	log := p.logText()
	if !strings.Contains(log, "bogus") {
		t.Errorf("the refusal does not list the unknown key:\n%s", log)
	}
	if strings.Count(log, "output starting") != before {
		t.Error("a refused config restarted an output")
	}
	p.stop(t)

	segs, _ := filepath.Glob(filepath.Join(rec, "capbox-*.ts"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	n, gap := frames(t, segs[0])
	t.Logf("recording: %d frames, largest gap %.0f ms", n, gap)
	if n < 30*6 || gap > 100 {
		t.Errorf("recording disturbed by the reloads: %d frames, %.0f ms gap", n, gap)
	}
	if n2, _ := frames(t, filepath.Join(dir, "a2.ts")); n2 < 30*2 {
		t.Errorf("output a did not move to its new destination: %d frames", n2)
	}

	notes := strings.Join(p.notes(), "\n")
	for _, want := range []string{"READY=1", "STATUS=", "RELOADING=1", "STOPPING=1"} {
		if !strings.Contains(notes, want) {
			t.Errorf("systemd was not told %s:\n%s", want, notes)
		}
	}
}

// A config file that does not validate stops capboxd at start with every
// problem listed (it never runs half-configured).
func TestRunRefusesBadConfigAtStart(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "capbox.yaml")
	_ = os.WriteFile(cfgFile, []byte("encode: { bitrat: 1 }\nlog: { level: loud }\n"), 0o644)
	out, err := exec.Command(capboxd(t), "run", "-c", cfgFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bitrat") {
		t.Errorf("want a refusal naming the key: %v\n%s", err, out)
	}
	out, err = exec.Command(capboxd(t), "check", "-c", cfgFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 1") {
		t.Errorf("check: %v\n%s", err, out)
	}
}
