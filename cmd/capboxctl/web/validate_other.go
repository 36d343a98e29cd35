//go:build !linux

package web

import "capbox/agent/fleet/wire"

// checkConfig: agent/config builds on Linux only; here the box's own
// report (config/reported) is the check.
func checkConfig([]byte) []wire.FieldError { return nil }
