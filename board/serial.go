package board

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrNoSerial means neither a board serial nor a machine-id exists.
var ErrNoSerial = errors.New("no board serial and no machine-id")

// Serial is the box's hardware identity for device.id "auto": the
// device-tree serial number (Raspberry Pi, many ARM boards), else
// /etc/machine-id (systemd; x86 and VMs).
func Serial(root string) (string, error) {
	f := newFsys(root)
	var errs []error
	for _, p := range []string{"/sys/firmware/devicetree/base/serial-number", "/proc/device-tree/serial-number", "/etc/machine-id"} {
		s, err := f.readString(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || strings.Trim(s, "0") == "" || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
			errs = append(errs, fmt.Errorf("%s: unusable value %q", p, trimForError(s)))
			continue
		}
		return s, nil
	}
	return "", fmt.Errorf("%w: %w", ErrNoSerial, joinErrs(errs))
}
