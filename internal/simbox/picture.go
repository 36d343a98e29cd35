package simbox

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"sync"
	"time"
)

// Preview size: what a real box sends (PROTOCOL.md "preview").
const (
	previewW = 320
	previewH = 180
)

// bars are the colour bars of the test pattern, left to right.
var bars = []color.RGBA{
	{192, 192, 192, 255}, {192, 192, 0, 255}, {0, 192, 192, 255}, {0, 192, 0, 255},
	{192, 0, 192, 255}, {192, 0, 0, 255}, {0, 0, 192, 255},
}

// frames holds the previews of the last seconds: a picture changes once a
// second, and the boxes of one look share it, so a fleet of thousands
// encodes a few JPEGs a second rather than one per box.
var frames struct {
	sync.Mutex
	jpeg map[string][]byte
	at   int64
}

// looks is how many pictures the boxes take turns with.
const looks = 4

// previewJPEG is the preview of a box whose index is look at t.
func previewJPEG(look int, t time.Time, signal bool) []byte {
	sec := t.Unix()
	key := fmt.Sprintf("%d/%v", look%looks, signal)
	frames.Lock()
	defer frames.Unlock()
	if frames.at != sec {
		frames.jpeg, frames.at = map[string][]byte{}, sec
	}
	if b, ok := frames.jpeg[key]; ok {
		return b
	}
	b := encodeJPEG(picture(look%looks, time.Unix(sec, 0), signal))
	frames.jpeg[key] = b
	return b
}

// picture draws what a box's input shows at t: colour bars (rotated by
// look), a block that steps across once every 10 s and the clock; without
// signal, the slate ("NO SIGNAL" and the clock), as a real box does.
func picture(look int, t time.Time, signal bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, previewW, previewH))
	if signal {
		for x := range previewW {
			c := bars[(x*len(bars)/previewW+look)%len(bars)]
			for y := range previewH * 2 / 3 {
				img.SetRGBA(x, y, c)
			}
		}
		fill(img, image.Rect(0, previewH*2/3, previewW, previewH), color.RGBA{16, 16, 24, 255})
		// A white block that moves one step a second.
		step := int(t.Unix()%10) * (previewW - 16) / 9
		fill(img, image.Rect(step, previewH*2/3-12, step+16, previewH*2/3), color.RGBA{255, 255, 255, 255})
	} else {
		fill(img, img.Bounds(), color.RGBA{40, 44, 52, 255})
		text(img, "NO SIGNAL", 6, 40, 3, color.RGBA{230, 230, 230, 255})
	}
	text(img, t.Format("15:04:05"), 6, previewH*2/3+12, 4, color.RGBA{255, 255, 255, 255})
	return img
}

// encodeJPEG encodes at a quality that keeps a preview well under the
// snapshot limit (9216 bytes) and so under the preview's.
func encodeJPEG(img image.Image) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 50})
	return buf.Bytes()
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// text draws s in a 5x7 bitmap font, each dot scale pixels square.
func text(img *image.RGBA, s string, x, y, scale int, c color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			x += 6 * scale
			continue
		}
		for row, bits := range g {
			for col, b := range bits {
				if b == '#' {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += 6 * scale
	}
}

// glyphs is a 5x7 font for digits, capitals and the few signs room names
// and clocks use.
var glyphs = map[rune][7]string{
	'0': {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5': {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6': {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8': {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	':': {"     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "},
	'-': {"     ", "     ", "     ", " ### ", "     ", "     ", "     "},
	'A': {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'B': {"#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "},
	'C': {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "},
	'D': {"#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'F': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "},
	'G': {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"},
	'H': {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'I': {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'J': {"  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "},
	'K': {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"},
	'N': {"#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"},
	'O': {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'P': {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "},
	'Q': {" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"},
	'R': {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"},
	'S': {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "},
	'W': {"#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "},
	'X': {"#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"},
	'Y': {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "},
	'Z': {"#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"},
}
