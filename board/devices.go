package board

// DeviceClass is a kind of device node capbox opens, by the name its driver
// registers the character-device major under (/proc/devices). A device
// cgroup allows a class by that name: the unit's DeviceAllow=char-NAME
// (overlay/usr/lib/systemd/system/capboxd.service), which also covers nodes
// that appear later (hotplug). Every node detection can choose belongs to
// one of these; a test holds the unit to this table.
type DeviceClass struct {
	Major string
	// Nodes says which nodes, for people.
	Nodes string
	// Source is where the driver registers Major.
	Source string
}

// DeviceClasses are the classes of every node detection can choose.
var DeviceClasses = []DeviceClass{
	{"video4linux", "/dev/video* (captures, V4L2 M2M encoders, Jetson Orin's /dev/v4l2-nvenc)", "drivers/media/v4l2-core/v4l2-dev.c: VIDEO_NAME"},
	{"media", "/dev/media* (media controller of CSI receivers)", "drivers/media/mc/mc-devnode.c: MEDIA_NAME"},
	{"alsa", "/dev/snd/* (HDMI and dongle audio)", "sound/core/sound.c: register_chrdev(major, \"alsa\")"},
	{"dma_heap", "/dev/dma_heap/* (zero-copy buffers)", "drivers/dma-buf/dma-heap.c: DEVNAME"},
	{"drm", "/dev/dri/renderD* (VA-API, NVENC on x86)", "drivers/gpu/drm/drm_drv.c: register_chrdev(DRM_MAJOR, \"drm\")"},
	{"mpp_service", "/dev/mpp_service (Rockchip MPP, vendor kernel)", "Rockchip kernel drivers/video/rockchip/mpp/mpp_service.c: MPP_SERVICE_NAME"},
	{"nvhost", "/dev/nvhost-* (Jetson Nano NVENC, L4T)", "L4T kernel drivers/video/tegra/host/bus_client.c: IFACE_NAME \"nvhost\""},
	{"hx280enc", "/dev/mxc_hantro_vc8000e, /dev/mxc_hantro_h1 (NXP BSP Hantro encoders)", "NXP BSP drivers/mxc/hantro_vc8000e/hx280enc.c: register_chrdev(..., \"hx280enc\")"},
	{"vchiq", "/dev/vchiq (Raspberry Pi VideoCore, for OMX)", "drivers/staging/vc04_services/interface/vchiq_arm/vchiq_arm.c: DEVICE_NAME \"vchiq\""},
	{"nvidia-frontend", "/dev/nvidia0, /dev/nvidiactl (nvh264enc on an x86 NVIDIA card)", "NVIDIA's kernel module (nv.c): NV_DEV_NAME \"nvidia-frontend\""},
	{"nvidia-uvm", "/dev/nvidia-uvm (CUDA's memory for nvh264enc)", "NVIDIA's nvidia-uvm module: NVIDIA_UVM_DEVICE_NAME \"nvidia-uvm\""},
}

// encoderDeviceClasses are the classes of the nodes an encoder of family
// opens, running on dev (its node as detection found it): none for
// software encoders.
func encoderDeviceClasses(family EncoderFamily, dev string) []string {
	for _, v := range vendorNodes {
		if v.dev == dev {
			return []string{v.major}
		}
	}
	switch family {
	case FamilyV4L2M2M:
		return []string{"video4linux"}
	case FamilyVAAPI:
		return []string{"drm"}
	case FamilyOMX:
		return []string{"vchiq"}
	case FamilyNVENC:
		// nvh264enc on x86: found by its render node, run through CUDA.
		return []string{"drm", "nvidia-frontend", "nvidia-uvm"}
	}
	return nil
}
