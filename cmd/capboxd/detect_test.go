package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI prints exactly the golden detection of each fixture.
func TestDetectSysrootMatchesGolden(t *testing.T) {
	for _, fx := range []string{"rpi4-tc358743", "rpi5-ms2130", "x86-camlink"} {
		var out, errb bytes.Buffer
		root := filepath.Join("..", "..", "board", "testdata", fx)
		if code := detectMain(context.Background(), []string{"--json", "--sysroot", root}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", fx, code, errb.String())
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "board", "testdata", "golden", fx+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s: detect --json --sysroot differs from the golden file:\n%s", fx, out.String())
		}
	}
}

func TestDetectHumanOutput(t *testing.T) {
	var out, errb bytes.Buffer
	root := filepath.Join("..", "..", "board", "testdata", "rpi5-ms2130")
	if code := detectMain(context.Background(), []string{"--sysroot", root}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"board     rpi5", "345f:2130", "chosen    video /dev/video0", "encoder x264enc", "no hardware H.264 encoder"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

// On this machine (no /dev/video*, no VA render node expected) live
// detection degrades to the test pattern and a software encoder.
func TestDetectLiveDegradesGracefully(t *testing.T) {
	if _, err := os.Stat("/sys/class/video4linux"); err == nil {
		t.Skip("this machine has V4L2 devices")
	}
	var out, errb bytes.Buffer
	if code := detectMain(context.Background(), []string{"--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{`"video_input": "test"`, `"video_inputs": []`, `no capture input found`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in:\n%s", want, s)
		}
	}
	if !strings.Contains(s, `"encoder": "x264enc"`) && !strings.Contains(s, `"encoder": "va`) {
		t.Errorf("no software (or VA) encoder chosen:\n%s", s)
	}
}

func TestSnapshotThenDetect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	root := filepath.Join("..", "..", "board", "testdata", "imx8mp")
	var out, errb bytes.Buffer
	if code := snapshotMain(context.Background(), []string{"--sysroot", root, dir}, &out, &errb); code != 0 {
		t.Fatalf("snapshot exit %d: %s", code, errb.String())
	}
	var a, b bytes.Buffer
	detectMain(context.Background(), []string{"--json", "--sysroot", root}, &a, &errb)
	detectMain(context.Background(), []string{"--json", "--sysroot", dir}, &b, &errb)
	if a.String() != b.String() {
		t.Errorf("snapshot reads back differently:\n%s\nvs\n%s", a.String(), b.String())
	}
	if code := snapshotMain(context.Background(), []string{dir}, &out, &errb); code != 1 {
		t.Errorf("snapshot into a non-empty folder: exit %d", code)
	}
}
