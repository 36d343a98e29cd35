package board

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestFixtureTrees keeps the committed trees equal to the builder (and
// rewrites them with -update-fixtures). A fixture whose folder holds a
// SNAPSHOT file came from `capboxd snapshot` and is left alone.
func TestFixtureTrees(t *testing.T) {
	for _, fx := range fixtures {
		dir := filepath.Join("testdata", fx.name)
		if isSnapshot(dir) {
			continue
		}
		want := fx.build()
		if *updateFixtures {
			if err := want.write(dir); err != nil {
				t.Fatal(err)
			}
			if fx.probes != nil {
				if err := writeProbeFile(dir, fx.probes()); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		got, err := readTree(dir)
		if err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		if !reflect.DeepEqual(got.files, want.files) {
			t.Errorf("%s: files differ from the builder; run with -update-fixtures", fx.name)
		}
		if !reflect.DeepEqual(got.links, want.links) {
			t.Errorf("%s: links differ from the builder; run with -update-fixtures", fx.name)
		}
	}
}

func isSnapshot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, snapshotFile))
	return err == nil
}
