package board

// Fixture definitions. Every literal here is cited in the fixture's NOTES
// file; values marked "illustrative" there (serial numbers, temperatures,
// load, memory) are invented and only have to be well-formed.

const piStat = "cpu  184356 1203 60722 3612877 2211 0 5733 0 0 0\ncpu0 46000 300 15000 903000 500 0 1400 0 0 0\nintr 1\nctxt 2\n"

// piSoC adds what every Raspberry Pi 4 fixture shares: the soc bus, the
// VideoCore services (vchiq) with the bcm2835-codec and bcm2835-isp M2M
// nodes, the firmware's throttle interfaces, thermal zone and health files.
func piSoC(t *tree) {
	soc := "/sys/devices/platform/soc"
	t.dev(soc, "platform", "")
	vchiq := soc + "/fe00b840.mailbox"
	t.dev(vchiq, "platform", "bcm2835_vchiq")
	codec := vchiq + "/bcm2835-codec"
	t.dev(codec, "platform", "bcm2835-codec")
	t.video(codec, 10, "bcm2835-codec-decode", 0)
	t.video(codec, 11, "bcm2835-codec-encode", 0)
	t.video(codec, 12, "bcm2835-codec-isp", 0)
	t.video(codec, 18, "bcm2835-codec-image_fx", 0)
	t.video(codec, 31, "bcm2835-codec-encode_image", 0)
	isp := vchiq + "/bcm2835-isp"
	t.dev(isp, "platform", "bcm2835-isp")
	t.video(isp, 13, "bcm2835-isp-output0", 0)
	t.video(isp, 14, "bcm2835-isp-capture1", 1)
	t.video(isp, 15, "bcm2835-isp-capture2", 2)
	t.video(isp, 16, "bcm2835-isp-stats2", 3)
	t.file("/dev/vchiq", "")
	fw := soc + "/soc:firmware"
	t.dev(fw, "platform", "raspberrypi-firmware")
	t.file(fw+"/get_throttled", "50005\n")
	hw := fw + "/raspberrypi-hwmon"
	t.dev(hw, "platform", "raspberrypi-hwmon")
	t.file(hw+"/hwmon/hwmon1/name", "rpi_volt\n")
	t.file(hw+"/hwmon/hwmon1/in0_lcrit_alarm", "1\n")
	t.link("/sys/class/hwmon/hwmon1", hw+"/hwmon/hwmon1")
	t.thermal([2]string{"cpu-thermal", "52582"})
	t.procHealth(piStat, "0.42 0.37 0.31 1/187 1234", 3885308, 3295520)
}

func piCards(t *tree, extra ...card) {
	soc := "/sys/devices/platform/soc"
	cards := []card{
		{num: 0, id: "Headphones", drv: "bcm2835_headpho", short: "bcm2835 Headphones", long: "bcm2835 Headphones", devDir: soc + "/fe00b840.mailbox/bcm2835_audio", playbacks: 1},
		{num: 1, id: "vc4hdmi0", drv: "vc4-hdmi", short: "vc4-hdmi-0", long: "vc4-hdmi-0", devDir: soc + "/fef00700.hdmi", playbacks: 1},
		{num: 2, id: "vc4hdmi1", drv: "vc4-hdmi", short: "vc4-hdmi-1", long: "vc4-hdmi-1", devDir: soc + "/fef05700.hdmi", playbacks: 1},
	}
	for _, c := range cards {
		t.dev(c.devDir, "platform", "")
	}
	t.soundCards(append(cards, extra...))
}

// fixtureRPi4TC358743: Raspberry Pi 4 with a TC358743 HDMI-to-CSI bridge
// (dtoverlay=tc358743, tc358743-audio), no HDMI cable yet.
func fixtureRPi4TC358743() *tree {
	t := newTree()
	t.deviceTree([]string{"raspberrypi,4-model-b", "brcm,bcm2711"}, "Raspberry Pi 4 Model B Rev 1.4", "10000000c0ffee01")
	piSoC(t)
	soc := "/sys/devices/platform/soc"
	csi := soc + "/fe801000.csi"
	t.dev(csi, "platform", "unicam")
	t.video(csi, 0, "unicam-image", 0)
	t.video(csi, 1, "unicam-embedded", 1)
	i2c := soc + "/fe205000.i2c"
	t.dev(i2c, "platform", "i2c-bcm2835")
	bridge := i2c + "/i2c-22/i2c-10/10-000f"
	t.dev(bridge, "i2c", "tc358743")
	t.file(bridge+"/name", "tc358743\n")
	sound := soc + "/soc:sound"
	t.dev(sound, "platform", "asoc-simple-card")
	piCards(t, card{num: 3, id: "tc358743", drv: "tc358743", short: "tc358743", long: "tc358743", devDir: sound, capture: true})
	return t
}

// probesRPi4TC358743 are the V4L2 answers the unicam and bcm2835-codec
// drivers give with a TC358743 and no HDMI source, written from the
// driver sources (see NOTES), not captured.
func probesRPi4TC358743() map[string]ProbeRecord {
	zero, cur := 0, 0
	return map[string]ProbeRecord{
		"/dev/video0": {
			Device: "/dev/video0",
			Cap: &Capability{Driver: "unicam", Card: "unicam", BusInfo: "platform:fe801000.csi", Version: 0x060140,
				Capabilities: capVideoCapture | capMetaCapture | 0x01000000 | capStreaming | 0x00200000 | capDeviceCaps,
				DeviceCaps:   capVideoCapture | 0x01000000 | capStreaming | 0x00200000},
			BufType:      bufTypeVideoCapture,
			Formats:      []Format{{FourCC: "UYVY"}, {FourCC: "RGB3"}},
			Inputs:       []InputInfo{{Index: 0, Name: "Camera 0", Type: inputTypeCamera, Status: inStNoSignal | inStNoSync, Capabilities: inCapDVTimings}},
			CurrentInput: &cur,
			DVTimingsErr: "ENOLINK",
			EDIDBlocks:   &zero,
		},
		"/dev/video1": {
			Device: "/dev/video1",
			Cap: &Capability{Driver: "unicam", Card: "unicam", BusInfo: "platform:fe801000.csi", Version: 0x060140,
				Capabilities: capVideoCapture | capMetaCapture | 0x01000000 | capStreaming | 0x00200000 | capDeviceCaps,
				DeviceCaps:   capMetaCapture | 0x01000000 | capStreaming | 0x00200000},
		},
		"/dev/video10": {
			Device:         "/dev/video10",
			Cap:            &Capability{Driver: "bcm2835-codec", Card: "bcm2835-codec-decode", BusInfo: "platform:bcm2835-codec", Version: 0x060140, Capabilities: capVideoM2MMPlane | capStreaming | capDeviceCaps, DeviceCaps: capVideoM2MMPlane | capStreaming},
			BufType:        bufTypeVideoOutputMPlane,
			Formats:        []Format{{FourCC: "H264", Compressed: true}, {FourCC: "MJPG", Compressed: true}},
			EncodedFormats: []string{"YU12", "YV12", "NV12", "NV21", "RGBP"},
		},
		"/dev/video11": {
			Device:         "/dev/video11",
			Cap:            &Capability{Driver: "bcm2835-codec", Card: "bcm2835-codec-encode", BusInfo: "platform:bcm2835-codec", Version: 0x060140, Capabilities: capVideoM2MMPlane | capStreaming | capDeviceCaps, DeviceCaps: capVideoM2MMPlane | capStreaming},
			BufType:        bufTypeVideoOutputMPlane,
			Formats:        []Format{{FourCC: "YU12"}, {FourCC: "YV12"}, {FourCC: "NV12"}, {FourCC: "NV21"}, {FourCC: "RGBP"}, {FourCC: "YUYV"}, {FourCC: "UYVY"}, {FourCC: "YVYU"}, {FourCC: "VYUY"}, {FourCC: "RGB3"}, {FourCC: "BGR3"}, {FourCC: "BGR4"}},
			EncodedFormats: []string{"H264"},
		},
	}
}

// fixtureRPi4MS2109: Raspberry Pi 4 with a MacroSilicon MS2109 USB HDMI
// dongle on a USB 2 port (behind the VL805 controller on PCIe).
func fixtureRPi4MS2109() *tree {
	t := newTree()
	t.deviceTree([]string{"raspberrypi,4-model-b", "brcm,bcm2711"}, "Raspberry Pi 4 Model B Rev 1.5", "10000000c0ffee02")
	piSoC(t)
	scb := "/sys/devices/platform/scb"
	t.dev(scb, "platform", "")
	pcie := scb + "/fd500000.pcie"
	t.dev(pcie, "platform", "brcm-pcie")
	t.dir(pcie + "/pci0000:00")
	bridge := pcie + "/pci0000:00/0000:00:00.0"
	t.dev(bridge, "pci", "pcieport")
	vl805 := bridge + "/0000:01:00.0"
	t.dev(vl805, "pci", "xhci_hcd")
	t.file(vl805+"/vendor", "0x1106\n")
	t.file(vl805+"/device", "0x3483\n")
	t.usbDevice(vl805+"/usb1", "1d6b", "0002", "Linux 6.1.0-rpi7-rpi-v8 xhci-hcd", "xHCI Host Controller")
	t.usbDevice(vl805+"/usb1/1-1", "2109", "3431", "", "USB2.0 Hub")
	dongle := vl805 + "/usb1/1-1/1-1.2"
	t.usbDevice(dongle, "534d", "2109", "MACROSILICON", "USB Video")
	vif := dongle + "/1-1.2:1.0"
	t.dev(vif, "usb", "uvcvideo")
	t.dev(dongle+"/1-1.2:1.1", "usb", "uvcvideo")
	t.video(vif, 0, "USB Video: USB Video", 0)
	t.video(vif, 1, "USB Video: USB Video", 1)
	aif := dongle + "/1-1.2:1.2"
	t.dev(aif, "usb", "snd-usb-audio")
	t.dev(dongle+"/1-1.2:1.3", "usb", "snd-usb-audio")
	t.dev(dongle+"/1-1.2:1.4", "usb", "usbhid")
	piCards(t, card{num: 3, id: "MS2109", drv: "USB-Audio", short: "MS2109", long: "MACROSILICON MS2109 at usb-0000:01:00.0-1.2, high speed", devDir: aif, capture: true})
	return t
}

// fixtureRPi5MS2130: Raspberry Pi 5 (no hardware encoder) with a
// MacroSilicon MS2130 USB 3 HDMI dongle on RP1's first xHCI controller.
func fixtureRPi5MS2130() *tree {
	t := newTree()
	t.deviceTree([]string{"raspberrypi,5-model-b", "brcm,bcm2712"}, "Raspberry Pi 5 Model B Rev 1.0", "c0ffee03c0ffee03")
	axi := "/sys/devices/platform/axi"
	t.dev(axi, "platform", "")
	pcie := axi + "/1000120000.pcie"
	t.dev(pcie, "platform", "brcm-pcie")
	usb := pcie + "/1f00200000.usb"
	t.dev(usb, "platform", "dwc3")
	xhci := usb + "/xhci-hcd.0"
	t.dev(xhci, "platform", "xhci-hcd")
	t.usbDevice(xhci+"/usb2", "1d6b", "0003", "Linux 6.6.20+rpt-rpi-2712 xhci-hcd", "xHCI Host Controller")
	dongle := xhci + "/usb2/2-1"
	t.usbDevice(dongle, "345f", "2130", "MACROSILICON", "USB3 Video")
	vif := dongle + "/2-1:1.0"
	t.dev(vif, "usb", "uvcvideo")
	t.dev(dongle+"/2-1:1.1", "usb", "uvcvideo")
	t.video(vif, 0, "USB3 Video: USB3 Video", 0)
	t.video(vif, 1, "USB3 Video: USB3 Video", 1)
	aif := dongle + "/2-1:1.2"
	t.dev(aif, "usb", "snd-usb-audio")
	t.dev(dongle+"/2-1:1.3", "usb", "snd-usb-audio")
	// The HEVC decoder and the PiSP back end: M2M nodes, never inputs.
	soc := axi + "/107c000000.soc"
	t.dev(soc, "platform", "")
	hevc := soc + "/107c100000.codec"
	t.dev(hevc, "platform", "rpi-hevc-dec")
	t.video(hevc, 19, "rpi-hevc-dec", 0)
	be := axi + "/1000880000.pisp_be"
	t.dev(be, "platform", "pispbe")
	t.video(be, 20, "pispbe-input", 0)
	t.video(be, 21, "pispbe-tdn_input", 1)
	t.video(be, 22, "pispbe-output0", 5)
	hdmi0 := soc + "/107c701400.hdmi"
	t.dev(hdmi0, "platform", "vc4_hdmi")
	t.soundCards([]card{
		{num: 0, id: "vc4hdmi0", drv: "vc4-hdmi", short: "vc4-hdmi-0", long: "vc4-hdmi-0", devDir: hdmi0, playbacks: 1},
		{num: 1, id: "Video", drv: "USB-Audio", short: "USB3 Video", long: "MACROSILICON USB3 Video at usb-xhci-hcd.0-1, super speed", devDir: aif, capture: true},
	})
	t.thermal([2]string{"cpu-thermal", "61250"})
	t.procHealth(piStat, "1.02 0.87 0.61 2/211 4321", 8245364, 7611044)
	return t
}

// fixtureIMX8MP: an i.MX8M Plus EVK with the NXP BSP kernel: the ISI
// camera path (no HDMI bridge), the VC8000E encoder through vsi_v4l2 and
// imx-vpu-hantro, a WM8960 codec, and an MS2109 dongle on USB.
func fixtureIMX8MP() *tree {
	t := newTree()
	t.deviceTree([]string{"fsl,imx8mp-evk", "fsl,imx8mp"}, "NXP i.MX8MPlus EVK board", "")
	soc := "/sys/devices/platform/soc@0"
	t.dev(soc, "platform", "")
	soc0 := "/sys/devices/soc0"
	t.file(soc0+"/soc_id", "i.MX8MP\n")
	t.file(soc0+"/family", "Freescale i.MX\n")
	t.file(soc0+"/revision", "1.1\n")
	t.file(soc0+"/serial_number", "0C40A1B2C3D4E5F6\n")
	bus := soc + "/32c00000.bus"
	t.dev(bus, "platform", "")
	isi := bus + "/32e00000.isi"
	t.dev(isi, "platform", "mxc-isi")
	t.video(isi, 0, "mxc_isi.0.capture", 0)
	t.video(isi, 1, "mxc_isi.m2m", 0)
	vsi := "/sys/devices/platform/vsi_v4l2.0"
	t.dev(vsi, "platform", "vsi_v4l2")
	t.video(vsi, 2, "vsi_v4l2enc", 0)
	t.video(vsi, 3, "vsi_v4l2dec", 0)
	t.file("/dev/mxc_hantro_vc8000e", "")
	usbc := soc + "/32f10108.usb"
	t.dev(usbc, "platform", "imx8mp-dwc3")
	dwc := usbc + "/38200000.usb"
	t.dev(dwc, "platform", "dwc3")
	xhci := dwc + "/xhci-hcd.1.auto"
	t.dev(xhci, "platform", "xhci-hcd")
	t.usbDevice(xhci+"/usb3", "1d6b", "0002", "Linux 6.1.55+g770c5fe2c1d1 xhci-hcd", "xHCI Host Controller")
	dongle := xhci + "/usb3/3-1"
	t.usbDevice(dongle, "534d", "2109", "MACROSILICON", "USB Video")
	vif := dongle + "/3-1:1.0"
	t.dev(vif, "usb", "uvcvideo")
	t.video(vif, 4, "USB Video: USB Video", 0)
	t.video(vif, 5, "USB Video: USB Video", 1)
	aif := dongle + "/3-1:1.2"
	t.dev(aif, "usb", "snd-usb-audio")
	wm := "/sys/devices/platform/sound-wm8960"
	t.dev(wm, "platform", "asoc-simple-card")
	hdmiSnd := "/sys/devices/platform/sound-hdmi"
	t.dev(hdmiSnd, "platform", "imx-hdmi")
	t.soundCards([]card{
		{num: 0, id: "wm8960audio", drv: "wm8960-audio", short: "wm8960-audio", long: "wm8960-audio", devDir: wm, capture: true, playbacks: 1},
		{num: 1, id: "audiohdmi", drv: "audio-hdmi", short: "audio-hdmi", long: "audio-hdmi", devDir: hdmiSnd, playbacks: 1},
		{num: 2, id: "MS2109", drv: "USB-Audio", short: "MS2109", long: "MACROSILICON MS2109 at usb-xhci-hcd.1.auto-1, high speed", devDir: aif, capture: true},
	})
	t.thermal([2]string{"cpu-thermal", "47000"}, [2]string{"soc-thermal", "46000"})
	t.procHealth("cpu  99000 10 40000 2900000 900 0 2100 0 0 0\n", "0.31 0.29 0.25 1/160 999", 5939488, 5100032)
	return t
}

// fixtureX86CamLink: an Intel NUC mini PC (iGPU, VA-API) with an Elgato
// Cam Link 4K, udev running (by-path and by-id links exist).
func fixtureX86CamLink() *tree {
	t := newTree()
	dmi := "/sys/devices/virtual/dmi/id"
	t.file(dmi+"/sys_vendor", "Intel(R) Client Systems\n")
	t.file(dmi+"/product_name", "NUC11TNHi5\n")
	t.file(dmi+"/board_name", "NUC11TNBi5\n")
	t.file(dmi+"/board_vendor", "Intel Corporation\n")
	t.link("/sys/class/dmi/id", dmi)
	t.dir("/sys/devices/pci0000:00")
	xhci := "/sys/devices/pci0000:00/0000:00:14.0"
	t.dev(xhci, "pci", "xhci_hcd")
	t.file(xhci+"/vendor", "0x8086\n")
	t.usbDevice(xhci+"/usb2", "1d6b", "0003", "Linux 6.1.0-18-amd64 xhci-hcd", "xHCI Host Controller")
	cam := xhci + "/usb2/2-3"
	t.usbDevice(cam, "0fd9", "0066", "Elgato", "Cam Link 4K")
	t.file(cam+"/serial", "0005A1B2C3\n")
	vif := cam + "/2-3:1.0"
	t.dev(vif, "usb", "uvcvideo")
	t.dev(cam+"/2-3:1.1", "usb", "uvcvideo")
	t.video(vif, 0, "Cam Link 4K: Cam Link 4K", 0)
	t.video(vif, 1, "Cam Link 4K: Cam Link 4K", 1)
	aif := cam + "/2-3:1.3"
	t.dev(aif, "usb", "snd-usb-audio")
	t.absLink("/dev/v4l/by-path/pci-0000:00:14.0-usb-0:3:1.0-video-index0", "../../video0")
	t.absLink("/dev/v4l/by-path/pci-0000:00:14.0-usb-0:3:1.0-video-index1", "../../video1")
	t.absLink("/dev/v4l/by-id/usb-Elgato_Cam_Link_4K_0005A1B2C3-video-index0", "../../video0")
	gpu := "/sys/devices/pci0000:00/0000:00:02.0"
	t.dev(gpu, "pci", "i915")
	t.file(gpu+"/vendor", "0x8086\n")
	t.file(gpu+"/device", "0x9a49\n")
	t.file(gpu+"/drm/renderD128/dev", "226:128\n")
	t.link("/sys/class/drm/renderD128", gpu+"/drm/renderD128")
	t.link(gpu+"/drm/renderD128/device", gpu)
	t.file("/dev/dri/renderD128", "")
	hda := "/sys/devices/pci0000:00/0000:00:1f.3"
	t.dev(hda, "pci", "snd_hda_intel")
	t.soundCards([]card{
		{num: 0, id: "PCH", drv: "HDA-Intel", short: "HDA Intel PCH", long: "HDA Intel PCH at 0x6054138000 irq 160", devDir: hda, capture: true, playbacks: 1},
		{num: 1, id: "Link4K", drv: "USB-Audio", short: "Cam Link 4K", long: "Elgato Cam Link 4K at usb-0000:00:14.0-3, super speed", devDir: aif, capture: true},
	})
	t.thermal([2]string{"acpitz", "27800"}, [2]string{"x86_pkg_temp", "44000"})
	t.file("/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
	t.procHealth("cpu  500000 200 120000 9000000 3000 0 4000 0 0 0\n", "0.80 0.66 0.52 3/412 7777", 16091952, 14003100)
	return t
}

// fixtureVMVividVicodec: the virtual capture box (VIRTUAL-BOX.md) as the
// kernel sources say it looks: vivid with one HDMI input, vicodec, QEMU
// q35, no udev, no sound. Hand-built until a real snapshot replaces it.
func fixtureVMVividVicodec() *tree {
	t := newTree()
	dmi := "/sys/devices/virtual/dmi/id"
	t.file(dmi+"/sys_vendor", "QEMU\n")
	t.file(dmi+"/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
	t.file(dmi+"/board_name", "\n")
	t.link("/sys/class/dmi/id", dmi)
	vivid := "/sys/devices/platform/vivid.0"
	t.dev(vivid, "platform", "vivid")
	t.video(vivid, 0, "vivid-000-vid-cap", 0)
	vicodec := "/sys/devices/platform/vicodec.0"
	t.dev(vicodec, "platform", "vicodec")
	t.video(vicodec, 1, "stateful-encoder", 0)
	t.video(vicodec, 2, "stateful-decoder", 0)
	t.video(vicodec, 3, "stateless-decoder", 0)
	t.file("/etc/machine-id", "fedcba9876543210fedcba9876543210\n")
	t.procHealth("cpu  3000 0 2000 40000 100 0 50 0 0 0\n", "0.10 0.05 0.01 1/60 300", 2014072, 1800000)
	return t
}

// fixtures is the table of hand-built fixture trees.
var fixtures = []struct {
	name   string
	build  func() *tree
	probes func() map[string]ProbeRecord
}{
	{"rpi4-tc358743", fixtureRPi4TC358743, probesRPi4TC358743},
	{"rpi4-ms2109", fixtureRPi4MS2109, nil},
	{"rpi5-ms2130", fixtureRPi5MS2130, nil},
	{"imx8mp", fixtureIMX8MP, nil},
	{"x86-camlink", fixtureX86CamLink, nil},
	{"vm-vivid-vicodec", fixtureVMVividVicodec, nil},
}
