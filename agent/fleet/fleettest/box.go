// Package fleettest is a simulated box for tests and benchmarks of the
// fleet side: a fleet.Box that answers from values the caller sets, so the
// real link, a real broker and capboxctl run without an agent or a
// pipeline. It depends on neither, like the link itself.
package fleettest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"sync"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
)

// Box is a simulated agent behind a fleet.Link. Its documents (meta,
// state, telemetry) are what the setters last made them; its commands
// and config applies follow the defaults below unless OnCommand or
// OnApply replace them. Every method is safe from any goroutine.
type Box struct {
	mu        sync.Mutex
	meta      wire.Meta
	state     wire.State
	tel       wire.Telemetry
	telFrom   func() wire.Telemetry
	snapshot  []byte
	onCommand func(ctx context.Context, name string, args wire.Args) (fleet.Result, error)
	onApply   func(version int64, doc json.RawMessage) []config.FieldError
	changed   chan struct{}
	events    chan wire.Event

	calls    []string // box commands and "apply", in order
	applies  []int64  // the versions applied
	lastArgs wire.Args
}

var _ fleet.Box = (*Box)(nil)

// Detection is the default meta's detection (and detect's result): an x86
// test machine.
var Detection = json.RawMessage(`{"board":{"id":"x86","family":"x86","model":"test"}}`)

// New returns a box that streams and records: capture locked at 1080p60,
// output "primary" up (meta also lists "backup"), every part happy, a
// 64x36 snapshot.
func New() *Box {
	return &Box{
		state: wire.State{
			Mode:      wire.ModeStreaming,
			Moods:     map[string]wire.Mood{wire.PartCapture: wire.MoodHappy, wire.OutputPart("primary"): wire.MoodHappy},
			Capture:   wire.CaptureState{Signal: "locked", Format: "1080p60"},
			Outputs:   map[string]string{"primary": wire.OutputUp},
			Recording: true,
		},
		meta: wire.Meta{
			Agent:    "0.3.0-test",
			Versions: map[string]string{"go": "go1.26"},
			Outputs: []wire.OutputInfo{
				{Name: "primary", Proto: "rtmp", URL: "rtmp://ingest.example.org/live", Enabled: true},
				{Name: "backup", Proto: "srt", URL: "srt://ingest.example.org:9000", Enabled: true},
			},
			Detection: Detection,
		},
		tel: wire.Telemetry{
			UptimeS: 10,
			Sys:     wire.SysHealth{CPUPct: 12.5, TempsC: map[string]float64{"cpu-thermal": 55.5}, ClockSynced: true},
		},
		snapshot: JPEG(64, 36),
		changed:  make(chan struct{}, 1),
		events:   make(chan wire.Event, 16),
	}
}

// SetMeta changes the meta document (the link reads it when it publishes
// meta: on connect, rebirth and after detect).
func (b *Box) SetMeta(f func(*wire.Meta)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.meta)
}

// SetState changes the state and signals the change, as the agent does.
func (b *Box) SetState(f func(*wire.State)) {
	b.mu.Lock()
	f(&b.state)
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// SetTelemetry changes the telemetry sample.
func (b *Box) SetTelemetry(f func(*wire.Telemetry)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.tel)
}

// TelemetryFrom makes every sample come from f (a real collector's).
func (b *Box) TelemetryFrom(f func() wire.Telemetry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.telFrom = f
}

// SetSnapshot sets the JPEG the snapshot command answers.
func (b *Box) SetSnapshot(jpeg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snapshot = jpeg
}

// OnCommand replaces the default commands (see Command).
func (b *Box) OnCommand(f func(ctx context.Context, name string, args wire.Args) (fleet.Result, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onCommand = f
}

// OnApply decides config applies: problems refuse the document, none
// applies it (see ApplyConfig).
func (b *Box) OnApply(f func(version int64, doc json.RawMessage) []config.FieldError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onApply = f
}

// Emit sends an event to the link (it waits while 16 are unread).
func (b *Box) Emit(e wire.Event) { b.events <- e }

// Calls lists the box commands the link ran, and "apply" for each config
// apply, in order.
func (b *Box) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// Applies lists the config versions applied, in order.
func (b *Box) Applies() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.applies)
}

// LastArgs are the arguments of the last box command.
func (b *Box) LastArgs() wire.Args {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastArgs
}

// Meta implements fleet.Box.
func (b *Box) Meta() wire.Meta {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.meta
	m.Outputs = slices.Clone(b.meta.Outputs)
	return m
}

// State implements fleet.Box.
func (b *Box) State() wire.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.state
	s.Outputs = map[string]string{}
	for k, v := range b.state.Outputs {
		s.Outputs[k] = v
	}
	return s
}

// Telemetry implements fleet.Box.
func (b *Box) Telemetry() wire.Telemetry {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.telFrom != nil {
		return b.telFrom()
	}
	return b.tel
}

// StateChanged implements fleet.Box.
func (b *Box) StateChanged() <-chan struct{} { return b.changed }

// Events implements fleet.Box.
func (b *Box) Events() <-chan wire.Event { return b.events }

// Command implements fleet.Box. By default snapshot answers the snapshot
// JPEG, detect the meta's detection, the output commands refuse a name
// neither the meta nor the state lists (E_NO_OUTPUT), and the rest
// succeed.
func (b *Box) Command(ctx context.Context, name string, args wire.Args) (fleet.Result, error) {
	b.mu.Lock()
	b.calls = append(b.calls, name)
	b.lastArgs = args
	fn, snapshot, detection := b.onCommand, b.snapshot, b.meta.Detection
	known := b.knowsOutput(args.Name)
	b.mu.Unlock()
	if fn != nil {
		return fn(ctx, name, args)
	}
	switch name {
	case wire.CmdSnapshot:
		return fleet.Result{JPEG: snapshot}, nil
	case wire.CmdDetect:
		return fleet.Result{Data: detection}, nil
	case wire.CmdRestartOutput, wire.CmdStartOutput, wire.CmdStopOutput:
		if !known {
			return fleet.Result{}, fleet.Rejectf(wire.CodeNoOutput, "no output %q", args.Name)
		}
	}
	return fleet.Result{}, nil
}

func (b *Box) knowsOutput(name string) bool {
	if _, ok := b.state.Outputs[name]; ok {
		return true
	}
	return slices.ContainsFunc(b.meta.Outputs, func(o wire.OutputInfo) bool { return o.Name == name })
}

// ApplyConfig implements fleet.Box: unless OnApply finds problems, the
// version is applied (the state's ConfigVersion) with the effective
// SHA-256 "sha-{version}".
func (b *Box) ApplyConfig(_ context.Context, version int64, doc json.RawMessage) (string, []config.FieldError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "apply")
	if b.onApply != nil {
		if errs := b.onApply(version, doc); len(errs) > 0 {
			return "", errs
		}
	}
	b.applies = append(b.applies, version)
	b.state.ConfigVersion = version
	return fmt.Sprintf("sha-%d", version), nil
}

// JPEG is a w x h picture (a colour gradient) as a JPEG.
func JPEG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 7), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 70}); err != nil {
		panic(err) // encoding to memory cannot fail
	}
	return buf.Bytes()
}
