package board

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// familyRank orders hardware families when choosing: V4L2 M2M first (the
// mainline path with dmabuf import), then vendor stacks; OMX is legacy and
// never chosen on its own.
var familyRank = map[EncoderFamily]int{
	FamilyV4L2M2M:  0,
	FamilyVendor:   1,
	FamilyNVENC:    2,
	FamilyVAAPI:    3,
	FamilySoftware: 5,
	FamilyOMX:      9,
}

// softwareEncoders are present wherever GStreamer's ugly/bad plugins are.
var softwareEncoders = []Encoder{
	{Element: "x264enc", Codec: "h264", Family: FamilySoftware},
	{Element: "openh264enc", Codec: "h264", Family: FamilySoftware},
}

// vendorNodes are encoders that are not V4L2 M2M: a device node proves the
// kernel side, the element must still exist in GStreamer.
var vendorNodes = []struct {
	dev    string
	family EncoderFamily
	driver string
	// major is the node's DeviceClass.
	major    string
	elements []Encoder
}{
	// Rockchip MPP (vendor kernel): HARDWARE.md section 1.
	{"/dev/mpp_service", FamilyVendor, "rockchip-mpp", "mpp_service", []Encoder{{Element: "mpph264enc", Codec: "h264"}, {Element: "mpph265enc", Codec: "hevc"}}},
	// Jetson Nano (L4T): NVENC through nvhost.
	{"/dev/nvhost-msenc", FamilyNVENC, "tegra-nvenc", "nvhost", []Encoder{{Element: "nvv4l2h264enc", Codec: "h264"}, {Element: "nvv4l2h265enc", Codec: "hevc"}}},
	// Jetson Orin NX/AGX (L4T 35+); absent on Orin Nano.
	{"/dev/v4l2-nvenc", FamilyNVENC, "tegra-nvenc", "video4linux", []Encoder{{Element: "nvv4l2h264enc", Codec: "h264"}, {Element: "nvv4l2h265enc", Codec: "hevc"}}},
	// NXP BSP Hantro nodes used by imx-vpu-hantro (vpuenc_*).
	{"/dev/mxc_hantro_vc8000e", FamilyVendor, "hantro-vc8000e", "hx280enc", []Encoder{{Element: "vpuenc_h264", Codec: "h264"}, {Element: "vpuenc_hevc", Codec: "hevc"}}},
	{"/dev/mxc_hantro_h1", FamilyVendor, "hantro-h1", "hx280enc", []Encoder{{Element: "vpuenc_h264", Codec: "h264"}}},
}

// vaVendors maps a DRM render node's PCI vendor to its encoders.
var vaVendors = map[string][]Encoder{
	"0x8086": {{Element: "vah264enc", Codec: "h264", Family: FamilyVAAPI}, {Element: "qsvh264enc", Codec: "h264", Family: FamilyVAAPI}, {Element: "vah265enc", Codec: "hevc", Family: FamilyVAAPI}},
	"0x1002": {{Element: "vah264enc", Codec: "h264", Family: FamilyVAAPI}, {Element: "vah265enc", Codec: "hevc", Family: FamilyVAAPI}},
	"0x10de": {{Element: "nvh264enc", Codec: "h264", Family: FamilyNVENC}, {Element: "nvh265enc", Codec: "hevc", Family: FamilyNVENC}},
}

// m2mEncoders turns encoder nodes into GStreamer elements. gst-plugins-good
// (sys/v4l2/gstv4l2videoenc.c) names the first device per codec
// "v4l2<codec>enc" and later ones "v4l2<videoN><codec>enc"; nodes are
// visited in device-number order.
func m2mEncoders(nodes []sysNode, roles map[string]nodeRole, known map[string]knownNode, recs map[string]ProbeRecord) []Encoder {
	var out []Encoder
	taken := map[string]bool{}
	for _, n := range nodes {
		if roles[n.dev] != roleEncoder {
			continue
		}
		var codecs []string
		driver := n.driver
		if r, ok := recs[n.dev]; ok && r.Cap != nil {
			codecs = encodedCodecs(r.EncodedFormats)
			driver = r.Cap.Driver
		} else {
			codecs = encodedCodecs(known[n.dev].codecs)
		}
		for _, c := range codecs {
			el := "v4l2" + c + "enc"
			if taken[el] {
				el = "v4l2" + path.Base(n.dev) + c + "enc"
			}
			taken["v4l2"+c+"enc"] = true
			out = append(out, Encoder{Element: el, Device: n.dev, Driver: driver, Codec: c, Family: FamilyV4L2M2M, Hardware: true})
		}
	}
	return out
}

// otherEncoders finds vendor, VA and legacy OMX encoders.
func otherEncoders(f fsys, b Board, m2m []Encoder) []Encoder {
	var out []Encoder
	for _, v := range vendorNodes {
		if !f.exists(v.dev) {
			continue
		}
		for _, e := range v.elements {
			e.Device, e.Driver, e.Family, e.Hardware = v.dev, v.driver, v.family, true
			out = append(out, e)
		}
	}
	if ents, err := f.readDir("/sys/class/drm"); err == nil {
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "renderD") {
				continue
			}
			vendor, err := f.readString("/sys/class/drm/" + e.Name() + "/device/vendor")
			if err != nil {
				continue
			}
			driver := f.linkBase("/sys/class/drm/" + e.Name() + "/device/driver")
			for _, enc := range vaVendors[strings.ToLower(vendor)] {
				enc.Device, enc.Driver, enc.Hardware = "/dev/dri/"+e.Name(), driver, true
				out = append(out, enc)
			}
			break // the first render node is the one GStreamer's va plugin uses by default
		}
	}
	// OMX survives only on legacy 32-bit Pi images: listed when the VPU
	// interface exists but no bcm2835-codec encoder node does.
	if b.Family == "rpi" && b.ID != "rpi5" && len(m2m) == 0 && f.exists("/dev/vchiq") {
		out = append(out, Encoder{Element: "omxh264enc", Device: "/dev/vchiq", Codec: "h264", Family: FamilyOMX, Hardware: true})
	}
	return out
}

// sortEncoders puts hardware first (by family), then software; stable
// otherwise so the table order decides ties.
func sortEncoders(encs []Encoder) {
	sort.SliceStable(encs, func(i, j int) bool {
		return familyRank[encs[i].Family] < familyRank[encs[j].Family]
	})
}

func (e Encoder) String() string {
	if e.Device != "" {
		return fmt.Sprintf("%s (%s on %s)", e.Element, e.Driver, e.Device)
	}
	return e.Element
}
