package agent

import (
	"fmt"
	"strings"

	"capbox/board"
)

// DeviceID resolves config's device.id: "auto" becomes "capbox-" and the
// last 12 characters of the board serial (else /etc/machine-id), a valid
// PROTOCOL.md id that stays the same across reinstalls of the same board.
func DeviceID(configured, root string) (string, error) {
	if configured != "auto" {
		return configured, nil
	}
	serial, err := board.Serial(root)
	if err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(serial) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), "0")
	if s == "" {
		return "", fmt.Errorf("device id: serial %q has no usable characters", serial)
	}
	if len(s) > 12 {
		s = s[len(s)-12:]
	}
	return "capbox-" + s, nil
}
