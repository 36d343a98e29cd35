package fleet_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/wire"
)

// TestTelemetryExample: PROTOCOL.md's telemetry example decodes strictly
// into Telemetry and encodes back to the same document.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for _, v := range []string{"old", "new"} {
		if err := fleet.WriteFileAtomic(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	entries, _ := os.ReadDir(dir)
	st, _ := os.Stat(p)
	if string(b) != "new" || len(entries) != 1 || st.Mode().Perm() != 0o600 {
		t.Errorf("content %q, %d entries, mode %v", b, len(entries), st.Mode())
	}
	if err := fleet.WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("write into a missing dir succeeded")
	}
	// A corrupt applied file is an error, not a zero config.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fleet.LoadApplied(dir); ok || err == nil {
		t.Errorf("corrupt applied file: ok=%v err=%v", ok, err)
	}
	if _, ok, err := fleet.LoadApplied(t.TempDir()); ok || err != nil {
		t.Errorf("missing applied file: ok=%v err=%v", ok, err)
	}
}

// TestRedactDoc: a config document as capboxctl shows it carries no secret.
func TestRedactDoc(t *testing.T) {
	doc := json.RawMessage(goodDoc)
	red, err := wire.RedactDoc(doc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(red, []byte(streamKey)) || bytes.Contains(red, []byte(srtPassphrase)) || !bytes.Contains(red, []byte(`"key":"***"`)) {
		t.Errorf("redacted: %s", red)
	}
}

func TestDocFromYAML(t *testing.T) {
	y := "encode:\n  bitrate_kbps: 6000\noutputs:\n  - name: primary\n    url: rtmp://ingest.example.org/live\n    key_file: /etc/capbox/yt.key\n"
	doc, err := wire.DocFromYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(doc, []byte(`{"encode":{"bitrate_kbps":6000},"outputs":[{"name":"primary","url":"rtmp://ingest.example.org/live","key_file":"/etc/capbox/yt.key"}]}`)) {
		t.Errorf("doc %s", doc)
	}
	// The box's own parser reads what capboxctl sends, durations and sizes
	// included.
	doc, err = wire.DocFromYAML([]byte("record: {segment: 5m, keep_free: 2GB}\nencode: {keyframe_interval: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(doc); err != nil {
		t.Errorf("the box's parser refuses %s: %v", doc, err)
	}
	if _, err := wire.DocFromYAML([]byte("- a\n- b\n")); err == nil {
		t.Error("a list was accepted as a config document")
	}
}
