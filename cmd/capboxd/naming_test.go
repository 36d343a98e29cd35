package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// libfaketime stops the C library's clock for a child process.
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// A box without a real-time clock boots at the same clock time every
// time, until NTP (maybe never, in a venue). Two runs recording into one
// folder with the clock standing at the same second: the second run's
// segments are new files, the first run's are untouched and still play.
func TestRecordingsSurviveARunAtTheSameClockTime(t *testing.T) {
	if _, err := os.Stat(libfaketime); err != nil {
		t.Fatalf("libfaketime is missing (make deps installs Debian's faketime): %v", err)
	}
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	cfgFile := filepath.Join(dir, "capbox.yaml")
	cfg := fmt.Sprintf("capture: { video: test, audio: test }\nencode: { max_width: 320, max_height: 180, max_fps: 30, bitrate_kbps: 400 }\n"+
		"outputs: []\nrecord: { enabled: true, path: %s, segment: 1h }\n", rec)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	frozen := []string{"LD_PRELOAD=" + libfaketime, "FAKETIME=2000-01-01 00:00:10", "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"}
	run := func() {
		t.Helper()
		p := startAgentEnv(t, cfgFile, frozen)
		p.waitLog(t, 20*time.Second, "msg=segment_opened")
		time.Sleep(3 * time.Second)
		p.stop(t)
	}
	segments := func() map[string][32]byte {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(rec, "capbox-*.ts"))
		out := map[string][32]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = sha256.Sum256(b)
		}
		return out
	}

	run()
	first := segments()
	if len(first) != 1 {
		t.Fatalf("first run wrote %v, want one segment", first)
	}
	run()
	second := segments()
	if len(second) != 2 {
		t.Fatalf("after the second run: %v, want the first run's segment and a new one", keys(second))
	}
	for name, sum := range first {
		if got, ok := second[name]; !ok || !bytes.Equal(got[:], sum[:]) {
			t.Errorf("the second run replaced or changed %s", name)
		}
	}
	for name := range second {
		if n, _ := frames(t, filepath.Join(rec, name)); n < 30 {
			t.Errorf("%s: %d frames, want a playable segment", name, n)
		}
	}
}

func keys(m map[string][32]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
