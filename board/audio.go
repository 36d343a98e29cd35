package board

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// soundCard is one ALSA card with its capture PCMs.
type soundCard struct {
	num     int
	id      string // /proc/asound/cardN/id, what hw:CARD= takes
	name    string // short name from /proc/asound/cards
	capture []int  // PCM device numbers with a capture stream
	usbDev  string
	usbID   string
}

// listSoundCards reads /proc/asound (card ids, capture PCMs "pcmNc") and
// /sys/class/sound/cardN/device for the bus.
func listSoundCards(f fsys) ([]soundCard, error) {
	ents, err := f.readDir("/proc/asound")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no sound support at all is not an error
		}
		return nil, fmt.Errorf("asound: %w", err)
	}
	names := shortNames(f)
	var errs []error
	var out []soundCard
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "card") {
			continue
		}
		num, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "card"))
		if err != nil {
			continue // the id symlinks ("MS2109 -> card1") and "cards"
		}
		c := soundCard{num: num, name: names[num]}
		dir := "/proc/asound/" + e.Name()
		if id, err := f.readString(dir + "/id"); err == nil {
			c.id = id
		} else {
			errs = append(errs, fmt.Errorf("sound %s id: %w", e.Name(), err))
			continue
		}
		pcms, err := f.readDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("sound %s: %w", e.Name(), err))
		}
		for _, p := range pcms {
			n := p.Name()
			if strings.HasPrefix(n, "pcm") && strings.HasSuffix(n, "c") {
				if d, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n, "pcm"), "c")); err == nil {
					c.capture = append(c.capture, d)
				}
			}
		}
		if dev, err := f.resolve("/sys/class/sound/" + e.Name() + "/device"); err == nil {
			c.usbDev, c.usbID, _ = busInfo(f, dev)
		}
		out = append(out, c)
	}
	return out, joinErrs(errs)
}

// shortNames parses /proc/asound/cards: " 1 [MS2109         ]: USB-Audio - MS2109".
func shortNames(f fsys) map[int]string {
	out := map[int]string{}
	b, err := f.readFile("/proc/asound/cards")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		open, closeB := strings.IndexByte(line, '['), strings.IndexByte(line, ']')
		if open < 0 || closeB < open {
			continue
		}
		num, err := strconv.Atoi(strings.TrimSpace(line[:open]))
		if err != nil {
			continue
		}
		rest := line[closeB+1:]
		if i := strings.Index(rest, " - "); i >= 0 {
			out[num] = strings.TrimSpace(rest[i+3:])
		} else {
			out[num] = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
		}
	}
	return out
}

// audioInputs lists capture PCMs and matches each to the video input it
// belongs to: the same USB device, or the tc358743 I2S card on a Pi
// (dtoverlay=tc358743-audio names its card "tc358743").
func audioInputs(cards []soundCard, videos []VideoInput, nodes map[string]sysNode, bridges []string) []AudioInput {
	var out []AudioInput
	for _, c := range cards {
		for _, d := range c.capture {
			a := AudioInput{Device: fmt.Sprintf("hw:CARD=%s,DEV=%d", c.id, d), Card: c.name, USBID: c.usbID}
			if a.Card == "" {
				a.Card = c.id
			}
			for _, v := range videos {
				n := nodes[v.Device]
				switch {
				case c.usbDev != "" && n.usbDev == c.usbDev:
					a.VideoDevice = v.Device
				case c.usbDev == "" && v.Kind == KindHDMICSI && bridgeCard(c.id, bridges):
					a.VideoDevice = v.Device
				}
				if a.VideoDevice != "" {
					break
				}
			}
			out = append(out, a)
		}
	}
	return out
}

func bridgeCard(id string, bridges []string) bool {
	l := strings.ToLower(id)
	for _, b := range bridges {
		if strings.Contains(l, b) {
			return true
		}
	}
	return false
}
