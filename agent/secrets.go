package agent

import (
	"capbox/agent/config"
	"capbox/internal/redact"
)

// ConfigSecrets lists the secrets in a parsed config: stream keys, SRT
// passphrases, RTSP passwords, the fleet password. The agent passes them to
// fleet.WithSecrets so the link can scrub them from anything it sends.
func ConfigSecrets(cfg config.Config) []string {
	var out []string
	for _, o := range cfg.Outputs {
		out = append(out, o.Key)
		out = append(out, redact.URLSecrets(o.URL)...)
	}
	return append(out, cfg.Fleet.Password)
}
