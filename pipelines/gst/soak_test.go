package gst

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"capbox/pipelines"
)

// rssKiB reads this process's resident set size (/proc/self/status VmRSS, kB).
func rssKiB(t *testing.T) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// A soak of repeated output failures: an RTMP output whose server is
// down fails and is retried every half second for the whole run, beside
// a working SRT output and the recording. Memory must stay flat. Runs
// only with CAPBOX_SOAK set to a duration (make soak: 10m).
func TestSoakRepeatedOutputFailures(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("CAPBOX_SOAK"))
	if err != nil {
		t.Skip("set CAPBOX_SOAK=10m to run the soak")
	}
	dir := t.TempDir()
	port := freeUDPPort(t)
	srtReceiver(t, port, true, filepath.Join(dir, "r.ts"))
	dead := freeTCPPort(t)
	req := testRequest(
		mustOutput(t, "srt", fmt.Sprintf("srt://127.0.0.1:%d", port)),
		mustOutput(t, "dead", fmt.Sprintf("rtmp://127.0.0.1:%d/live/key", dead)),
	)
	req.Record = &pipelines.RecordSettings{Dir: filepath.Join(dir, "rec"), Format: "ts", Segment: time.Minute, KeepFree: 0}
	e, stop := runEngine(t, mustPlan(t, req))
	defer stop()
	// Allocators and the Go heap reach their working size in the first
	// minutes; "flat" is judged over the rest.
	warm := d / 3
	time.Sleep(warm)
	base := rssKiB(t)
	var peak int
	start := time.Now()
	for time.Since(start) < d-warm {
		time.Sleep(30 * time.Second)
		r := rssKiB(t)
		peak = max(peak, r)
		st := e.Stats()
		var fails uint64
		for _, o := range st.Outputs {
			if o.Name == "dead" {
				fails = o.Reconnects
			}
		}
		t.Logf("%s: RSS %d KiB (%+d since warm-up), %d failed connects", time.Since(start).Round(time.Second), r, r-base, fails)
	}
	end := rssKiB(t)
	st := e.Stats()
	t.Logf("soak %s: RSS after warm-up %d KiB, at end %d KiB, peak %d KiB; growth %d KiB", d, base, end, peak, end-base)
	if growth := end - base; growth > 4*1024 {
		t.Errorf("RSS grew %d KiB over the soak", growth)
	}
	for _, o := range st.Outputs {
		if o.Name == "srt" && o.Reconnects != 0 {
			t.Errorf("srt reconnected %d times during the soak", o.Reconnects)
		}
	}
}
