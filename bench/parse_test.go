package main

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTimeV(t *testing.T) {
	f, err := os.Open("testdata/time-v.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := parseTimeV(f)
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{User: 1200 * time.Millisecond, Sys: 270 * time.Millisecond, MaxRSSKiB: 70956, Wall: 3320 * time.Millisecond}
	if u != want {
		t.Errorf("got %+v, want %+v", u, want)
	}
	if u.CPU() != 1470*time.Millisecond {
		t.Errorf("CPU %s", u.CPU())
	}
}

func TestParseTimeVKilled(t *testing.T) {
	b, err := os.ReadFile("testdata/time-v-killed.txt")
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseTimeV(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := parseTimeVSignal(string(b)); got != 9 {
		t.Errorf("signal %d, want 9", got)
	}
	if u.MaxRSSKiB <= 0 {
		t.Errorf("max RSS %d", u.MaxRSSKiB)
	}
}

func TestParseTimeVIncomplete(t *testing.T) {
	_, err := parseTimeV(strings.NewReader("\tUser time (seconds): 1.5\n\tSystem time (seconds): x\n"))
	if err == nil {
		t.Fatal("a report without RSS and with a bad system time parsed")
	}
	for _, want := range []string{"System time", "Maximum resident set size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestClock(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0:03.32": 3320 * time.Millisecond, "1:02.50": 62500 * time.Millisecond, "1:00:01": time.Hour + time.Second,
	} {
		got, err := clock(in)
		if err != nil || got != want {
			t.Errorf("clock(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := clock("3.5"); err == nil {
		t.Error("clock accepted 3.5")
	}
}

func TestShellWords(t *testing.T) {
	// The shape of capboxd's launch line: single-quoted properties with
	// double quotes inside, caps with parentheses, a double space.
	line := `gst-launch-1.0 -e  videotestsrc is-live=true ! clockoverlay 'text="capbox test pattern"' 'time-format="%Y-%m-%d %H:%M:%S"' ! 'video/x-h264,profile=(string)high' ! srtsink 'uri="srt://127.0.0.1:9?mode=caller"' "a \"b\" \$c" d\ e`
	got, err := shellWords(line)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gst-launch-1.0", "-e", "videotestsrc", "is-live=true", "!", "clockoverlay", `text="capbox test pattern"`,
		`time-format="%Y-%m-%d %H:%M:%S"`, "!", "video/x-h264,profile=(string)high", "!", "srtsink", `uri="srt://127.0.0.1:9?mode=caller"`,
		`a "b" $c`, "d e"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, bad := range []string{`a 'b`, `a "b`, `"a\"`} {
		if _, err := shellWords(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestStatCPU(t *testing.T) {
	// A comm with a space and a parenthesis; utime 150 and stime 50 ticks.
	line := "4242 (x264enc0:s) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 8 0 100 1000000 500 18446744073709551615"
	comm, cpu, err := statCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if comm != "x264enc0:s) (x)" || cpu != 2*time.Second {
		t.Errorf("got %q %s", comm, cpu)
	}
	if _, _, err := statCPU("4242 x264 S 1"); err == nil {
		t.Error("a line without (comm) parsed")
	}
	// This process's own line, read live.
	if _, cpu, err := statCPU(mustRead(t, "/proc/self/stat")); err != nil || cpu < 0 {
		t.Errorf("own stat: %s %v", cpu, err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSpread(t *testing.T) {
	s := spreadOf([]float64{3, 1, math.NaN(), 2, 10})
	if s != (Spread{N: 4, Median: 2.5, Min: 1, Max: 10}) {
		t.Errorf("got %+v", s)
	}
	if s := spreadOf([]float64{5, 1, 3}); s.Median != 3 {
		t.Errorf("odd median %v", s.Median)
	}
	if s := spreadOf(nil); s.N != 0 || s.format("%.1f") != "n/a" || verdict(s, 1) != "not measured" {
		t.Errorf("empty: %+v", s)
	}
	// Pairs with a failed run (NaN) or a zero baseline are skipped.
	if got := ratios([]float64{2, math.NaN(), 3, 4}, []float64{1, 1, 0, 2}); !reflect.DeepEqual(got, []float64{2, 2}) {
		t.Errorf("ratios %v", got)
	}
	if verdict(Spread{N: 1, Median: 1.04}, 1.03) != "MISSED" || verdict(Spread{N: 1, Median: 1.03}, 1.03) != "met" {
		t.Error("verdict")
	}
	if got := (Spread{N: 3, Median: 1, Min: 0.5, Max: 2}).format("%.1f"); got != "1.0 (0.5-2.0)" {
		t.Error(got)
	}
}

func TestReadZeroCopy(t *testing.T) {
	dir := t.TempDir()
	failed := filepath.Join(dir, "failed.jsonl")
	if err := os.WriteFile(failed, []byte(`{"name":"gst-dmabuf-zero-copy","status":"fail","reasons":["v4l2src exported no dmabuf"]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A row whose user CPU per frame was below a millisecond has no user ratio: not an error.
	unmeasured := filepath.Join(dir, "unmeasured.jsonl")
	if err := os.WriteFile(unmeasured, []byte(`{"name":"gst-dmabuf-zero-copy","status":"pass","facts":{"cpu_ratio_mmap_over_dmabuf":"0.96"},"timings_ms":{"dmabuf_cpu_per_frame":88}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := readZeroCopy([]string{unmeasured}); err != nil || strings.Contains(strings.Join(u.Problems, "\n"), "user_cpu_ratio") ||
		len(u.Rows) != 1 || u.Rows[0].UserRatio.N != 0 || u.Rows[0].CPURatio.Median != 0.96 {
		t.Errorf("a row without a user ratio: %+v, %v", u, err)
	}
	z, err := readZeroCopy([]string{"testdata/e2e-results.jsonl", failed, filepath.Join(dir, "missing.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Rows) != 2 {
		t.Fatalf("rows %+v", z.Rows)
	}
	gst, agent := z.Rows[0], z.Rows[1]
	if gst.Name != "gst-dmabuf-zero-copy" || len(gst.Runs) != 1 || gst.CPURatio.Median != 0.68 || gst.UserRatio.Median != 0.73 || gst.DMABufCPUms.Median != 177.25 {
		t.Errorf("gst row %+v", gst)
	}
	if agent.Name != "capboxd-zero-copy-run" || len(agent.Runs) != 1 || agent.Runs[0].Imports != "65" || agent.CPURatio.Median != 2.15 || agent.MMAPCPUms.Median != 411.739 {
		t.Errorf("capboxd row %+v", agent)
	}
	// The failed row and the missing file are named, not hidden.
	joined := strings.Join(z.Problems, "\n")
	for _, want := range []string{"did not pass", "missing.jsonl"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", z.Problems, want)
		}
	}
	if _, err := readZeroCopy([]string{failed}); err == nil {
		t.Error("a failed row alone gave a figure")
	}
}

func TestLogMarks(t *testing.T) {
	start := time.Date(2026, 11, 25, 15, 49, 36, 900_000_000, time.UTC)
	path := filepath.Join(t.TempDir(), "capboxd.log")
	log := `time=2026-11-25T15:49:36.948Z level=INFO msg="capboxd starting" version=x
time=2026-11-25T15:49:36.951Z level=INFO msg="pipeline planned" video=test
time=2026-11-25T15:49:37.389Z level=INFO msg=video_started part=video msg=""
time=2026-11-25T15:49:37.541Z level=INFO msg=output_up part=ingest msg=""
time=2026-11-25T15:49:39.000Z level=INFO msg=output_up part=ingest msg=""
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logMarks(path, start, capboxdMarks)
	want := map[string]float64{"capboxd starting": 48, "pipeline planned": 51, "video_started": 489, "output_up": 641}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
