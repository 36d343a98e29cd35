package board

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
)

var updateEDID = flag.Bool("update-edid", false, "rewrite board/edid/*.bin from buildEDID")

// dtd encodes an 18-byte detailed timing descriptor (EDID 1.3 3.10.2),
// image size 800x450 mm, digital separate sync, +H +V.
func dtd(clk10kHz, hact, hbl, vact, vbl, hfp, hsync, vfp, vsync int) []byte {
	return []byte{
		byte(clk10kHz), byte(clk10kHz >> 8),
		byte(hact), byte(hbl), byte(hact>>8<<4 | hbl>>8),
		byte(vact), byte(vbl), byte(vact>>8<<4 | vbl>>8),
		byte(hfp), byte(hsync), byte(vfp<<4 | vsync&0xf),
		byte(hfp>>8<<6 | hsync>>8<<4 | vfp>>4<<2 | vsync>>4),
		0x20, 0xc2, 0x31, // 800 x 450 mm
		0, 0, 0x1e,
	}
}

// CEA-861 timings used below (CEA-861-F table 3/4).
var (
	dtd1080p60 = dtd(14850, 1920, 280, 1080, 45, 88, 44, 4, 5)
	dtd1080p30 = dtd(7425, 1920, 280, 1080, 45, 88, 44, 4, 5)
	dtd720p60  = dtd(7425, 1280, 370, 720, 30, 110, 40, 5, 5)
)

func textDesc(tag byte, s string) []byte {
	d := []byte{0, 0, 0, tag, 0}
	t := []byte(s + "\n")
	for len(t) < 13 {
		t = append(t, ' ')
	}
	return append(d, t[:13]...)
}

// buildEDID makes the default EDID; maxFPS 60 or 30 (see edid.go).
func buildEDID(maxFPS int) []byte {
	b := make([]byte, 0, 256)
	b = append(b, edidHeader...)
	b = append(b, 0x31, 0xd8)                                                 // "LNX": (12<<10)|(14<<5)|24
	b = append(b, 0x01, 0xcb)                                                 // product 0xCB01
	b = append(b, 0, 0, 0, 0)                                                 // serial
	b = append(b, 1, 34)                                                      // week 1, 2024
	b = append(b, 1, 3)                                                       // EDID 1.3
	b = append(b, 0x80)                                                       // digital input
	b = append(b, 80, 45)                                                     // 80 x 45 cm
	b = append(b, 120)                                                        // gamma 2.2
	b = append(b, 0x0e)                                                       // RGB colour, sRGB default, preferred timing is the first DTD
	b = append(b, 0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54) // sRGB chromaticity
	b = append(b, 0x21, 0x08, 0x00)                                           // established: 640x480@60, 800x600@60, 1024x768@60
	std := []byte{0x81, 0xc0}                                                 // 1280x720@60 (16:9)
	if maxFPS >= 60 {
		std = append(std, 0x81, 0x80, 0xd1, 0xc0) // 1280x1024@60 (5:4), 1920x1080@60 (16:9)
	}
	for len(std) < 16 {
		std = append(std, 0x01, 0x01)
	}
	b = append(b, std...)
	if maxFPS >= 60 {
		b = append(b, dtd1080p60...)
		b = append(b, 0, 0, 0, 0xfd, 0, 23, 61, 15, 68, 15, 0x00, 0x0a, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20)
	} else {
		b = append(b, dtd1080p30...)
		b = append(b, 0, 0, 0, 0xfd, 0, 23, 61, 15, 50, 8, 0x00, 0x0a, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20)
	}
	b = append(b, textDesc(0xfc, "capbox")...)
	b = append(b, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // dummy descriptor
	b = append(b, 1, 0)                                                    // one extension, checksum

	ext := []byte{0x02, 0x03, 0, 0xc1} // CEA-861 rev 3, underscan, basic audio, RGB only, 1 native DTD
	vics := []byte{16, 31, 34, 33, 32, 4, 19, 3, 18, 1}
	if maxFPS < 60 {
		vics = []byte{34, 33, 32, 4, 19, 3, 18, 1}
	}
	ext = append(ext, 2<<5|byte(len(vics)))
	ext = append(ext, vics...)
	ext = append(ext, 1<<5|3, 0x09, 0x07, 0x07)                       // audio: LPCM 2ch, 32/44.1/48 kHz, 16/20/24 bit
	ext = append(ext, 4<<5|3, 0x01, 0x00, 0x00)                       // speakers: FL/FR
	ext = append(ext, 3<<5|7, 0x03, 0x0c, 0x00, 0x10, 0x00, 0x00, 33) // HDMI VSDB, 1.0.0.0, 165 MHz
	ext = append(ext, 7<<5|2, 0x00, 0x4a)                             // video capability: selectable RGB range, IT/CE underscanned
	ext[2] = byte(len(ext))
	ext = append(ext, dtd720p60...)
	for len(ext) < 128 {
		ext = append(ext, 0)
	}
	b = append(b, ext...)
	FixEDIDChecksums(b)
	return b
}

func TestDefaultEDIDMatchesGenerator(t *testing.T) {
	for _, c := range []struct {
		fps  int
		file string
		got  []byte
	}{{60, "edid/default-1080p60.bin", defaultEDID60}, {30, "edid/default-1080p30.bin", defaultEDID30}} {
		want := buildEDID(c.fps)
		if *updateEDID {
			if err := os.WriteFile(c.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !bytes.Equal(c.got, want) {
			t.Errorf("%s differs from buildEDID(%d); run go test ./board -run EDID -update-edid", c.file, c.fps)
		}
	}
}

func TestDefaultEDIDContent(t *testing.T) {
	for _, c := range []struct {
		edid   []byte
		fps    float64
		vics   []int
		noVICs []int
	}{
		{DefaultEDID(), 60, []int{16, 31, 34, 4}, nil},
		{DefaultEDIDFor(Board{MaxHDMIFPS: 30}), 30, []int{34, 33, 4}, []int{16, 31}},
	} {
		if len(c.edid) != 256 {
			t.Fatalf("len %d", len(c.edid))
		}
		if err := ValidateEDID(c.edid); err != nil {
			t.Fatal(err)
		}
		info, err := ParseEDID(c.edid)
		if err != nil {
			t.Fatal(err)
		}
		if info.Manufacturer != "LNX" || info.Name != "capbox" || info.Version != "1.3" {
			t.Errorf("identity %+v", info)
		}
		if info.PreferredWidth != 1920 || info.PreferredHeight != 1080 || info.PreferredFPS != c.fps {
			t.Errorf("preferred %dx%d@%v, want 1920x1080@%v", info.PreferredWidth, info.PreferredHeight, info.PreferredFPS, c.fps)
		}
		if !info.Audio || !info.HDMI || info.PhysicalAddress != "1.0.0.0" || info.Extensions != 1 {
			t.Errorf("CEA: %+v", info)
		}
		has := map[int]bool{}
		for _, v := range info.VICs {
			has[v] = true
		}
		for _, v := range c.vics {
			if !has[v] {
				t.Errorf("VIC %d missing from %v", v, info.VICs)
			}
		}
		for _, v := range c.noVICs {
			if has[v] {
				t.Errorf("VIC %d must not be offered: %v", v, info.VICs)
			}
		}
	}
	if d := DefaultEDIDFor(Board{ID: "rpi5"}); !bytes.Equal(d, DefaultEDID()) {
		t.Error("boards without a limit get the 1080p60 EDID")
	}
}

// TestDefaultEDIDConformity runs the independent checker from v4l-utils'
// sister project (Debian package edid-decode, installed by make deps).
func TestDefaultEDIDConformity(t *testing.T) {
	if _, err := exec.LookPath("edid-decode"); err != nil {
		t.Skip("edid-decode not installed (make deps installs it)")
	}
	for _, f := range []string{"edid/default-1080p60.bin", "edid/default-1080p30.bin"} {
		out, err := exec.Command("edid-decode", "--check", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "EDID conformity: PASS") {
			t.Errorf("%s: edid-decode --check: %v\n%s", f, err, out)
		}
		if strings.Contains(string(out), "Warnings:") {
			t.Errorf("%s: edid-decode warnings:\n%s", f, out)
		}
	}
}
