package config

import (
	"strings"
	"testing"

	"capbox/agent/fleet/wire"
)

// TestIdentifiersFollowTheProtocol: the config accepts exactly the device
// ids, output names and prefixes the fleet protocol does, boundaries
// included, so a box never runs a config whose names the fleet refuses.
func TestIdentifiersFollowTheProtocol(t *testing.T) {
	cases := []struct {
		path, value string
		ok          bool
	}{
		{"device.id", "room-101", true},
		{"device.id", strings.Repeat("a", 63), true},
		{"device.id", strings.Repeat("a", 64), false},
		{"device.id", "-room", false},
		{"device.id", "Room", false},
		{"device.id", "room_1", false},
		{"device.id", "room/1", false},
		{"outputs[0].name", "primary_2-b", true},
		{"outputs[0].name", strings.Repeat("a", 32), true},
		{"outputs[0].name", strings.Repeat("a", 33), false},
		{"outputs[0].name", "_x", false},
		{"outputs[0].name", "Main", false},
		{"outputs[0].name", "a.b", false},
		{"fleet.prefix", "Capbox.v1_x-y", true},
		{"fleet.prefix", strings.Repeat("a", 64), true},
		{"fleet.prefix", strings.Repeat("a", 65), false},
		{"fleet.prefix", ".x", false},
		{"fleet.prefix", "a/b", false},
		{"fleet.prefix", "+", false},
		{"fleet.prefix", "#", false},
	}
	for _, c := range cases {
		cfg := Default()
		var protocolOK bool
		switch c.path {
		case "device.id":
			cfg.Device.ID = c.value
			protocolOK = wire.DeviceIDPattern.MatchString(c.value)
		case "outputs[0].name":
			cfg.Outputs = []Output{{Name: c.value, URL: "srt://:8890?mode=listener"}}
			protocolOK = wire.OutputNamePattern.MatchString(c.value)
		case "fleet.prefix":
			cfg.Fleet.Prefix = c.value
			protocolOK = wire.ValidPrefix(c.value)
		}
		configOK := true
		for _, e := range cfg.Validate() {
			if e.Path == c.path {
				configOK = false
			}
		}
		if configOK != c.ok || protocolOK != c.ok {
			t.Errorf("%s %q: config accepts %v, protocol accepts %v, want %v", c.path, c.value, configOK, protocolOK, c.ok)
		}
	}
}
