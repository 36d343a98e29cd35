package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
)

// Box is what the link needs from the agent. Every method but Command and
// ApplyConfig must return quickly (they run on the link's loop): the agent
// answers from cached values.
type Box interface {
	// Meta describes the box; the link redacts output URLs and fills the
	// header, boot_id (when empty), the telemetry interval and the command
	// list: Meta().Commands names the box commands this box supports
	// (empty: all of them); ping and rebirth are the link's own.
	Meta() wire.Meta
	// State is the current operational state; the link fills the header
	// and, when empty, Mood. ConfigVersion must be the version last
	// applied through ApplyConfig (0 while the box runs its file).
	State() wire.State
	// Telemetry is the latest health sample from the agent's collector.
	Telemetry() wire.Telemetry
	// StateChanged signals that State changed. Send without blocking on a
	// channel with a buffer of 1; the link coalesces and rate-limits.
	StateChanged() <-chan struct{}
	// Events are discrete events; the link always drains the channel and
	// queues them (bounded) while offline.
	Events() <-chan wire.Event
	// Command runs one of the box commands (wire.Commands with Box set)
	// with arguments the link decoded and checked, within the command's
	// Timeout. It must return when ctx is done. Return a *CommandError for
	// a specific code (Rejectf for a refusal without trying); other errors
	// are E_FAILED. Errors must carry no secret. For reboot, answer first
	// and reboot after the link's Run has returned (cancel its context):
	// the link then says "disconnected (reboot)".
	Command(ctx context.Context, name string, args wire.Args) (Result, error)
	// ApplyConfig validates and applies a whole config document (JSON, the
	// YAML file's schema) through the agent's config path. It returns the
	// SHA-256 of the effective config, or the problems by path and keeps
	// the old config running. The link has already checked the document
	// with config.Parse; it persists the applied one.
	ApplyConfig(ctx context.Context, version int64, doc json.RawMessage) (effectiveSHA256 string, errs []config.FieldError)
}

// Result is what a box command returns beyond success.
type Result struct {
	// JPEG is the snapshot (at most wire.MaxSnapshotJPEG = 9216 bytes, so
	// that its base64 fits 12 KiB: scale to ~320x180, quality ~60).
	JPEG []byte
	// Data is any other result (detect: the *board.Detection); it is
	// marshalled as the response's result and must carry no secret.
	Data any
}

// CommandError is a command failure with a protocol error code.
type CommandError struct {
	Code string
	Msg  string
	// Status is the response status: error (default) or rejected (the box
	// refused without trying: wrong state, unknown output).
	Status string
}

func (e *CommandError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Msg) }

// Errorf builds a CommandError with status error.
func Errorf(code, format string, args ...any) error {
	return &CommandError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Rejectf builds a CommandError with status rejected.
func Rejectf(code, format string, args ...any) error {
	return &CommandError{Code: code, Msg: fmt.Sprintf(format, args...), Status: wire.ResRejected}
}

// ErrUnsupported is what a Box returns for a command it does not implement
// on this hardware; the answer is "unsupported".
var ErrUnsupported = errors.New("command not supported by this box")
