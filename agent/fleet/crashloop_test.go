package fleet_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
)

// crashingBoxEnv, when set, makes this test binary a box whose agent dies
// while applying any desired config (the child of
// TestConfigThatCrashedTheAgentIsRefusedAfterTheRestart).
const crashingBoxEnv = "CAPBOX_TEST_CRASHING_BOX"

type crashingBox struct {
	Fleet    config.Fleet `json:"fleet"`
	StateDir string       `json:"state_dir"`
}

// A retained desired config that crashes the agent while it is applied (an
// out-of-memory read, a panic) would come back after every restart, a crash
// loop the box never leaves. The version is recorded durably before it is
// applied; after the crash the box refuses it with the reason, and a newer
// version is applied again.
func TestConfigThatCrashedTheAgentIsRefusedAfterTheRestart(t *testing.T) {
	if spec := os.Getenv(crashingBoxEnv); spec != "" {
		runCrashingBox(spec)
		return
	}
	e := startMochi(t)
	o := e.observe()
	stateDir := t.TempDir()
	o.publish("capbox/box-c/config/desired", desired(7, goodDoc), true)

	spec, _ := json.Marshal(crashingBox{Fleet: e.fleetCfg("box-c"), StateDir: stateDir})
	cmd := exec.Command(os.Args[0], "-test.run=^TestConfigThatCrashedTheAgentIsRefusedAfterTheRestart$")
	cmd.Env = append(os.Environ(), crashingBoxEnv+"="+string(spec))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("the crashing box ended with %v, want exit status 3 (its crash); output:\n%s", err, out)
	}

	// The restart, with an agent that would apply it fine: the version
	// that crashed the last one is refused, and never reaches the box.
	box := newBox()
	from := o.mark()
	r := e.startLink("box-c", box, stateDir, nil)
	m := o.waitFor(from, 10*time.Second, "config/reported for version 7", func(m obsMsg) bool {
		var rep wire.ConfigReported
		return m.topic == "capbox/box-c/config/reported" && json.Unmarshal(m.payload, &rep) == nil && rep.DesiredVersion == 7
	})
	rep := decodeJSON[wire.ConfigReported](t, m)
	if rep.Status != wire.ConfigRejected || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Msg, "stopped the agent") {
		t.Errorf("version 7 after the crash: %+v", rep)
	}
	time.Sleep(500 * time.Millisecond)
	if got := box.Applies(); len(got) != 0 {
		t.Errorf("the version that crashed the agent was applied again: %v", got)
	}

	// A restart later it is still refused (the refusal is persisted).
	r.stop()
	from = o.mark()
	box = newBox()
	e.startLink("box-c", box, stateDir, nil)
	o.waitFor(from, 10*time.Second, "birth after the second restart", statusIs("box-c", true, 0))
	time.Sleep(time.Second)
	if got := box.Applies(); len(got) != 0 {
		t.Errorf("after a second restart, version 7 was applied: %v", got)
	}

	// The operator sends a fixed version: applied.
	from = o.mark()
	o.publish("capbox/box-c/config/desired", desired(8, goodDoc), true)
	m = o.waitFor(from, 10*time.Second, "config/reported for version 8", func(m obsMsg) bool {
		var rep wire.ConfigReported
		return m.topic == "capbox/box-c/config/reported" && json.Unmarshal(m.payload, &rep) == nil && rep.DesiredVersion == 8
	})
	if rep := decodeJSON[wire.ConfigReported](t, m); rep.Status != wire.ConfigApplied || rep.AppliedVersion != 8 {
		t.Errorf("version 8: %+v", rep)
	}
}

// runCrashingBox is the child: a link whose box exits the process in the
// middle of an apply, as an agent killed by the kernel would.
func runCrashingBox(spec string) {
	var c crashingBox
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		os.Exit(2)
	}
	box := newBox()
	box.OnApply(func(int64, json.RawMessage) []config.FieldError {
		os.Exit(3)
		return nil
	})
	l, err := fleet.New(c.Fleet, "box-c", box, slog.New(slog.DiscardHandler), fleet.WithStateDir(c.StateDir))
	if err != nil {
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = l.Run(ctx)
	os.Exit(4) // the desired config never arrived
}
