package board

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
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
