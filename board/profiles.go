package board

// Profile is what capbox knows about a board before probing
// (HARDWARE.md section 1): how to recognise it and what matters later.
type Profile struct {
	ID     string
	Family string
	// Compatible lists device-tree compatible strings, any of which
	// identifies the board; matched against the board's list, most
	// specific first.
	Compatible []string
	// ModelPrefix matches /proc/device-tree/model (the Pi firmware
	// appends " Rev x.y").
	ModelPrefix string
	// SoCID matches /sys/devices/soc0/soc_id (NXP).
	SoCID []string
	SoC   string
	// EncoderFamily is the hardware H.264 encoder the board is known to
	// have ("" when it has none); probing still decides.
	EncoderFamily EncoderFamily
	// Encoder is the GStreamer element that usually drives it.
	Encoder string
	// CSILanes is how many CSI-2 lanes an HDMI bridge gets (0: no CSI).
	CSILanes int
	// MaxHDMIFPS is the highest 1080p frame rate an HDMI-to-CSI bridge can
	// deliver on this board (0: no limit known).
	MaxHDMIFPS int
	Limits     []string
}

// profiles is the table of known boards, most specific first.
var profiles = []Profile{
	{ID: "rpi5", Family: "rpi", Compatible: []string{"raspberrypi,5-model-b", "brcm,bcm2712"}, ModelPrefix: "Raspberry Pi 5", SoC: "bcm2712",
		CSILanes: 4, Limits: []string{"no hardware H.264 encoder: software encoding only", "HDMI-CSI through rp1-cfe needs media-ctl; 1080p60 UYVY fails with EPIPE, RGB works"}},
	{ID: "cm4", Family: "rpi", Compatible: []string{"raspberrypi,4-compute-module"}, ModelPrefix: "Raspberry Pi Compute Module 4", SoC: "bcm2711",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", CSILanes: 4, MaxHDMIFPS: 60, Limits: []string{"bcm2835-codec real-time ceiling 1080p30 (level 4)"}},
	{ID: "rpi400", Family: "rpi", Compatible: []string{"raspberrypi,400"}, ModelPrefix: "Raspberry Pi 400", SoC: "bcm2711",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", Limits: []string{"no CSI connector: USB capture only", "bcm2835-codec real-time ceiling 1080p30 (level 4)"}},
	{ID: "rpi4", Family: "rpi", Compatible: []string{"raspberrypi,4-model-b", "brcm,bcm2711"}, ModelPrefix: "Raspberry Pi 4 Model B", SoC: "bcm2711",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", CSILanes: 2, MaxHDMIFPS: 30, Limits: []string{"HDMI-CSI 1080p30 at most (2 CSI lanes)", "bcm2835-codec real-time ceiling 1080p30 (level 4)"}},
	{ID: "rpizero2w", Family: "rpi", Compatible: []string{"raspberrypi,model-zero-2-w"}, ModelPrefix: "Raspberry Pi Zero 2 W", SoC: "bcm2837",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", CSILanes: 2, MaxHDMIFPS: 30, Limits: []string{"512 MB RAM: CMA for capture plus encode is tight"}},
	{ID: "rpi3", Family: "rpi", Compatible: []string{"raspberrypi,3-model-b", "raspberrypi,3-model-b-plus", "brcm,bcm2837"}, ModelPrefix: "Raspberry Pi 3 Model B", SoC: "bcm2837",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", CSILanes: 2, MaxHDMIFPS: 30, Limits: []string{"HDMI-CSI 1080p30 at most (2 CSI lanes)"}},
	{ID: "imx6", Family: "imx", Compatible: []string{"fsl,imx6q", "fsl,imx6dl", "fsl,imx6qp"}, SoCID: []string{"i.MX6Q", "i.MX6DL", "i.MX6QP"}, SoC: "imx6",
		EncoderFamily: FamilyV4L2M2M, Encoder: "v4l2h264enc", Limits: []string{"coda960: single-planar V4L2 M2M"}},
	{ID: "imx8mm", Family: "imx", Compatible: []string{"fsl,imx8mm"}, SoCID: []string{"i.MX8MM"}, SoC: "imx8mm",
		EncoderFamily: FamilyVendor, Encoder: "vpuenc_h264", CSILanes: 4, Limits: []string{"Hantro H1 encoder only with the NXP BSP kernel (vsi_v4l2 + vsidaemon); mainline has none"}},
	{ID: "imx8mp", Family: "imx", Compatible: []string{"fsl,imx8mp"}, SoCID: []string{"i.MX8MP"}, SoC: "imx8mp",
		EncoderFamily: FamilyVendor, Encoder: "vpuenc_h264", CSILanes: 4, Limits: []string{"VC8000E encoder only with the NXP BSP kernel; max 1920x1088, no 4K"}},
	{ID: "rk3588", Family: "rockchip", Compatible: []string{"rockchip,rk3588", "rockchip,rk3588s"}, SoC: "rk3588",
		EncoderFamily: FamilyVendor, Encoder: "mpph264enc", CSILanes: 4, Limits: []string{"rkvenc through MPP (/dev/mpp_service, vendor kernel), not V4L2"}},
	{ID: "rk3566", Family: "rockchip", Compatible: []string{"rockchip,rk3566"}, SoC: "rk3566",
		EncoderFamily: FamilyVendor, Encoder: "mpph264enc", CSILanes: 4, Limits: []string{"encoder through MPP (/dev/mpp_service, vendor kernel)"}},
	// Orin Nano SKUs first: same SoC compatible as Orin NX/AGX, but no NVENC.
	{ID: "jetson-orin", Family: "jetson", Compatible: []string{"nvidia,p3767-0003", "nvidia,p3767-0004", "nvidia,p3767-0005"}, SoC: "tegra234",
		CSILanes: 4, Limits: []string{"Orin Nano: no hardware encoder, software encoding only"}},
	{ID: "jetson-orin", Family: "jetson", Compatible: []string{"nvidia,tegra234"}, SoC: "tegra234",
		EncoderFamily: FamilyNVENC, Encoder: "nvv4l2h264enc", CSILanes: 4, Limits: []string{"nvv4l2h264enc needs memory:NVMM input through nvvidconv (a hardware copy)"}},
	{ID: "jetson-nano", Family: "jetson", Compatible: []string{"nvidia,p3450-0000", "nvidia,tegra210"}, SoC: "tegra210",
		EncoderFamily: FamilyNVENC, Encoder: "nvv4l2h264enc", CSILanes: 4, Limits: []string{"nvv4l2h264enc needs memory:NVMM input through nvvidconv (a hardware copy)"}},
}

// x86Profile is any machine without a device tree but with DMI.
var x86Profile = Profile{ID: "x86", Family: "x86"}

// unknownProfile is a real answer: detection still probes everything.
var unknownProfile = Profile{ID: "unknown", Family: "unknown"}
