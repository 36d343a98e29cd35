//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/broker"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
)

const (
	fleetPassword = "fleet-operator-pw-1"
	streamKey     = "sk-live-9f8e7d6c5b4a"
)

func boxPassword(id string) string { return "pw-" + id + "-0123456789" }

// newSimBox is a simulated box (fleettest's, behind the real link): one
// RTMP output up and one connecting, a Raspberry Pi 4's detection, a
// temperature that differs per box.
func newSimBox(i int) *fleettest.Box {
	b := fleettest.New()
	b.SetState(func(s *wire.State) {
		*s = wire.State{Mode: wire.ModeStreaming, Moods: map[string]wire.Mood{wire.PartCapture: wire.MoodHappy},
			Capture: wire.CaptureState{Signal: "locked", Format: "1080p60"},
			Outputs: map[string]string{"primary": wire.OutputUp, "backup": wire.OutputConnecting}, Recording: true}
	})
	b.SetTelemetry(func(t *wire.Telemetry) {
		*t = wire.Telemetry{UptimeS: 5, Sys: wire.SysHealth{CPUPct: 10, TempsC: map[string]float64{"cpu-thermal": 40 + float64(i%30)}, ClockSynced: true},
			Outputs: []wire.OutputHealth{{Name: "primary", Proto: "srt", State: "up", BitrateKbps: 4000}}}
	})
	b.SetMeta(func(m *wire.Meta) {
		*m = wire.Meta{Agent: "0.3.0-sim", Outputs: []wire.OutputInfo{{Name: "primary", Proto: "rtmp", URL: "rtmp://ingest.example.org/live/" + streamKey, Enabled: true}},
			Detection: json.RawMessage(`{"board":{"id":"rpi4","model":"Raspberry Pi 4"},"chosen":{"video_input":"/dev/video0","encoder":"v4l2h264enc","zero_copy":true}}`)}
	})
	b.SetSnapshot(fleettest.JPEG(32, 18))
	return b
}

// lab is `capboxctl broker` serving on loopback plus the password files.
type lab struct {
	t      *testing.T
	dir    string
	url    string
	pwFile string // the client's password
	db     string
}

var brokerLine = regexp.MustCompile(`broker on (mqtts?://[0-9.:]+)`)

// startLab runs `capboxctl broker` itself (the embedded mochi) and waits
// for its address.
func startLab(t *testing.T, boxes ...string) *lab {
	t.Helper()
	l := &lab{t: t, dir: t.TempDir()}
	l.db = filepath.Join(l.dir, "passwd")
	if err := broker.SetPassword(l.db, "fleet", fleetPassword); err != nil {
		t.Fatal(err)
	}
	for _, id := range boxes {
		if err := broker.SetPassword(l.db, id, boxPassword(id)); err != nil {
			t.Fatal(err)
		}
	}
	l.pwFile = filepath.Join(l.dir, "fleet.pw")
	if err := os.WriteFile(l.pwFile, []byte(fleetPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"broker", "--listen", "127.0.0.1:0", "--password-file", l.db}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("broker printed nothing")
	}
	m := brokerLine.FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("broker said %q", sc.Text())
	}
	l.url = m[1]
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("broker exited %d", code)
		}
	})
	return l
}

// ctl runs one capboxctl command against the lab.
func (l *lab) ctl(args ...string) (int, string, string) {
	l.t.Helper()
	var out, errw bytes.Buffer
	full := append([]string{"--broker", l.url, "--password-file", l.pwFile}, args...)
	code := run(context.Background(), full, &out, &errw)
	return code, out.String(), errw.String()
}

// box runs a simulated box's link.
func (l *lab) box(id string, sb *fleettest.Box) (stop func()) {
	l.t.Helper()
	f := config.Default().Fleet
	f.PasswordFile = filepath.Join(l.dir, id+".pw")
	if err := os.WriteFile(f.PasswordFile, []byte(boxPassword(id)), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return l.runBox(id, sb, f)
}

// boxTLS runs a simulated box that authenticates with a client
// certificate only.
func (l *lab) boxTLS(id string, sb *fleettest.Box, ca, cert, key string) (stop func()) {
	f := config.Default().Fleet
	f.CA, f.Cert, f.Key = ca, cert, key
	return l.runBox(id, sb, f)
}

func (l *lab) runBox(id string, sb *fleettest.Box, f config.Fleet) (stop func()) {
	l.t.Helper()
	f.Broker, f.Username = l.url, id
	f.TelemetryInterval = config.Duration(time.Second)
	link, err := fleet.New(f, id, sb, slog.New(slog.DiscardHandler), fleet.WithStateDir(l.t.TempDir()), fleet.WithSecrets(streamKey))
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = link.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	l.t.Cleanup(stop)
	return stop
}

// waitLs polls `ls --json` until cond holds.
func (l *lab) waitLs(what string, cond func(rows []row) bool) []row {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, errw := l.ctl("ls", "--json", "--wait", "800ms")
		var rows []row
		if code == 0 && json.Unmarshal([]byte(out), &rows) == nil && cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s: %d %s %s", what, code, out, errw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func rowByID(rows []row, id string) *row {
	for i := range rows {
		if rows[i].ID == id {
			return &rows[i]
		}
	}
	return nil
}

func TestLsStatusAndStale(t *testing.T) {
	l := startLab(t, "room-a", "room-b", "room-c")
	a, b, c := newSimBox(1), newSimBox(2), newSimBox(3)
	l.box("room-a", a)
	l.box("room-b", b)
	stopC := l.box("room-c", c)
	b.SetTelemetry(func(t *wire.Telemetry) { t.Sys.TempsC["cpu-thermal"] = 81.5 })
	b.SetState(func(s *wire.State) {
		s.Mode, s.Capture = wire.ModeNoSignal, wire.CaptureState{Signal: "no_signal"}
		s.Moods[wire.PartCapture] = wire.MoodHungry
	})
	l.waitLs("three boxes with telemetry and room-b without signal", func(rows []row) bool {
		rb := rowByID(rows, "room-b")
		return len(rows) == 3 && rb != nil && rb.Signal == "no_signal" && rb.TempC != nil && *rb.TempC == 81.5
	})
	stopC()
	rows := l.waitLs("room-c offline", func(rows []row) bool { r := rowByID(rows, "room-c"); return r != nil && !r.Online })

	if rows[0].ID != "room-a" || rows[1].ID != "room-b" || rows[2].ID != "room-c" {
		t.Errorf("not sorted: %+v", rows)
	}
	ra := rowByID(rows, "room-a")
	if !ra.Online || ra.Stale || ra.OutputsUp != 1 || ra.OutputsTotal != 2 || ra.Mood != "happy" || ra.Format != "1080p60" {
		t.Errorf("room-a row %+v", ra)
	}
	if rb := rowByID(rows, "room-b"); rb.Mood != "hungry" || rb.Mode != wire.ModeNoSignal {
		t.Errorf("room-b row %+v", rb)
	}
	if rc := rowByID(rows, "room-c"); rc.StatusState != wire.StatusDisconnected {
		t.Errorf("room-c row %+v", rc)
	}

	// The table, answered well within 2 s.
	start := time.Now()
	code, out, errw := l.ctl("ls")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("ls took %s", took)
	}
	if code != 0 || !strings.Contains(out, "ID") || !regexp.MustCompile(`room-b\s+yes\s+hungry\s+no_signal\s+no_signal\s+1/2\s+81\.5°C`).MatchString(out) ||
		!regexp.MustCompile(`room-c\s+no\s`).MatchString(out) || !strings.Contains(out, "3 boxes, 2 online") {
		t.Errorf("ls: %d\n%s%s", code, out, errw)
	}

	// A box that says it is online but whose last telemetry is old is
	// stale (here a silent box, written as the fleet account can).
	pub := func(suffix string, v any) {
		b, _ := json.Marshal(v)
		c, err := connect(context.Background(), &globals{broker: l.url, username: "fleet", passwordFile: l.pwFile, prefix: "capbox"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		if err := c.publish(context.Background(), "capbox/room-z/"+suffix, true, b); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Minute).UnixMilli()
	pub("status", wire.Status{V: 1, Online: true, State: "ready", Sess: 4, Seq: 1, TS: old})
	pub("telemetry", wire.Telemetry{Header: wire.Header{V: 1, TS: old, Sess: 4, Seq: 9}, IntervalS: 10})
	rows = l.waitLs("room-z", func(rows []row) bool { return rowByID(rows, "room-z") != nil })
	if rz := rowByID(rows, "room-z"); !rz.Stale || !rz.Online {
		t.Errorf("room-z not stale: %+v", rz)
	}
	if _, out, _ := l.ctl("ls"); !regexp.MustCompile(`room-z\s+STALE`).MatchString(out) {
		t.Errorf("ls does not mark room-z:\n%s", out)
	}

	code, out, errw = l.ctl("status", "room-b")
	for _, want := range []string{"room-b  online=yes", "board     rpi4", "mode=no_signal", "temps     cpu-thermal=81.5°C", "rtmp://ingest.example.org/live/***"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q: %d\n%s%s", want, code, out, errw)
		}
	}
	if strings.Contains(out, streamKey) {
		t.Error("status shows a stream key")
	}
	code, out, _ = l.ctl("status", "room-b", "--json")
	var st map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["state"] == nil || st["telemetry"] == nil || st["meta"] == nil {
		t.Errorf("status --json: %d %s", code, out)
	}
	if code, _, _ := l.ctl("status", "nobody"); code != exitFailed {
		t.Errorf("status of an unknown box exited %d", code)
	}
	if code, _, _ := l.ctl("status", "bad/id"); code != exitUsage {
		t.Errorf("status of a bad id exited %d", code)
	}
}

func TestCmd(t *testing.T) {
	l := startLab(t, "room-a")
	l.box("room-a", newSimBox(1))
	l.waitLs("room-a", func(rows []row) bool { return len(rows) == 1 && rows[0].Online })

	if code, out, errw := l.ctl("cmd", "room-a", "ping"); code != 0 || !strings.Contains(out, "room-a: ok") || !strings.Contains(out, `"pong": true`) {
		t.Errorf("ping: %d %s %s", code, out, errw)
	}
	if code, out, _ := l.ctl("cmd", "room-a", "restart_output", "name=backup", "--json"); code != 0 || !strings.Contains(out, `"status": "ok"`) {
		t.Errorf("restart_output: %d %s", code, out)
	}
	if code, _, errw := l.ctl("cmd", "room-a", "restart_output", "name=nope"); code != exitFailed || !strings.Contains(errw, "rejected E_NO_OUTPUT") {
		t.Errorf("unknown output: %d %s", code, errw)
	}
	if code, _, errw := l.ctl("cmd", "room-a", "set_log_level", "level=loud"); code != exitUsage || !strings.Contains(errw, "level") {
		t.Errorf("bad level: %d %s", code, errw)
	}
	if code, _, errw := l.ctl("cmd", "room-a", "format_disk"); code != exitFailed || !strings.Contains(errw, "unsupported") {
		t.Errorf("unknown command: %d %s", code, errw)
	}
	// Same id twice: the second answer is the first one's.
	if code, _, _ := l.ctl("cmd", "room-a", "stop_output", "name=backup", "--id", "op-1"); code != 0 {
		t.Errorf("stop_output exited %d", code)
	}
	if code, out, _ := l.ctl("cmd", "room-a", "stop_output", "name=backup", "--id", "op-1"); code != 0 || !strings.Contains(out, "duplicate (first answer: ok)") {
		t.Errorf("resend: %d %s", code, out)
	}
	jpg := filepath.Join(t.TempDir(), "snap.jpg")
	if code, out, errw := l.ctl("cmd", "room-a", "snapshot", "-o", jpg); code != 0 || !strings.Contains(out, "JPEG written") {
		t.Errorf("snapshot: %d %s %s", code, out, errw)
	}
	f, err := os.Open(jpg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := jpeg.Decode(f); err != nil || img.Bounds().Dx() != 32 {
		t.Errorf("snapshot file: %v", err)
	}
	if code, _, errw := l.ctl("cmd", "room-q", "ping", "--timeout", "1s"); code != exitTimeout || !strings.Contains(errw, "no answer") {
		t.Errorf("offline box: %d %s", code, errw)
	}
}

func TestConfigSetGet(t *testing.T) {
	l := startLab(t, "room-a")
	sb := newSimBox(1)
	l.box("room-a", sb)
	l.waitLs("room-a", func(rows []row) bool { return len(rows) == 1 && rows[0].Online })
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("encode:\n  bitrate_kbps: 6000\noutputs:\n  - name: primary\n    url: rtmp://ingest.example.org/live\n    key: "+streamKey+"\nrecord: {segment: 10m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errw := l.ctl("config", "set", "room-a", good); code != 0 || !strings.Contains(out, "version 1 applied") {
		t.Fatalf("config set: %d %s %s", code, out, errw)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("encode:\n  bitrate_kbps: 1\nrecord:\n  format: avi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := l.ctl("config", "set", "room-a", bad)
	if code != exitFailed || !strings.Contains(out, "version 2 rejected (applied 1)") || !strings.Contains(out, "encode.bitrate_kbps") || !strings.Contains(out, "record.format") {
		t.Errorf("bad config: %d %s", code, out)
	}
	if code, out, _ := l.ctl("config", "set", "room-a", good); code != 0 || !strings.Contains(out, "version 3 applied") {
		t.Errorf("next version: %d %s", code, out)
	}
	code, out, _ = l.ctl("config", "get", "room-a")
	if code != 0 || !strings.Contains(out, "reported: desired 3, applied 3, applied, effective sha256 sha-3") || !strings.Contains(out, `"key": "***"`) || strings.Contains(out, streamKey) {
		t.Errorf("config get: %d %s", code, out)
	}
	if _, out, _ := l.ctl("config", "get", "room-a", "--reveal"); !strings.Contains(out, streamKey) {
		t.Errorf("--reveal hides the key:\n%s", out)
	}
	if sb.State().ConfigVersion != 3 {
		t.Errorf("box runs version %d", sb.State().ConfigVersion)
	}
	notYAML := filepath.Join(dir, "x.yaml")
	_ = os.WriteFile(notYAML, []byte("- just\n- a list\n"), 0o600)
	if code, _, _ := l.ctl("config", "set", "room-a", notYAML); code != exitUsage {
		t.Errorf("a list as config exited %d", code)
	}
}

func TestWatchPlain(t *testing.T) {
	l := startLab(t, "room-a", "room-b")
	sa := newSimBox(1)
	l.box("room-a", sa)
	l.waitLs("room-a", func(rows []row) bool { return len(rows) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--broker", l.url, "--password-file", l.pwFile, "watch"}, &out, io.Discard)
	}()
	time.Sleep(500 * time.Millisecond)
	stopB := l.box("room-b", newSimBox(2))
	sa.Emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: "cable out"})
	sa.SetState(func(s *wire.State) { s.Mode = wire.ModeNoSignal })
	time.Sleep(1500 * time.Millisecond)
	stopB()
	time.Sleep(500 * time.Millisecond)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch exited %d", code)
	}
	text := out.String()
	for _, want := range []string{"room-a online ready sess=1", "room-a event signal_lost: cable out", "room-a state mode=no_signal",
		"room-b online ready", "room-b offline disconnected (shutdown)"} {
		if !strings.Contains(text, want) {
			t.Errorf("watch lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("escape codes on a non-terminal")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPasswdAndACL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	stdin = strings.NewReader("s3cret-pass\n")
	defer func() { stdin = os.Stdin }()
	var out, errw bytes.Buffer
	if code := run(context.Background(), []string{"passwd", file, "room-a"}, &out, &errw); code != 0 {
		t.Fatalf("passwd: %d %s", code, errw.String())
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "room-a:$7$101$") || strings.Contains(string(b), "s3cret") {
		t.Errorf("password file: %q", b)
	}
	out.Reset()
	if code := run(context.Background(), []string{"acl"}, &out, &errw); code != 0 ||
		!strings.Contains(out.String(), "pattern readwrite capbox/%u/status\n") || !strings.Contains(out.String(), "user fleet\ntopic readwrite capbox/#") {
		t.Errorf("acl: %s", out.String())
	}
}

func TestUsageAndFlags(t *testing.T) {
	var out, errw bytes.Buffer
	if code := run(context.Background(), nil, &out, &errw); code != exitUsage || !strings.Contains(out.String(), "watch") {
		t.Errorf("no args: %d %s", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errw); code != exitUsage {
		t.Errorf("unknown command: %d", code)
	}
	if code := run(context.Background(), []string{"--broker", "mqtt://192.0.2.1:1883", "ls"}, &out, &errw); code != exitTimeout ||
		!strings.Contains(errw.String(), "in clear") {
		t.Errorf("insecure broker: %d %s", code, errw.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, &out, &errw); code != 0 || !strings.Contains(out.String(), "protocol v1") {
		t.Errorf("version: %s", out.String())
	}
}
