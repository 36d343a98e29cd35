package board

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Uevent is one kernel uevent (lib/kobject_uevent.c): "ACTION@DEVPATH"
// then NUL-separated KEY=VALUE pairs.
type Uevent struct {
	Action    string
	DevPath   string
	Subsystem string
	DevName   string // DEVNAME, relative to /dev ("video0", "snd/pcmC1D0c")
	Seqnum    string
	Env       map[string]string
}

// ErrNotUevent is returned for messages that are not kernel uevents
// (libudev's "libudev\0" monitor packets, truncated data).
var ErrNotUevent = errors.New("not a kernel uevent")

// maxUevent is the kernel's UEVENT_BUFFER_SIZE (2048) with room to spare.
const maxUevent = 8192

// ParseUevent parses one NETLINK_KOBJECT_UEVENT datagram. It never panics
// (fuzzed) and rejects anything that is not a well-formed kernel message.
func ParseUevent(msg []byte) (Uevent, error) {
	var u Uevent
	if len(msg) == 0 || len(msg) > maxUevent {
		return u, fmt.Errorf("%w: %d bytes", ErrNotUevent, len(msg))
	}
	if bytes.HasPrefix(msg, []byte("libudev\x00")) {
		return u, fmt.Errorf("%w: libudev monitor packet", ErrNotUevent)
	}
	fields := bytes.Split(bytes.TrimRight(msg, "\x00"), []byte{0})
	head := string(fields[0])
	at := strings.IndexByte(head, '@')
	if at <= 0 || at == len(head)-1 {
		return u, fmt.Errorf("%w: header %q", ErrNotUevent, trimForError(head))
	}
	u.Action, u.DevPath = head[:at], head[at+1:]
	u.Env = make(map[string]string, len(fields)-1)
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || k == "" {
			continue
		}
		u.Env[k] = v
	}
	if a := u.Env["ACTION"]; a != "" && a != u.Action {
		return u, fmt.Errorf("%w: ACTION %q disagrees with header %q", ErrNotUevent, trimForError(a), trimForError(u.Action))
	}
	if p := u.Env["DEVPATH"]; p != "" && p != u.DevPath {
		return u, fmt.Errorf("%w: DEVPATH disagrees with header", ErrNotUevent)
	}
	u.Subsystem = u.Env["SUBSYSTEM"]
	u.DevName = u.Env["DEVNAME"]
	u.Seqnum = u.Env["SEQNUM"]
	if u.Subsystem == "" {
		return u, fmt.Errorf("%w: no SUBSYSTEM", ErrNotUevent)
	}
	return u, nil
}

func trimForError(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
