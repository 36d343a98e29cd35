package imagecheck

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostElements is the host's GStreamer registry: it tells element names
// from other strings in the code.
func hostElements(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("gst-inspect-1.0").Output()
	if err != nil {
		t.Fatalf("gst-inspect-1.0 (make deps installs it): %v", err)
	}
	els := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.SplitN(l, ": ", 3); len(f) == 3 {
			els[strings.TrimSpace(f[1])] = true
		}
	}
	if !els["videotestsrc"] {
		t.Fatalf("no videotestsrc in gst-inspect-1.0's list: %.200s", out)
	}
	return els
}

func elementTable(t *testing.T) (map[string]ElementRow, CodeElements) {
	t.Helper()
	rows, err := ReadElementTable(filepath.Join(repo, "buildroot/gst-elements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	host := hostElements(t)
	code, err := FindCodeElements([]string{filepath.Join(repo, "pipelines"), filepath.Join(repo, "pipelines/gst")},
		func(s string) bool { _, ok := rows[s]; return ok || host[s] })
	if err != nil {
		t.Fatal(err)
	}
	return rows, code
}

func TestElementTableMatchesTheCode(t *testing.T) {
	rows, code := elementTable(t)
	for el, where := range code.Names {
		if _, ok := rows[el]; !ok {
			t.Errorf("%s (%s) can be created but buildroot/gst-elements.txt does not say which Buildroot symbols build it", el, where)
		}
	}
	for el, r := range rows {
		if _, ok := code.Names[el]; !ok {
			t.Errorf("gst-elements.txt:%d: %s is not created anywhere in pipelines/: remove the row", r.Line, el)
		}
		if len(r.Boards) == 0 && r.Reason == "" {
			t.Errorf("gst-elements.txt:%d: %s is built by no board: say why in a comment above it", r.Line, el)
		}
	}
	for _, g := range []string{"h264Decoders", "softwareEncoders", "aacEncoders"} {
		if len(code.Groups[g]) < 2 {
			t.Errorf("alternatives %s not found in the code (%v): the check reads it wrong", g, code.Groups[g])
		}
	}
	for _, el := range []string{"v4l2h264enc", "x264enc", "srtsink", "openh264dec", "decodebin", "alsasrc"} {
		if _, ok := code.Names[el]; !ok {
			t.Errorf("%s not found in the code: the check reads it wrong", el)
		}
	}
}

func TestEveryBoardBuildsItsElements(t *testing.T) {
	rows, code := elementTable(t)
	configs, err := filepath.Glob(filepath.Join(repo, "buildroot/configs/capbox_*_defconfig"))
	if err != nil || len(configs) != 5 {
		t.Fatalf("want 5 defconfigs, have %d (%v)", len(configs), err)
	}
	for _, cfg := range configs {
		board := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(cfg), "capbox_"), "_defconfig")
		on, err := ReadDefconfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range CheckBoard(board, on, rows, code.Groups) {
			t.Errorf("%s: %s", board, p)
		}
	}
}

// The Raspberry Pi 4 defconfig as it was: no v4l2 probe (no v4l2h264enc)
// and no H.264 decoder for snapshots.
func TestMissingProbeAndDecoderAreCaught(t *testing.T) {
	rows, code := elementTable(t)
	on, err := ReadDefconfig("testdata/capbox_rpi4_64_defconfig.before-fix")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(CheckBoard("rpi4_64", on, rows, code.Groups), "\n")
	for _, want := range []string{"v4l2h264enc needs BR2_PACKAGE_GST1_PLUGINS_GOOD_PLUGIN_V4L2_PROBE=y", "none of h264Decoders"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
}
