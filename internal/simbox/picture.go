package simbox

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
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

// picture draws what the box's input shows at t: colour bars with the
// room's name, a bar that sweeps once every 10 s and the clock; without
// signal, the slate ("NO SIGNAL" and the clock), as a real box does.
func picture(room string, t time.Time, signal bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, previewW, previewH))
	if signal {
		for x := range previewW {
			c := bars[x*len(bars)/previewW]
			for y := range previewH * 2 / 3 {
				img.SetRGBA(x, y, c)
			}
		}
		fill(img, image.Rect(0, previewH*2/3, previewW, previewH), color.RGBA{16, 16, 24, 255})
		// The sweep: a white block whose place is the tenth of a second.
		sweep := int(t.UnixMilli()%10_000) * (previewW - 16) / 10_000
		fill(img, image.Rect(sweep, previewH*2/3-12, sweep+16, previewH*2/3), color.RGBA{255, 255, 255, 255})
		text(img, strings.ToUpper(room), 6, 6, 2, color.RGBA{0, 0, 0, 255})
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
