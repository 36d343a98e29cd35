package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The image ships overlay/etc/capbox/capbox.yaml; it must say exactly what
// the built-in default says, so a box with or without the file behaves
// the same.
func TestShippedDefaultEqualsBuiltIn(t *testing.T) {
	data, err := os.ReadFile("../../overlay/etc/capbox/capbox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// The file spells out every key, so compare against a default whose
	// optional values are the same explicit zero values.
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("shipped default differs from Default():\n got %+v\nwant %+v", got, Default())
	}
	// And every key of the schema appears in the file.
	for _, key := range []string{"device:", "capture:", "encode:", "outputs:", "record:", "slate:", "fleet:", "log:", "metrics:",
		"thermal_guard:", "keep_free:", "telemetry_interval:", "allow_insecure:", "password_file:", "listen:", "format:",
		"upload:", "bandwidth_kbps:", "delete_after_upload:", "targets:", "known_hosts:", "access_key_file:", "secret_key_file:"} {
		if !strings.Contains(string(data), key) {
			t.Errorf("shipped default does not mention %s", key)
		}
	}
}

func TestUnknownKeysAllListedWithLines(t *testing.T) {
	doc := `
device: { id: auto }
encode:
  bitrate_kbps: 3000
  bitrat: 5
outputs:
  - name: a
    url: "srt://:9000?mode=listener"
    colour: red
speling: true
`
	_, err := Parse([]byte(doc))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := map[string]int{"encode.bitrat": 5, "outputs[0].colour": 9, "speling": 10}
	if len(es) != len(want) {
		t.Fatalf("want %d errors, got %v", len(want), es)
	}
	for _, e := range es {
		if line, ok := want[e.Path]; !ok || e.Line != line || !strings.Contains(e.Msg, "unknown key") {
			t.Errorf("unexpected error %+v", e)
		}
	}
}

func TestValidationListsEveryError(t *testing.T) {
	doc := `
device: { id: "Bad ID" }
encode: { bitrate_kbps: 10, keyframe_interval: 1h, max_width: 7, trial_timeout: 10m }
outputs:
  - { name: a, url: "ftp://x" }
  - { name: a, url: "srt://host:9000?passphrase=short" }
  - { name: b, url: "rtmp://host/app", key: k, key_file: /k }
record: { format: avi, segment: 1s }
fleet: { broker: "mqtt://fleet.example.org:1883", telemetry_interval: 0s }
log: { level: loud }
`
	_, err := Parse([]byte(doc))
	es := AsErrors(err)
	paths := map[string]bool{}
	for _, e := range es {
		paths[e.Path] = true
	}
	for _, p := range []string{"device.id", "encode.bitrate_kbps", "encode.keyframe_interval", "encode.max_width", "encode.trial_timeout",
		"outputs[0].url", "outputs[1].name", "outputs[1].url", "outputs[2].url", "record.format", "record.segment",
		"fleet.broker", "fleet.telemetry_interval", "log.level"} {
		if !paths[p] {
			t.Errorf("no error for %s (got %v)", p, es)
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	doc := `outputs:
  - { name: a, url: "srt://host:9000?passphrase=sup3rs3cretpass&mode=bogus" }
  - { name: b, url: "rtmp://user:hunter2pass@host/app/streamkey123" }
  - { name: c, url: "rtsp://u:p4ssw0rdX@host:99999/x" }
fleet: { broker: "mqtt://u:brokerpw9@far.example.org:1883", password: pw1, password_file: /x }
`
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, secret := range []string{"sup3rs3cretpass", "hunter2pass", "streamkey123", "p4ssw0rdX", "brokerpw9", "pw1"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error message leaks %q: %v", secret, err)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg := Default()
	err := ApplyEnv(&cfg, []string{
		"CAPBOX_ENCODE_BITRATE_KBPS=6000",
		"CAPBOX_ENCODE_KEYFRAME_INTERVAL=1s",
		"CAPBOX_RECORD_KEEP_FREE=500MB",
		"CAPBOX_OUTPUTS_1_NAME=yt",
		"CAPBOX_OUTPUTS_1_URL=rtmp://127.0.0.1/live/key",
		"CAPBOX_FLEET_BROKER=mqtt://127.0.0.1:1883",
		"CAPBOX_SLATE_ENABLED=false",
		"CAPBOX_E2E_SOMETHING=ignored",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Encode.BitrateKbps != 6000 || cfg.Encode.KeyframeInterval.D() != time.Second ||
		cfg.Record.KeepFree != 500*MB || len(cfg.Outputs) != 2 || cfg.Outputs[1].Name != "yt" ||
		cfg.Fleet.Broker != "mqtt://127.0.0.1:1883" || cfg.Slate.Enabled {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if es := cfg.Validate(); len(es) > 0 {
		t.Errorf("overridden config invalid: %v", es)
	}
	bad := Default()
	err = ApplyEnv(&bad, []string{"CAPBOX_ENCODE_BITRATE=1", "CAPBOX_ENCODE_MAX_FPS=many", "CAPBOX_OUTPUTS_5_URL=x"})
	if es := AsErrors(err); len(es) != 3 {
		t.Errorf("want 3 errors, got %v", es)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("/nonexistent/capbox.yaml", false, nil); err != nil {
		t.Errorf("absent default path must give the embedded default, got %v", err)
	}
	if _, err := Load("/nonexistent/capbox.yaml", true, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent -c file must fail with ErrNotExist, got %v", err)
	}
}

func TestHostileDocuments(t *testing.T) {
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	for name, doc := range map[string]string{
		"deep":     "outputs: " + deep,
		"big":      "slate: { text: \"" + strings.Repeat("x", MaxSize) + "\" }",
		"binary":   "\xff\xfe\x00",
		"two docs": "log: {level: info}\n---\nlog: {level: debug}\n",
		"anchors":  "a: &a [1,2]\nb: *a\n",
		"types":    "encode: { bitrate_kbps: [1] }\nrecord: { segment: 5 }",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSizesAndDurations(t *testing.T) {
	for in, want := range map[string]ByteSize{"2GB": 2 * GB, "500MiB": 500 << 20, "1.5GB": 1500 * MB, "1024": 1024, "0": 0} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%s: got %d, %v", in, s, err)
		}
	}
	for _, bad := range []string{"-1GB", "GB", "2XB", "1e30GB"} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%s accepted as %d", bad, s)
		}
	}
	b, _ := (2 * GB).MarshalText()
	if string(b) != "2GB" {
		t.Errorf("2GB marshals as %s", b)
	}
}

// FuzzParse: any input gives a config or errors, never a panic, and an
// accepted config always validates.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../overlay/etc/capbox/capbox.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("outputs: [{name: a, url: 'srt://:1?mode=listener'}]"))
	f.Add([]byte(`{"encode": {"bitrate_kbps": 3000}}`))
	f.Add([]byte("record: { keep_free: 1.5GiB, segment: 90s }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if len(AsErrors(err)) == 0 {
				t.Fatal("error without field errors")
			}
			return
		}
		if es := cfg.Validate(); len(es) > 0 {
			t.Fatalf("accepted config fails validation: %v", es)
		}
	})
}
