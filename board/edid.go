package board

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

const edidBlockSize = 128

// maxEDIDBlocks is the most a receiver takes (tc358743 EDID_NUM_BLOCKS_MAX
// is 8; the V4L2 API allows 256). Anything longer is refused.
const maxEDIDBlocks = 8

var edidHeader = []byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}

// The default EDIDs (256 bytes: base block + CEA-861 extension), made by
// buildEDID in edid_gen_test.go and checked there on every test run:
//
//   - manufacturer LNX (the id the kernel's generic EDIDs use), product
//     0xCB01, monitor name "capbox", EDID 1.3, digital input;
//   - established 640x480@60, 800x600@60, 1024x768@60; standard timings
//     1280x720@60 (and 1280x1024@60, 1920x1080@60 in the 60 Hz one);
//   - preferred (first detailed) timing 1920x1080p60 at 148.5 MHz (CEA
//     VIC 16), or 1080p30 at 74.25 MHz (VIC 34) in the 30 Hz one;
//   - range limits 23-61 Hz vertical, 15-68 kHz horizontal, 150 MHz
//     (30 Hz: 15-50 kHz, 80 MHz);
//   - CEA-861 rev 3 extension: underscan, basic audio, RGB only; video block with
//     1080p60/50/30/25/24, 720p60/50, 480p, 576p, VGA (1080p60/50 left
//     out of the 30 Hz one); audio block LPCM 2 channels 32/44.1/48 kHz
//     16/20/24 bit; speaker allocation FL/FR; HDMI vendor block
//     (OUI 00-0C-03, physical address 1.0.0.0, max TMDS 165 MHz) so
//     sources send HDMI with audio, not DVI; a video capability block
//     (selectable RGB quantization); a 720p60 detailed timing.
//
// edid-decode --check passes both (TestDefaultEDIDConformity).
//
//go:embed edid/default-1080p60.bin
var defaultEDID60 []byte

//go:embed edid/default-1080p30.bin
var defaultEDID30 []byte

// DefaultEDID is the built-in 1080p60-capable EDID with audio.
func DefaultEDID() []byte { return bytes.Clone(defaultEDID60) }

// DefaultEDIDFor is the default EDID for a board: boards whose HDMI-CSI
// path cannot carry 1080p50/60 (Pi 4: two CSI lanes) get the variant that
// prefers 1080p30 and does not offer faster 1080p modes, so the source
// never sends what the bridge cannot capture.
func DefaultEDIDFor(b Board) []byte {
	if b.MaxHDMIFPS > 0 && b.MaxHDMIFPS < 50 {
		return bytes.Clone(defaultEDID30)
	}
	return DefaultEDID()
}

// EDIDFromConfig resolves config capture.edid: "default" (or "") is the
// board's default EDID, "none" is nil (leave the receiver alone), anything
// else is a binary or hex EDID file.
func EDIDFromConfig(setting string, b Board) ([]byte, error) {
	switch setting {
	case "", "default":
		return DefaultEDIDFor(b), nil
	case "none":
		return nil, nil
	}
	return ReadEDIDFile(setting)
}

// ReadEDIDFile reads an EDID file, binary or hex.
func ReadEDIDFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edid: %w", err)
	}
	e, err := ParseEDIDFile(b)
	if err != nil {
		return nil, fmt.Errorf("edid %s: %w", path, err)
	}
	return e, nil
}

// ErrBadEDID is wrapped by every EDID validation failure.
var ErrBadEDID = errors.New("invalid EDID")

// ParseEDIDFile accepts a binary EDID or a hex dump (v4l2-ctl
// --get-edid=format=hex, edid-decode output's hex part, "0x00, 0xff"
// arrays; '#' starts a comment) and returns the validated bytes.
func ParseEDIDFile(data []byte) ([]byte, error) {
	if len(data) > 64<<10 {
		return nil, fmt.Errorf("%w: file of %d bytes is too large", ErrBadEDID, len(data))
	}
	var raw []byte
	if bytes.HasPrefix(data, edidHeader) {
		raw = data
	} else {
		var err error
		if raw, err = decodeHexEDID(data); err != nil {
			return nil, err
		}
	}
	if err := ValidateEDID(raw); err != nil {
		return nil, err
	}
	return bytes.Clone(raw), nil
}

func decodeHexEDID(data []byte) ([]byte, error) {
	var digits strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.NewReplacer("0x", "", "0X", "", ",", " ", ":", " ", ";", " ", "\r", " ", "\t", " ").Replace(line)
		for _, r := range line {
			switch {
			case r == ' ':
			case strings.ContainsRune("0123456789abcdefABCDEF", r):
				digits.WriteRune(r)
			default:
				return nil, fmt.Errorf("%w: neither binary nor hex (found %q)", ErrBadEDID, r)
			}
		}
	}
	s := digits.String()
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of hex digits", ErrBadEDID)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEDID, err)
	}
	return b, nil
}

// ValidateEDID checks the structure a receiver needs: whole blocks, the
// header, the extension count, and every block's checksum.
func ValidateEDID(b []byte) error {
	switch {
	case len(b) == 0 || len(b)%edidBlockSize != 0:
		return fmt.Errorf("%w: %d bytes is not a whole number of 128-byte blocks", ErrBadEDID, len(b))
	case len(b)/edidBlockSize > maxEDIDBlocks:
		return fmt.Errorf("%w: %d blocks, receivers take at most %d", ErrBadEDID, len(b)/edidBlockSize, maxEDIDBlocks)
	case !bytes.Equal(b[:8], edidHeader):
		return fmt.Errorf("%w: bad header", ErrBadEDID)
	case int(b[126])+1 != len(b)/edidBlockSize:
		return fmt.Errorf("%w: base block announces %d extensions, file has %d", ErrBadEDID, b[126], len(b)/edidBlockSize-1)
	}
	for i := 0; i < len(b); i += edidBlockSize {
		if sum := checksum(b[i : i+edidBlockSize]); sum != 0 {
			return fmt.Errorf("%w: block %d checksum off by %d", ErrBadEDID, i/edidBlockSize, sum)
		}
	}
	return nil
}

func checksum(block []byte) byte {
	var s byte
	for _, c := range block {
		s += c
	}
	return s
}

// FixEDIDChecksums rewrites every block's checksum byte in place, like
// v4l2-ctl --fix-edid-checksums.
func FixEDIDChecksums(b []byte) {
	for i := 0; i+edidBlockSize <= len(b); i += edidBlockSize {
		blk := b[i : i+edidBlockSize]
		blk[127] = 0
		blk[127] = -checksum(blk)
	}
}

// EDIDInfo is what an EDID says, for logs and the detect report.
type EDIDInfo struct {
	Manufacturer string `json:"manufacturer"`
	Product      uint16 `json:"product"`
	Name         string `json:"name,omitempty"`
	Version      string `json:"version"`
	// Preferred is the first detailed timing.
	PreferredWidth  int     `json:"preferred_width,omitempty"`
	PreferredHeight int     `json:"preferred_height,omitempty"`
	PreferredFPS    float64 `json:"preferred_fps,omitempty"`
	Extensions      int     `json:"extensions"`
	HDMI            bool    `json:"hdmi"`  // HDMI vendor-specific data block present
	Audio           bool    `json:"audio"` // CEA audio data block or basic-audio flag
	VICs            []int   `json:"vics,omitempty"`
	PhysicalAddress string  `json:"physical_address,omitempty"`
}

// ParseEDID validates an EDID and reads its main facts. It never panics on
// any input (fuzzed).
func ParseEDID(b []byte) (EDIDInfo, error) {
	var info EDIDInfo
	if err := ValidateEDID(b); err != nil {
		return info, err
	}
	m := uint16(b[8])<<8 | uint16(b[9])
	info.Manufacturer = string([]byte{byte('A' - 1 + (m>>10)&0x1f), byte('A' - 1 + (m>>5)&0x1f), byte('A' - 1 + m&0x1f)})
	info.Product = uint16(b[10]) | uint16(b[11])<<8
	info.Version = fmt.Sprintf("%d.%d", b[18], b[19])
	info.Extensions = int(b[126])
	for d := 54; d < 126; d += 18 {
		desc := b[d : d+18]
		if desc[0] != 0 || desc[1] != 0 {
			if info.PreferredWidth == 0 {
				info.PreferredWidth, info.PreferredHeight, info.PreferredFPS = dtdMode(desc)
			}
			continue
		}
		if desc[3] == 0xfc {
			info.Name = strings.TrimSpace(strings.SplitN(string(desc[5:18]), "\n", 2)[0])
		}
	}
	var errs []error
	for i := 1; i <= info.Extensions; i++ {
		if err := parseCEA(b[i*edidBlockSize:(i+1)*edidBlockSize], &info); err != nil {
			errs = append(errs, fmt.Errorf("block %d: %w", i, err))
		}
	}
	return info, joinErrs(errs)
}

// dtdMode reads a detailed timing descriptor (EDID 1.3 section 3.10.2).
func dtdMode(d []byte) (w, h int, fps float64) {
	clk := float64(int(d[0])|int(d[1])<<8) * 10000
	hact := int(d[2]) | int(d[4]&0xf0)<<4
	hbl := int(d[3]) | int(d[4]&0x0f)<<8
	vact := int(d[5]) | int(d[7]&0xf0)<<4
	vbl := int(d[6]) | int(d[7]&0x0f)<<8
	if tot := float64((hact + hbl) * (vact + vbl)); tot > 0 {
		fps = roundFPS(clk / tot)
	}
	return hact, vact, fps
}

// parseCEA reads a CEA-861 extension's data block collection.
func parseCEA(blk []byte, info *EDIDInfo) error {
	if blk[0] != 0x02 {
		return nil // not CEA-861 (DisplayID, block map...): nothing to read
	}
	if blk[1] >= 2 && blk[3]&0x40 != 0 {
		info.Audio = true
	}
	end := int(blk[2])
	if end == 0 {
		return nil // no data blocks, no DTDs
	}
	if end < 4 || end > 127 {
		return fmt.Errorf("%w: CEA detailed timing offset %d", ErrBadEDID, end)
	}
	for i := 4; i < end; {
		tag, n := blk[i]>>5, int(blk[i]&0x1f)
		if i+1+n > end {
			return fmt.Errorf("%w: CEA data block at %d overruns the collection", ErrBadEDID, i)
		}
		body := blk[i+1 : i+1+n]
		switch tag {
		case 1:
			if n >= 3 {
				info.Audio = true
			}
		case 2:
			for _, v := range body {
				info.VICs = append(info.VICs, int(v&0x7f))
			}
		case 3:
			if n >= 5 && body[0] == 0x03 && body[1] == 0x0c && body[2] == 0x00 {
				info.HDMI = true
				info.PhysicalAddress = fmt.Sprintf("%d.%d.%d.%d", body[3]>>4, body[3]&0xf, body[4]>>4, body[4]&0xf)
			}
		}
		i += 1 + n
	}
	return nil
}
