// Package redact hides secrets in output URLs. It has no dependencies, so
// the box (pipelines) and the operators' tool (agent/fleet/wire, built
// for macOS and Windows too) share one rule.
package redact

import (
	"net/url"
	"strings"
)

// Redacted is what every secret looks like outside the box.
const Redacted = "***"

// URL returns raw with every secret it may hold replaced by ***: a user
// password, an SRT passphrase, the RTMP stream name (the last path
// element after the application). A URL that does not parse is replaced
// whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		}
	}
	if q := u.Query(); q.Has("passphrase") {
		q.Set("passphrase", Redacted)
		u.RawQuery = q.Encode()
	}
	if s := strings.ToLower(u.Scheme); s == "rtmp" || s == "rtmps" {
		if app, _, ok := strings.Cut(strings.Trim(u.Path, "/"), "/"); ok {
			u.Path = "/" + app + "/" + Redacted
		}
	}
	// url.String escapes the asterisks in some positions; keep them readable.
	return strings.NewReplacer("%2A%2A%2A", Redacted, "%2a%2a%2a", Redacted).Replace(u.String())
}
