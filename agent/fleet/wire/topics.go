package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Topic suffixes under {prefix}/{id}/.
const (
	TopicStatus         = "status"
	TopicMeta           = "meta"
	TopicState          = "state"
	TopicTelemetry      = "telemetry"
	TopicEvtPrefix      = "evt/"
	TopicCmdReqPrefix   = "cmd/req/"
	TopicCmdResPrefix   = "cmd/res/"
	TopicConfigDesired  = "config/desired"
	TopicConfigReported = "config/reported"
	TopicOTAJob         = "ota/job"
	TopicOTAStatus      = "ota/status"
	// TopicPreview and TopicMeter (version 1.1) are in watch.go.
)

// ErrForeignTopic is a publish the link refuses because the topic is not
// one of the box's own (PROTOCOL.md: a box publishes only under its prefix).
var ErrForeignTopic = errors.New("topic outside this box's prefix")

// Topics builds and checks the topics of one box.
type Topics struct {
	Prefix string
	ID     string
}

// Base is "{prefix}/{id}/".
func (t Topics) Base() string { return t.Prefix + "/" + t.ID + "/" }

// T is the full topic for a suffix.
func (t Topics) T(suffix string) string { return t.Base() + suffix }

// boxWrites are the suffixes a box may publish to (PROTOCOL.md ACL).
var boxWrites = []string{TopicStatus, TopicMeta, TopicState, TopicTelemetry,
	TopicPreview, TopicMeter, TopicConfigReported, TopicOTAStatus}

// CheckOutgoing refuses a topic a box must not publish to: anything outside
// its own prefix, any wildcard, any suffix the ACL does not grant it.
func (t Topics) CheckOutgoing(topic string) error {
	rest, ok := strings.CutPrefix(topic, t.Base())
	if !ok || strings.ContainsAny(topic, "+#\x00") {
		return fmt.Errorf("%w: %q", ErrForeignTopic, topic)
	}
	for _, s := range boxWrites {
		if rest == s {
			return nil
		}
	}
	for _, p := range []string{TopicEvtPrefix, TopicCmdResPrefix} {
		if name, ok := strings.CutPrefix(rest, p); ok && namePattern.MatchString(name) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrForeignTopic, topic)
}

// ParseBoxTopic splits "{prefix}/{id}/{suffix}" for any box.
func ParseBoxTopic(prefix, topic string) (id, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", "", false
	}
	id, suffix, ok = strings.Cut(rest, "/")
	if !ok || !DeviceIDPattern.MatchString(id) || suffix == "" {
		return "", "", false
	}
	return id, suffix, true
}

// aclRule is one line of PROTOCOL.md's per-box ACL, relative to {p}/%u/.
type aclRule struct {
	pattern     string
	read, write bool
}

// deviceACL is PROTOCOL.md's ACL, in the order the mosquitto file lists it.
var deviceACL = []aclRule{
	{TopicStatus, true, true},
	{TopicMeta, false, true},
	{TopicState, false, true},
	{TopicTelemetry, false, true},
	{TopicPreview, false, true},
	{TopicMeter, false, true},
	{"evt/#", false, true},
	{"cmd/res/#", false, true},
	{TopicConfigReported, false, true},
	{TopicOTAStatus, false, true},
	{"cmd/req/#", true, false},
	{TopicConfigDesired, true, false},
	{TopicOTAJob, true, false},
}

// MosquittoACL is the ACL file for mosquitto: the per-box patterns with %u
// (never %c: a box could log in under another box's client id) and the
// fleet accounts' full access.
func MosquittoACL(prefix string, fleetUsers ...string) string {
	var b strings.Builder
	b.WriteString("# capbox fleet ACL (PROTOCOL.md). %u is the username = the device id.\n")
	for _, r := range deviceACL {
		access := "write"
		switch {
		case r.read && r.write:
			access = "readwrite"
		case r.read:
			access = "read"
		}
		fmt.Fprintf(&b, "pattern %s %s/%%u/%s\n", access, prefix, r.pattern)
	}
	for _, u := range fleetUsers {
		fmt.Fprintf(&b, "\nuser %s\ntopic readwrite %s/#\n", u, prefix)
	}
	return b.String()
}

// DeviceMayAccess applies PROTOCOL.md's ACL for device user (= its id) to
// a topic (publish, delivery) or a subscription filter. A filter is
// matched level by level with its wildcards taken literally, as mosquitto
// does, so "{p}/{id}/#" is refused while "{p}/{id}/cmd/req/+" is granted.
func DeviceMayAccess(prefix, user, topic string, write bool) bool {
	if !DeviceIDPattern.MatchString(user) {
		return false
	}
	base := prefix + "/" + user + "/"
	for _, r := range deviceACL {
		if (write && !r.write) || (!write && !r.read) {
			continue
		}
		if patternMatches(base+r.pattern, topic) {
			return true
		}
	}
	return false
}

// patternMatches matches an ACL pattern (which may end in # or hold +)
// against a topic or filter whose own wildcards are plain characters.
func patternMatches(pattern, topic string) bool {
	if strings.HasPrefix(topic, "$") {
		return false // $SYS and friends never match a box's patterns
	}
	pl := strings.Split(pattern, "/")
	tl := strings.Split(topic, "/")
	for i, p := range pl {
		if p == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if p != "+" && p != tl[i] {
			return false
		}
	}
	return len(pl) == len(tl)
}

// TopicMatches reports whether an MQTT filter matches a concrete topic.
func TopicMatches(filter, topic string) bool {
	fl := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && len(fl) > 0 && (fl[0] == "+" || fl[0] == "#") {
		return false
	}
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

// FleetMayAccess is the fleet accounts' ACL: read and write anything under
// the prefix (a topic or a filter taken literally), nothing else.
func FleetMayAccess(prefix, topic string) bool {
	return patternMatches(prefix+"/#", topic)
}
