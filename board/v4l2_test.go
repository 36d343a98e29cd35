package board

import "testing"

func TestFourCC(t *testing.T) {
	for v, want := range map[uint32]string{
		fourccValue("YUYV"):             "YUYV",
		fourccValue("Y16 "):             "Y16",
		fourccValue("Y16 ") | 1<<31:     "Y16-BE",
		0x00000001:                      "0x00000001",
		fourccValue("H264"):             "H264",
		fourccValue("RGB3"):             "RGB3",
		fourccValue("Y10 ") | 1<<31:     "Y10-BE",
		fourccValue("\x7f\x00\x00\x00"): "0x0000007f",
	} {
		if got := fourccString(v); got != want {
			t.Errorf("%#x: %q, want %q", v, got, want)
		}
	}
}

// TestIoctlNumbers pins the request numbers to the kernel headers'
// (checked with gcc against linux/videodev2.h on amd64; the 32-bit sizes
// of v4l2_edid and v4l2_event were checked with arm-linux-gnueabihf-gcc).
func TestIoctlNumbers(t *testing.T) {
	want := map[string]uint{
		"QUERYCAP": 0x80685600, "ENUM_FMT": 0xc0405602, "ENUMINPUT": 0xc050561a, "G_INPUT": 0x80045626,
		"FRMSZ": 0xc02c564a, "FRMIV": 0xc034564b, "SUBSCRIBE": 0x4020565a, "QUERY_DV": 0x80845663,
	}
	got := map[string]uint{
		"QUERYCAP": vidiocQueryCap, "ENUM_FMT": vidiocEnumFmt, "ENUMINPUT": vidiocEnumInput, "G_INPUT": vidiocGInput,
		"FRMSZ": vidiocEnumFrmSizes, "FRMIV": vidiocEnumFrmIvals, "SUBSCRIBE": vidiocSubscribe, "QUERY_DV": vidiocQueryDVTimgs,
	}
	if ptrSize == 8 {
		want["G_EDID"], want["S_EDID"], want["DQEVENT"] = 0xc0285628, 0xc0285629, 0x80885659
	} else {
		want["G_EDID"], want["S_EDID"], want["DQEVENT"] = 0xc0245628, 0xc0245629, 0x80805659
	}
	got["G_EDID"], got["S_EDID"], got["DQEVENT"] = vidiocGEDID, vidiocSEDID, vidiocDQEvent
	for k, w := range want {
		if got[k] != w {
			t.Errorf("VIDIOC_%s = %#x, want %#x", k, got[k], w)
		}
	}
}

func TestDVTimingsFPS(t *testing.T) {
	for _, c := range []struct {
		t   DVTimings
		fps int
		ex  float64
	}{
		{timing1080p60, 60, 60}, {timing1080p30, 30, 30}, {timing720p60, 60, 60}, {timing1080p5994, 60, 59.94},
		{DVTimings{Width: 1920, Height: 1080, Interlaced: true, PixelClock: 74250000, HFrontPorch: 88, HSync: 44, HBackPorch: 148,
			VFrontPorch: 2, VSync: 5, VBackPorch: 15, ILVFront: 2, ILVSync: 5, ILVBack: 16}, 30, 30}, // 1080i60: 30 frames, 60 fields
		{DVTimings{}, 0, 0},
	} {
		s := c.t.Signal()
		if s.FPS != c.fps || s.FPSExact != c.ex {
			t.Errorf("%+v: fps %d/%v, want %d/%v", c.t, s.FPS, s.FPSExact, c.fps, c.ex)
		}
	}
}
