package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Version 1 commands (PROTOCOL.md).
const (
	CmdPing            = "ping"
	CmdRebirth         = "rebirth"
	CmdRestartPipeline = "restart_pipeline"
	CmdRestartOutput   = "restart_output"
	CmdStartOutput     = "start_output"
	CmdStopOutput      = "stop_output"
	CmdStartRecording  = "start_recording"
	CmdStopRecording   = "stop_recording"
	CmdSnapshot        = "snapshot"
	CmdSetLogLevel     = "set_log_level"
	CmdDetect          = "detect"
	CmdReboot          = "reboot"
)

// Args are a command's arguments, decoded and checked by the link; only
// the fields the command takes are set.
type Args struct {
	// Name is the output of restart_output, start_output, stop_output.
	Name string
	// Level is set_log_level's level: debug, info, warn or error.
	Level string
	// What, Interval and Expiry are watch's (version 1.1; ParseWatch
	// checks their bounds).
	What, Interval, Expiry string
}

// ArgSpec is one argument a command takes (all are strings in version 1).
type ArgSpec struct {
	Key string
	// Allowed lists the accepted values; Pattern checks free-form ones.
	Allowed []string
	Pattern *regexp.Regexp
	Help    string
}

// CommandSpec describes one command.
type CommandSpec struct {
	Name string
	Args []ArgSpec
	// Box is false for commands the link answers itself (ping, rebirth).
	Box bool
	// Timeout is how long the box may take before the answer is an error.
	Timeout time.Duration
	Help    string
}

var outputArg = []ArgSpec{{Key: "name", Pattern: OutputNamePattern, Help: "output name"}}

// Commands is the fixed table of version 1 commands, in PROTOCOL.md order.
var Commands = []CommandSpec{
	{Name: CmdPing, Timeout: time.Second, Help: "answer with the box's time and session"},
	{Name: CmdRebirth, Timeout: 5 * time.Second, Help: "republish status, meta, state and config/reported"},
	{Name: CmdRestartPipeline, Box: true, Timeout: 60 * time.Second, Help: "rebuild and restart the whole pipeline"},
	{Name: CmdRestartOutput, Box: true, Args: outputArg, Timeout: 30 * time.Second, Help: "restart one output"},
	{Name: CmdStartOutput, Box: true, Args: outputArg, Timeout: 30 * time.Second, Help: "start a stopped output"},
	{Name: CmdStopOutput, Box: true, Args: outputArg, Timeout: 30 * time.Second, Help: "stop one output (until started or restarted)"},
	{Name: CmdStartRecording, Box: true, Timeout: 30 * time.Second, Help: "start the local recording"},
	{Name: CmdStopRecording, Box: true, Timeout: 30 * time.Second, Help: "stop the local recording"},
	{Name: CmdSnapshot, Box: true, Timeout: 15 * time.Second, Help: "a small JPEG of the live input (base64, <= 12 KiB)"},
	{Name: CmdSetLogLevel, Box: true, Args: []ArgSpec{{Key: "level", Allowed: []string{"debug", "info", "warn", "error"}, Help: "log level"}},
		Timeout: 5 * time.Second, Help: "change the agent's log level until restart"},
	{Name: CmdDetect, Box: true, Timeout: 60 * time.Second, Help: "re-run hardware detection (meta is republished)"},
	{Name: CmdReboot, Box: true, Timeout: 30 * time.Second, Help: "reboot the box"},
}

// LookupCommand finds a command by name.
func LookupCommand(name string) (CommandSpec, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
	}
	return CommandSpec{}, false
}

// DecodeArgs checks a request's raw args against the command's spec: an
// object of strings with exactly the keys the command takes.
func DecodeArgs(spec CommandSpec, raw json.RawMessage) (Args, error) {
	var m map[string]json.RawMessage
	if r := bytes.TrimSpace(raw); len(r) > 0 && !bytes.Equal(r, []byte("null")) {
		if err := json.Unmarshal(r, &m); err != nil {
			return Args{}, fmt.Errorf("%w: want an object", ErrBadArgs)
		}
	}
	var a Args
	for _, as := range spec.Args {
		v, ok := m[as.Key]
		if !ok {
			return Args{}, fmt.Errorf("%w: %s is required (%s)", ErrBadArgs, as.Key, as.Help)
		}
		delete(m, as.Key)
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return Args{}, fmt.Errorf("%w: %s: want a string", ErrBadArgs, as.Key)
		}
		if err := as.check(s); err != nil {
			return Args{}, err
		}
		switch as.Key {
		case "name":
			a.Name = s
		case "level":
			a.Level = s
		case "what":
			a.What = s
		case "interval":
			a.Interval = s
		case "expiry":
			a.Expiry = s
		}
	}
	for k := range m {
		if len(k) > 32 || !utf8Printable(k) {
			return Args{}, fmt.Errorf("%w: unknown argument", ErrBadArgs)
		}
		return Args{}, fmt.Errorf("%w: %s takes no argument %q", ErrBadArgs, spec.Name, k)
	}
	return a, nil
}

func (as ArgSpec) check(s string) error {
	if len(as.Allowed) > 0 {
		for _, v := range as.Allowed {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("%w: %s: want one of %v", ErrBadArgs, as.Key, as.Allowed)
	}
	if as.Pattern != nil && !as.Pattern.MatchString(s) {
		return fmt.Errorf("%w: %s: want %s", ErrBadArgs, as.Key, as.Pattern)
	}
	return nil
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
