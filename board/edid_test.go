package board

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// v4l2HexDump formats an EDID the way `v4l2-ctl --get-edid format=hex`
// does: 16 bytes per line, no separators.
func v4l2HexDump(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i += 16 {
		s.WriteString(hex.EncodeToString(b[i:min(i+16, len(b))]) + "\n")
	}
	return s.String()
}

func TestParseEDIDFileFormats(t *testing.T) {
	want := DefaultEDID()
	var carray strings.Builder
	for i, c := range want {
		fmt.Fprintf(&carray, "0x%02X,", c)
		if i%12 == 11 {
			carray.WriteString("\n")
		}
	}
	spaced := strings.TrimSpace(strings.Join(strings.Fields(fmt.Sprintf("% x", want)), " "))
	for name, in := range map[string][]byte{
		"binary":        want,
		"v4l2-ctl hex":  []byte(v4l2HexDump(want)),
		"spaced upper":  []byte(strings.ToUpper(spaced)),
		"c array":       []byte("# from a header file\n" + carray.String()),
		"crlf comments": []byte(strings.ReplaceAll(v4l2HexDump(want), "\n", " # row\r\n")),
	} {
		got, err := ParseEDIDFile(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseEDIDFileRejects(t *testing.T) {
	good := DefaultEDID()
	badSum := bytes.Clone(good)
	badSum[200]++
	badCount := bytes.Clone(good)
	badCount[126] = 3
	FixEDIDChecksums(badCount)
	nine := bytes.Repeat(good[:128], 9)
	for name, in := range map[string][]byte{
		"empty":          nil,
		"text":           []byte("hello, world"),
		"odd hex":        []byte("00ffffffffffff0"),
		"short":          good[:100],
		"bad checksum":   badSum,
		"bad ext count":  badCount,
		"too many":       nine,
		"jpeg":           {0xff, 0xd8, 0xff, 0xe0, 0, 0x10},
		"header only":    edidHeader,
		"hex bad header": []byte(strings.Repeat("11", 128)),
	} {
		if _, err := ParseEDIDFile(in); !errors.Is(err, ErrBadEDID) {
			t.Errorf("%s: %v, want ErrBadEDID", name, err)
		}
	}
	fixed := bytes.Clone(badSum)
	FixEDIDChecksums(fixed)
	if err := ValidateEDID(fixed); err != nil {
		t.Errorf("after FixEDIDChecksums: %v", err)
	}
}

func TestEDIDFromConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "room.hex")
	if err := os.WriteFile(p, []byte(v4l2HexDump(DefaultEDIDFor(Board{MaxHDMIFPS: 30}))), 0o644); err != nil {
		t.Fatal(err)
	}
	for setting, want := range map[string][]byte{
		"default": DefaultEDIDFor(Board{ID: "rpi4", MaxHDMIFPS: 30}),
		"none":    nil,
		p:         defaultEDID30,
	} {
		got, err := EDIDFromConfig(setting, Board{ID: "rpi4", MaxHDMIFPS: 30})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v", setting, err)
		}
	}
	if _, err := EDIDFromConfig(filepath.Join(dir, "missing.bin"), Board{}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSetEDID(t *testing.T) {
	hw := newFakeHW()
	d := hw.add("/dev/video0", vividHDMI())
	d.edid, d.edidBlocks = nil, 2
	if err := setEDID(hw.open, "/dev/video0", DefaultEDID()); err != nil {
		t.Fatal(err)
	}
	got, err := readEDID(hw.open, "/dev/video0")
	if err != nil || !bytes.Equal(got, DefaultEDID()) {
		t.Fatalf("read back: %v", err)
	}
	// Clearing pulls hot-plug low: the source stops (vivid: ENOLINK).
	if err := setEDID(hw.open, "/dev/video0", nil); err != nil {
		t.Fatal(err)
	}
	if d.timingsErr != unix.ENOLINK {
		t.Error("clearing the EDID did not drop the signal")
	}
	four := append(DefaultEDID(), DefaultEDID()...)
	four[126] = 3
	FixEDIDChecksums(four)
	if err := setEDID(hw.open, "/dev/video0", four); !errors.Is(err, unix.E2BIG) {
		t.Errorf("4 blocks into a 2-block receiver: %v", err)
	}
	if err := setEDID(hw.open, "/dev/video0", []byte("junk")); !errors.Is(err, ErrBadEDID) {
		t.Errorf("junk: %v", err)
	}
	hw.add("/dev/video1", uvcDongle())
	if err := setEDID(hw.open, "/dev/video1", DefaultEDID()); !errors.Is(err, ErrNotSupported) {
		t.Errorf("UVC: %v, want ErrNotSupported", err)
	}
	if err := setEDID(hw.open, "/dev/video7", DefaultEDID()); !errors.Is(err, ErrNoDevice) {
		t.Errorf("missing: %v", err)
	}
	hw.remove("/dev/video0")
	if err := setEDID(hw.open, "/dev/video0", DefaultEDID()); !errors.Is(err, ErrNoDevice) {
		t.Errorf("removed: %v", err)
	}
}

func FuzzParseEDIDFile(f *testing.F) {
	f.Add(DefaultEDID())
	f.Add(defaultEDID30)
	f.Add([]byte(v4l2HexDump(DefaultEDID())))
	f.Add([]byte("0x00, 0xff"))
	f.Add(DefaultEDID()[:128])
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseEDIDFile(data)
		if err != nil {
			if !errors.Is(err, ErrBadEDID) {
				t.Fatalf("error not ErrBadEDID: %v", err)
			}
			return
		}
		if ValidateEDID(b) != nil {
			t.Fatal("accepted bytes do not validate")
		}
		info, _ := ParseEDID(b) // must not panic on any valid-checksum EDID
		if info.Extensions != len(b)/128-1 {
			t.Fatalf("extensions %d for %d bytes", info.Extensions, len(b))
		}
	})
}

// FuzzParseEDID feeds arbitrary CEA blocks behind a valid base block, with
// fixed checksums, so the data-block walker sees garbage.
func FuzzParseEDID(f *testing.F) {
	f.Add(DefaultEDID()[128:])
	f.Add(make([]byte, 128))
	f.Fuzz(func(t *testing.T, ext []byte) {
		if len(ext) == 0 {
			return
		}
		n := min((len(ext)+127)/128, maxEDIDBlocks-1)
		b := append(bytes.Clone(DefaultEDID()[:128]), make([]byte, n*128)...)
		copy(b[128:], ext)
		b[126] = byte(n)
		FixEDIDChecksums(b)
		if _, err := ParseEDID(b); err != nil && !errors.Is(err, ErrBadEDID) {
			t.Fatalf("error not ErrBadEDID: %v", err)
		}
	})
}

func TestApplyEDID(t *testing.T) {
	hw := newFakeHW()
	hw.add("/dev/video0", vividHDMI()).edid = nil
	hw.add("/dev/video1", uvcDongle())
	d := Detection{VideoInputs: []VideoInput{{Device: "/dev/video0", EDID: true}, {Device: "/dev/video1"}, {Device: "/dev/video5", EDID: true}}}
	done, err := applyEDID(hw.open, d, DefaultEDID())
	if len(done) != 1 || done[0] != "/dev/video0" || !errors.Is(err, ErrNoDevice) {
		t.Errorf("done %v, err %v", done, err)
	}
	if got, _ := readEDID(hw.open, "/dev/video0"); !bytes.Equal(got, DefaultEDID()) {
		t.Error("EDID not loaded")
	}
}
