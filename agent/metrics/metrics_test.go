package metrics

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/agent/health"
)

func TestResolveListen(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{":9101", "127.0.0.1:9101"},
		{"9101", "127.0.0.1:9101"},
		{"0.0.0.0:9101", "0.0.0.0:9101"},
		{"[::]:9101", "[::]:9101"},
		{"[::1]:9101", "[::1]:9101"},
		{"localhost:9101", "localhost:9101"},
		{":0", "127.0.0.1:0"},
	} {
		got, err := ResolveListen(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %q %v want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ":http", ":65536", "1.2.3.4", "::1:9101", ":-1"} {
		if got, err := ResolveListen(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

// weird is an output name with every character the format escapes.
const weird = "we\"ird\\name\nline2"

func snapshot() wire.Telemetry {
	return wire.Telemetry{
		Header: wire.Header{V: 1, TS: 1_700_000_000_500}, UptimeS: 3630, IntervalS: 10, ConfigVersion: 17,
		Sys: wire.SysHealth{CPUPct: 41.5, Load1: 1.2, MemTotalMB: 3884, MemAvailMB: 2210,
			Disks:    []wire.Disk{{Mount: "/", TotalMB: 7000, FreeMB: 3000}, {Mount: "/data/recordings", TotalMB: 29800, FreeMB: 21000}},
			TempsC:   map[string]float64{"cpu-thermal": 67.5, "soc-thermal": 61},
			Throttle: wire.Throttle{Now: []string{}, SinceBoot: []string{"soft_temp_limit"}}, ClockSynced: true},
		Net: []wire.NetIf{
			{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000, Addrs: []string{"192.0.2.10/24"}, RxBytes: 1, TxBytes: 2},
			{If: "wlan0", Oper: "down", SpeedMbps: -1},
		},
		Capture: &wire.CaptureHealth{Device: "/dev/v4l/by-path/platform-fe801000.csi-video-index0", Signal: true, Width: 1920, Height: 1080, FPS: 59.94, Frames: 216000, Dropped: 12},
		Audio:   &wire.AudioHealth{Device: "hw:CARD=tc358743", PeakDBFS: -12.5, RMSDBFS: -23},
		Encoder: &wire.EncoderHealth{Element: "v4l2h264enc", Hardware: true, ZeroCopy: true, BitrateKbps: 6000, Frames: 216000},
		Outputs: []wire.OutputHealth{
			{Name: "primary", Proto: "srt", State: "up", Bytes: 123456789, BitrateKbps: 5980, Reconnects: 1, RTTMs: 35, LossPct: 0.1},
			{Name: weird, Proto: "rtmps", State: "connecting", Reconnects: 4},
		},
		Recording: &wire.RecordingHealth{Path: "/data/recordings", Segments: 12, Bytes: 1 << 30, FreeMB: 21000},
	}
}

type src struct{}

func (src) Latest() wire.Telemetry { return snapshot() }
func (src) Moods() map[string]wire.Mood {
	return map[string]wire.Mood{"capture": wire.MoodHappy, wire.OutputPart(weird): wire.MoodSad}
}
func (src) Thermal() health.ThermalStatus {
	return health.ThermalStatus{Level: health.ThermalWarm, Zones: []health.ZoneInput{{Name: "cpu-thermal", TempC: 67.5, PointC: 80}, {Name: "x86_pkg_temp", TempC: 40}}}
}

type series struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parse reads the text exposition format strictly: every sample's family
// is declared (HELP then TYPE) right before its samples, families are not
// split, label values are unescaped, no series repeats.
func parse(t *testing.T, body string) []series {
	t.Helper()
	var out []series
	types := map[string]string{}
	done := map[string]bool{}
	seen := map[string]bool{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(body))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(rest, " ")
			if done[name] || types[name] != "" {
				t.Fatalf("line %d: family %s declared twice", ln, name)
			}
			if cur != "" {
				done[cur] = true
			}
			cur = name
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if name != cur || (typ != "gauge" && typ != "counter") {
				t.Fatalf("line %d: TYPE %q after HELP for %q", ln, rest, cur)
			}
			if typ == "counter" && !strings.HasSuffix(name, "_total") {
				t.Fatalf("line %d: counter %s without _total", ln, name)
			}
			types[name] = typ
			continue
		}
		s := parseSample(t, ln, line)
		if s.name != cur || types[cur] == "" {
			t.Fatalf("line %d: sample of %s inside family %s", ln, s.name, cur)
		}
		key := fmt.Sprint(s.name, s.labels)
		if seen[key] {
			t.Fatalf("line %d: series repeated: %s", ln, key)
		}
		seen[key] = true
		out = append(out, s)
	}
	return out
}

func parseSample(t *testing.T, ln int, line string) series {
	t.Helper()
	s := series{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		t.Fatalf("line %d: %q", ln, line)
	}
	s.name = line[:i]
	if !nameRE.MatchString(s.name) {
		t.Fatalf("line %d: bad name %q", ln, s.name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				t.Fatalf("line %d: label without value: %q", ln, rest)
			}
			lname := rest[:eq]
			if !labelRE.MatchString(lname) {
				t.Fatalf("line %d: bad label name %q", ln, lname)
			}
			rest = rest[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' {
					j++
					switch rest[j] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						t.Fatalf("line %d: bad escape \\%c", ln, rest[j])
					}
					continue
				}
				val.WriteByte(rest[j])
			}
			if j == len(rest) {
				t.Fatalf("line %d: unterminated label value", ln)
			}
			s.labels[lname] = val.String()
			rest = rest[j+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				t.Fatalf("line %d: after label: %q", ln, rest)
			}
			rest = rest[1:]
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimPrefix(rest, " "), 64)
	if !strings.HasPrefix(rest, " ") || err != nil {
		t.Fatalf("line %d: value %q: %v", ln, rest, err)
	}
	s.value = v
	return s
}

func find(ss []series, name string, labels ...string) (float64, bool) {
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestServeOverLoopback(t *testing.T) {
	s, err := New(":0", src{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("a bare port bound %v, want loopback", ip)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ss := parse(t, string(body))
	t.Logf("page: %d bytes, %d series", len(body), len(ss))

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"capbox_temperature_celsius", []string{"zone", "cpu-thermal"}, 67.5},
		{"capbox_output_up", []string{"name", "primary", "proto", "srt"}, 1},
		{"capbox_output_bytes_total", []string{"name", "primary"}, 123456789},
		{"capbox_output_rtt_seconds", []string{"name", "primary"}, 0.035},
		{"capbox_output_loss_ratio", []string{"name", "primary"}, 0.001},
		{"capbox_output_bitrate_bits_per_second", []string{"name", "primary"}, 5_980_000},
		// The escaped name comes back intact.
		{"capbox_output_reconnects_total", []string{"name", weird}, 4},
		{"capbox_output_state", []string{"name", weird, "state", "connecting"}, 1},
		{"capbox_output_state", []string{"name", weird, "state", "up"}, 0},
		{"capbox_mood", []string{"part", "output:" + weird, "mood", "sad"}, 1},
		{"capbox_mood", []string{"part", "capture", "mood", "sad"}, 0},
		{"capbox_throttle_occurred", []string{"reason", "soft_temp_limit"}, 1},
		{"capbox_throttle_active", []string{"reason", "under_voltage"}, 0},
		{"capbox_disk_free_bytes", []string{"mount", "/data/recordings"}, 21000 * (1 << 20)},
		{"capbox_network_speed_bytes", []string{"interface", "eth0"}, 125_000_000},
		{"capbox_network_carrier", []string{"interface", "wlan0"}, 0},
		{"capbox_capture_dropped_frames_total", nil, 12},
		{"capbox_encoder_info", []string{"element", "v4l2h264enc", "hardware", "true", "zero_copy", "true"}, 1},
		{"capbox_cpu_busy_ratio", nil, 0.415},
		{"capbox_telemetry_timestamp_seconds", nil, 1_700_000_000.5},
		{"capbox_thermal_level", []string{"level", "warm"}, 1},
		{"capbox_thermal_throttle_point_celsius", []string{"zone", "cpu-thermal"}, 80},
		{"capbox_clock_synced", nil, 1},
	} {
		got, ok := find(ss, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, absent := range [][]string{
		{"capbox_network_speed_bytes", "interface", "wlan0"},              // speed unknown
		{"capbox_thermal_throttle_point_celsius", "zone", "x86_pkg_temp"}, // point unknown
		{"capbox_output_loss_ratio", "name", weird},                       // not SRT
	} {
		if _, ok := find(ss, absent[0], absent[1:]...); ok {
			t.Errorf("%v written", absent)
		}
	}

	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/metrics", http.StatusMethodNotAllowed},
		{"GET", "/secrets", http.StatusNotFound},
		{"GET", "/", http.StatusOK},
		{"HEAD", "/metrics", http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after cancel")
	}
}

func TestRunBindsLoopbackPort(t *testing.T) {
	// Find a free loopback port, then let Run bind it from a bare ":port".
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	s, err := New(fmt.Sprintf(":%d", port), src{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var resp *http.Response
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if resp, err = http.Get(url); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	// A second server on the same port fails, and says so.
	s2, _ := New(fmt.Sprintf("127.0.0.1:%d", port), src{})
	if err := s2.Run(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type emptySrc struct{}

func (emptySrc) Latest() wire.Telemetry { return wire.Telemetry{} }

func TestNoSampleYet(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, emptySrc{}.Latest(), nil, nil); err != nil || b.Len() != 0 {
		t.Fatalf("before the first sample: %q %v", b.String(), err)
	}
}

func TestEscaping(t *testing.T) {
	if got := escapeLabel("a\\b\"c\nd"); got != `a\\b\"c\nd` {
		t.Fatalf("label %q", got)
	}
	if got := escapeHelp("a\\b\"c\nd"); got != `a\\b"c\nd` {
		t.Fatalf("help %q", got)
	}
}

func BenchmarkWrite(b *testing.B) {
	t := snapshot()
	var s src
	m, th := s.Moods(), s.Thermal()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		_ = Write(&buf, t, m, &th)
	}
	b.ReportMetric(float64(buf.Len()), "page-bytes")
}
