package board

import "fmt"

// Zero-copy capture -> encode (HARDWARE.md section 4): v4l2src exports its
// buffers as dmabuf and the encoder imports them. That only works when
// the encoder can use the capture buffer as it is: physically contiguous
// memory and a row stride the encoder accepts.

// rowAlign is an encoder's bytesperline alignment per raw fourcc.
// bcm2835-codec: supported_formats[].bytesperline_align for the ENCODE role
// in raspberrypi/linux drivers/staging/vc04_services/bcm2835-codec/bcm2835-v4l2-codec.c.
var rowAlign = map[string]map[string]int{
	"bcm2835-codec": {
		"YU12": 64, "YV12": 64, // I420/YV12: the luma row
		"NV12": 32, "NV21": 32,
		"YUYV": 64, "UYVY": 64, "YVYU": 64, "VYUY": 64,
		"RGB3": 32, "BGR3": 32, "BGR4": 64, "AB24": 64,
	},
}

// bytesPerPixel of the first plane, for the formats capture drivers give.
var bytesPerPixel = map[string]int{
	"YU12": 1, "YV12": 1, "NV12": 1, "NV21": 1, "NV16": 1, "NV24": 1,
	"YUYV": 2, "UYVY": 2, "YVYU": 2, "VYUY": 2,
	"RGB3": 3, "BGR3": 3, "BGR4": 4, "AB24": 4, "XR24": 4,
}

// captureRowPad is how a capture driver pads rows (bytes):
// bcm2835-unicam.c BPL_ALIGNMENT 32, rp1-cfe 16.
var captureRowPad = map[string]int{"unicam": 32, "rp1-cfe": 16}

// contiguousEncoders need physically contiguous (dma-contig) buffers, so
// they cannot import vmalloc buffers such as UVC's.
var contiguousEncoders = map[string]bool{"bcm2835-codec": true, "coda": true, "vsi_v4l2": true}

// vmallocCapture drivers hand out vmalloc buffers (videobuf2-vmalloc).
var vmallocCapture = map[string]bool{"uvcvideo": true, "vivid": true}

// encoderMaxSize is the largest frame an encoder takes (bcm2835-codec
// MAX_W_CODEC/MAX_H_CODEC 1920; VC8000E 1920x1088 per HARDWARE.md).
var encoderMaxSize = map[string][2]int{"bcm2835-codec": {1920, 1920}, "vsi_v4l2": {1920, 1088}}

// ZeroCopyPossible judges whether frames of this size and fourcc can go
// from the input to the encoder without a copy, and says why (or why not).
// The pipeline planner uses it for the first rung of the fallback ladder.
func ZeroCopyPossible(in VideoInput, enc Encoder, width, height int, fourcc string) (bool, string) {
	switch {
	case !enc.Hardware:
		return false, fmt.Sprintf("%s is a software encoder: mmap capture, frames read from system memory", enc.Element)
	case in.Kind == KindUSB || in.Driver == "uvcvideo":
		return false, "UVC capture uses vmalloc buffers: mmap capture plus one copy"
	case enc.Family != FamilyV4L2M2M:
		switch enc.Family {
		case FamilyNVENC:
			return false, fmt.Sprintf("%s needs NVMM memory: nvvidconv copies each frame in hardware", enc.Element)
		case FamilyOMX:
			return false, "OMX (legacy) copies each frame into VPU memory"
		}
		return false, fmt.Sprintf("dmabuf import from V4L2 capture into %s is not established: mmap capture plus one copy", enc.Element)
	case fourcc == "":
		return false, "capture format unknown until the signal locks: mmap capture plus one copy"
	}
	if bytesPerPixel[fourcc] == 0 {
		return false, fmt.Sprintf("%s is not a raw format %s takes directly (needs decode/convert): one copy", fourcc, enc.Element)
	}
	if contiguousEncoders[enc.Driver] && vmallocCapture[in.Driver] {
		return false, fmt.Sprintf("%s buffers are vmalloc and %s needs contiguous memory: mmap capture plus one copy", in.Driver, enc.Driver)
	}
	if m, ok := encoderMaxSize[enc.Driver]; ok && (width > m[0] || height > m[1]) {
		return false, fmt.Sprintf("%dx%d exceeds %s's %dx%d", width, height, enc.Driver, m[0], m[1])
	}
	aligns, ok := rowAlign[enc.Driver]
	if !ok {
		return true, fmt.Sprintf("dmabuf export from %s, dmabuf-import into %s (%s)", in.Device, enc.Element, enc.Driver)
	}
	align := aligns[fourcc]
	if align == 0 {
		return false, fmt.Sprintf("%s does not take %s: convert plus one copy", enc.Driver, fourcc)
	}
	row := width * bytesPerPixel[fourcc]
	stride := row
	if pad := captureRowPad[in.Driver]; pad > 1 {
		stride = (row + pad - 1) / pad * pad
	}
	// The unpadded row must already meet the encoder's alignment; padding
	// is not relied on. HARDWARE.md lists 1366-wide UYVY as failing on the
	// Pi although unicam pads its 2732-byte rows to 2752 (a multiple of 64).
	if row%align != 0 || stride != row {
		return false, fmt.Sprintf("%dx%d %s rows are %d bytes (stride %d), %s wants a multiple of %d: mmap capture plus one copy",
			width, height, fourcc, row, stride, enc.Driver, align)
	}
	return true, fmt.Sprintf("dmabuf export from %s, dmabuf-import into %s: %dx%d %s rows of %d bytes meet %s's %d-byte alignment",
		in.Device, enc.Element, width, height, fourcc, row, enc.Driver, align)
}
