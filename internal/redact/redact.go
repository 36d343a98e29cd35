// Package redact hides secrets in output URLs: what URL replaces by *** is
// exactly what URLSecrets lists, one rule. It has no dependencies, so the
// box (its config, planner and fleet link) and the operators' tool
// (agent/fleet/wire, built for macOS and Windows too) share it.
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
	if isRTMP(u) {
		if app, _, ok := strings.Cut(strings.Trim(u.Path, "/"), "/"); ok {
			u.Path = "/" + app + "/" + Redacted
		}
	}
	// url.String escapes the asterisks in some positions; keep them readable.
	return strings.NewReplacer("%2A%2A%2A", Redacted, "%2a%2a%2a", Redacted).Replace(u.String())
}

// URLSecrets lists the secret parts of an output URL, those URL hides: a
// user password, an SRT passphrase, the RTMP stream name, each also in the
// escaped forms it takes in a URL's text, so that a scrubber finds them
// wherever a URL was quoted. A URL that does not parse names none.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	if p := u.Query().Get("passphrase"); p != "" {
		out = append(out, p, url.QueryEscape(p))
	}
	if isRTMP(u) {
		if _, stream, ok := strings.Cut(strings.Trim(u.Path, "/"), "/"); ok && stream != "" {
			out = append(out, stream, url.PathEscape(stream))
		}
	}
	return out
}

func isRTMP(u *url.URL) bool {
	s := strings.ToLower(u.Scheme)
	return s == "rtmp" || s == "rtmps"
}
