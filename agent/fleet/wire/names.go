package wire

import "regexp"

// The identifiers both sides check, each defined once: the box's config
// validation (agent/config), the link, the broker and capboxctl use these.
// The syntaxes are the patterns' text for messages.
const (
	// DeviceIDSyntax is PROTOCOL.md's device id (one topic level).
	DeviceIDSyntax = `[a-z0-9][a-z0-9-]{0,62}`
	// OutputNameSyntax is an output's name (config outputs[].name, the
	// name argument of the output commands).
	OutputNameSyntax = `[a-z0-9][a-z0-9_-]{0,31}`
	// PrefixSyntax is the topic prefix (fleet.prefix): one topic level
	// without wildcards.
	PrefixSyntax = `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`
)

var (
	// DeviceIDPattern matches a whole device id.
	DeviceIDPattern = regexp.MustCompile(`^` + DeviceIDSyntax + `$`)
	// OutputNamePattern matches a whole output name.
	OutputNamePattern = regexp.MustCompile(`^` + OutputNameSyntax + `$`)
	prefixPattern     = regexp.MustCompile(`^` + PrefixSyntax + `$`)
	// namePattern is a command name or event type: one safe topic level.
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,31}$`)
)

// ValidName reports whether s can be a command name or event type.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// ValidPrefix reports whether s can be a topic prefix.
func ValidPrefix(s string) bool { return prefixPattern.MatchString(s) }
