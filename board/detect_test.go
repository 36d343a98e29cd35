package board

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the fixtures")

// detectFixture is what `capboxd detect --json --sysroot testdata/<name>` prints.
func detectFixture(t *testing.T, name string) (Detection, []byte) {
	t.Helper()
	d, _ := Detect(context.Background(), Options{Root: filepath.Join("testdata", name)})
	b, err := MarshalDetection(d)
	if err != nil {
		t.Fatal(err)
	}
	return d, b
}

func TestGoldenDetection(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			_, got := detectFixture(t, fx.name)
			golden := filepath.Join("testdata", "golden", fx.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./board -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("detection differs from %s (run with -update after checking):\n%s", golden, got)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			want, err := Snapshot(context.Background(), dir, Options{Root: filepath.Join("testdata", fx.name)})
			if err != nil && len(want.Errors) == 0 {
				t.Fatal(err)
			}
			got, _ := Detect(context.Background(), Options{Root: dir})
			// The snapshot of a snapshot says recorded where the source
			// said probed; a hand-built fixture already said recorded.
			a, _ := MarshalDetection(want)
			b, _ := MarshalDetection(got)
			if !bytes.Equal(a, b) {
				t.Errorf("detect on the snapshot differs from detect on the source:\nsource:\n%s\nsnapshot:\n%s", a, b)
			}
			h1, _ := ReadHealth(filepath.Join("testdata", fx.name))
			h2, _ := ReadHealth(dir)
			if h1.CPU != h2.CPU || h1.MemTotal != h2.MemTotal || len(h1.Thermal) != len(h2.Thermal) {
				t.Errorf("health differs: %+v vs %+v", h1, h2)
			}
			if _, err := os.Stat(filepath.Join(dir, "etc", "machine-id")); err == nil {
				t.Error("snapshot copied the machine-id")
			}
		})
	}
	if _, err := Snapshot(context.Background(), "testdata", Options{Root: "testdata/vm-vivid-vicodec"}); !errors.Is(err, ErrSnapshotDirNotEmpty) {
		t.Errorf("snapshot into a non-empty folder: %v", err)
	}
}

// TestDerivedStablePathMatchesUdev checks the path_id port against the
// links the real udev made in the virtual capture box snapshot.
func TestDerivedStablePathMatchesUdev(t *testing.T) {
	f := newFsys(filepath.Join("testdata", "vm-vivid-vicodec"))
	nodes, err := listNodes(f)
	if err != nil || len(nodes) != 4 {
		t.Fatalf("%d nodes, %v", len(nodes), err)
	}
	for _, n := range nodes {
		if !strings.HasPrefix(n.stable, "/dev/v4l/by-path/") {
			t.Fatalf("%s: no udev link found: %q", n.dev, n.stable)
		}
		derived := "/dev/v4l/by-path/" + pathID(f, n.devPath) + "-video-index" + strconv.Itoa(n.index)
		if derived != n.stable {
			t.Errorf("%s: derived %s, udev made %s", n.dev, derived, n.stable)
		}
		if got, err := ResolveStablePath(f.root, n.stable); err != nil || got != n.dev {
			t.Errorf("ResolveStablePath(%s) = %s, %v", n.stable, got, err)
		}
	}
	// Without udev links the derived name still resolves (via sysfs).
	got, err := ResolveStablePath(filepath.Join("testdata", "rpi4-ms2109"), "/dev/v4l/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.2:1.0-video-index0")
	if err != nil || got != "/dev/video0" {
		t.Errorf("derived path on a tree without udev: %s, %v", got, err)
	}
	if _, err := ResolveStablePath(filepath.Join("testdata", "rpi4-ms2109"), "/dev/v4l/by-path/nothing"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("unknown stable path: %v", err)
	}
}
