package fleettest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"slices"
	"testing"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
)

// The defaults the fleet tests rely on: commands answer like a box's,
// a refused config changes nothing, a state change is signalled.
func TestDefaults(t *testing.T) {
	b := fleettest.New()
	ctx := context.Background()

	r, err := b.Command(ctx, wire.CmdSnapshot, wire.Args{})
	if img, derr := jpeg.Decode(bytes.NewReader(r.JPEG)); err != nil || derr != nil || img.Bounds().Dx() != 64 {
		t.Errorf("snapshot: %v %v", err, derr)
	}
	if r, err := b.Command(ctx, wire.CmdDetect, wire.Args{}); err != nil || !bytes.Equal(mustMarshal(t, r.Data), fleettest.Detection) {
		t.Errorf("detect: %v %v", r.Data, err)
	}
	for _, name := range []string{"primary", "backup"} { // the state's, the meta's
		if _, err := b.Command(ctx, wire.CmdRestartOutput, wire.Args{Name: name}); err != nil {
			t.Errorf("restart_output %s: %v", name, err)
		}
	}
	var ce *fleet.CommandError
	if _, err := b.Command(ctx, wire.CmdStopOutput, wire.Args{Name: "nope"}); !errors.As(err, &ce) || ce.Code != wire.CodeNoOutput || ce.Status != wire.ResRejected {
		t.Errorf("unknown output: %v", err)
	}

	b.OnApply(func(v int64, _ json.RawMessage) []config.FieldError {
		if v == 2 {
			return []config.FieldError{{Path: "encode.bitrate_kbps", Msg: "too low"}}
		}
		return nil
	})
	if sha, errs := b.ApplyConfig(ctx, 1, json.RawMessage(`{}`)); sha != "sha-1" || errs != nil {
		t.Errorf("apply 1: %q %v", sha, errs)
	}
	if _, errs := b.ApplyConfig(ctx, 2, json.RawMessage(`{}`)); len(errs) != 1 {
		t.Errorf("apply 2 accepted")
	}
	if v := b.State().ConfigVersion; v != 1 || !slices.Equal(b.Applies(), []int64{1}) {
		t.Errorf("runs version %d, applied %v; want 1, [1]", v, b.Applies())
	}
	want := []string{wire.CmdSnapshot, wire.CmdDetect, wire.CmdRestartOutput, wire.CmdRestartOutput, wire.CmdStopOutput, "apply", "apply"}
	if !slices.Equal(b.Calls(), want) {
		t.Errorf("calls %v, want %v", b.Calls(), want)
	}

	b.SetState(func(s *wire.State) { s.Mode = wire.ModeNoSignal })
	select {
	case <-b.StateChanged():
	default:
		t.Error("a state change was not signalled")
	}
	if b.State().Mode != wire.ModeNoSignal {
		t.Error("the state did not change")
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
