package fleet_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoPipelineOrHardwareDependency: the link, the protocol, the broker
// and the test box depend on neither the pipeline (capbox/pipelines) nor
// the hardware (capbox/board), nor anything under them: the fleet side
// can never reach the stream, and capboxctl builds wire for any OS.
func TestNoPipelineOrHardwareDependency(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("listing the dependencies needs the go command: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-f", `{{.ImportPath}}:{{range .Deps}} {{.}}{{end}}`, "capbox/agent/fleet/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		listed[pkg] = true
		for _, d := range strings.Fields(deps) {
			for _, banned := range []string{"capbox/pipelines", "capbox/board"} {
				if d == banned || strings.HasPrefix(d, banned+"/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
	for _, pkg := range []string{"capbox/agent/fleet", "capbox/agent/fleet/wire"} {
		if !listed[pkg] {
			t.Errorf("go list did not list %s:\n%s", pkg, out)
		}
	}
}
