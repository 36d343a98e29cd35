package board

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// identify finds the board: device-tree compatible (most specific entry
// first), then the model prefix, then the NXP soc0 id, then DMI on x86.
// /proc/cpuinfo is not used: it says BCM2835 on every Pi.
func identify(f fsys) (Board, Profile, error) {
	var errs []error
	var b Board
	compat, err := f.readFile("/proc/device-tree/compatible")
	hasDT := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("board: compatible: %w", err))
	}
	for _, c := range strings.Split(string(compat), "\x00") {
		if c = strings.TrimSpace(c); c != "" {
			b.Compatible = append(b.Compatible, c)
		}
	}
	if hasDT {
		if m, err := f.readString("/proc/device-tree/model"); err == nil {
			b.Model = m
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("board: model: %w", err))
		}
	}
	socID, _ := f.readString("/sys/devices/soc0/soc_id")

	p, ok := matchProfile(b.Compatible, b.Model, socID)
	switch {
	case ok:
	case !hasDT && f.exists("/sys/class/dmi/id"):
		p = x86Profile
		vendor, _ := f.readString("/sys/class/dmi/id/sys_vendor")
		product, _ := f.readString("/sys/class/dmi/id/product_name")
		boardName, _ := f.readString("/sys/class/dmi/id/board_name")
		b.Model = strings.TrimSpace(vendor + " " + product)
		b.SoC = boardName
	default:
		p = unknownProfile
	}
	b.ID, b.Family = p.ID, p.Family
	if p.SoC != "" {
		b.SoC = p.SoC
	}
	if b.SoC == "" && socID != "" {
		b.SoC = socID
	}
	b.ExpectedEncoder = p.Encoder
	b.CSILanes = p.CSILanes
	b.MaxHDMIFPS = p.MaxHDMIFPS
	b.Limits = p.Limits
	if b.Model == "" && socID != "" {
		fam, _ := f.readString("/sys/devices/soc0/family")
		b.Model = strings.TrimSpace(fam + " " + socID)
	}
	return b, p, errors.Join(errs...)
}

func matchProfile(compat []string, model, socID string) (Profile, bool) {
	for _, c := range compat {
		for _, p := range profiles {
			for _, pc := range p.Compatible {
				if c == pc {
					return p, true
				}
			}
		}
	}
	for _, p := range profiles {
		if p.ModelPrefix != "" && strings.HasPrefix(model, p.ModelPrefix) {
			return p, true
		}
	}
	for _, p := range profiles {
		for _, id := range p.SoCID {
			if socID == id {
				return p, true
			}
		}
	}
	return Profile{}, false
}
