package pipelines

import (
	"fmt"

	"capbox/board"
)

// zeroCopyPossible applies HARDWARE.md section 4: dmabuf import works only
// when the capture buffers' stride suits the encoder. UVC devices use
// vmalloc buffers that cannot be exported usefully.
func zeroCopyPossible(in board.VideoInput, enc board.Encoder, width, height int, fourcc string) (bool, string) {
	if in.Kind == board.KindUSB {
		return false, "USB capture uses vmalloc buffers: mmap capture and one copy"
	}
	if enc.Driver == "bcm2835-codec" {
		// bcm2835-codec: bytesperline aligned to 64 for I420 and packed
		// 4:2:2, 32 for NV12; unicam pads lines to 32 bytes only.
		bpp, align := 2, 64
		switch fourcc {
		case "NV12":
			bpp, align = 1, 32
		case "YU12":
			bpp, align = 1, 64
		case "RGB3", "BGR3":
			bpp, align = 3, 64
		}
		if stride := width * bpp; stride%align != 0 {
			return false, fmt.Sprintf("%dx%d %s: stride %d is not %d-byte aligned for bcm2835-codec", width, height, fourcc, stride, align)
		}
	}
	return true, fmt.Sprintf("%s exports dmabuf, %s imports it", in.Driver, enc.Element)
}
