package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"capbox/agent/fleet/wire"
)

// protocolACL is PROTOCOL.md's mosquitto block, verbatim.
const protocolACL = `pattern readwrite capbox/%u/status
pattern write capbox/%u/meta
pattern write capbox/%u/state
pattern write capbox/%u/telemetry
pattern write capbox/%u/preview
pattern write capbox/%u/meter
pattern write capbox/%u/evt/#
pattern write capbox/%u/cmd/res/#
pattern write capbox/%u/config/reported
pattern write capbox/%u/ota/status
pattern read capbox/%u/cmd/req/#
pattern read capbox/%u/config/desired
pattern read capbox/%u/ota/job
`

func TestMosquittoACLIsProtocols(t *testing.T) {
	got := wire.MosquittoACL("capbox", "fleet")
	if !strings.Contains(got, protocolACL) {
		t.Errorf("ACL differs from PROTOCOL.md:\n%s", got)
	}
	if !strings.Contains(got, "user fleet\ntopic readwrite capbox/#\n") || strings.Contains(got, "%c") {
		t.Errorf("fleet account or %%c:\n%s", got)
	}
}

func TestDeviceACL(t *testing.T) {
	cases := []struct {
		topic       string
		read, write bool
	}{
		{"capbox/box-a/status", true, true},
		{"capbox/box-a/meta", false, true},
		{"capbox/box-a/state", false, true},
		{"capbox/box-a/telemetry", false, true},
		{"capbox/box-a/preview", false, true},
		{"capbox/box-a/meter", false, true},
		{"capbox/box-a/evt/signal_lost", false, true},
		{"capbox/box-a/cmd/res/ping", false, true},
		{"capbox/box-a/config/reported", false, true},
		{"capbox/box-a/ota/status", false, true},
		{"capbox/box-a/cmd/req/ping", true, false},
		{"capbox/box-a/cmd/req/+", true, false},
		{"capbox/box-a/config/desired", true, false},
		{"capbox/box-a/ota/job", true, false},
		// Never: other boxes, wildcards wider than granted, $SYS.
		{"capbox/box-b/status", false, false},
		{"capbox/box-b/cmd/req/reboot", false, false},
		{"capbox/box-b/preview", false, false},
		{"capbox/box-a/cmd/req/watch", true, false},
		{"capbox/box-a/#", false, false},
		{"capbox/+/status", false, false},
		{"capbox/#", false, false},
		{"#", false, false},
		{"$SYS/broker/clients", false, false},
		{"capbox/box-a/cmd/#", false, false},
		{"capbox/box-a", false, false},
	}
	for _, c := range cases {
		if got := wire.DeviceMayAccess("capbox", "box-a", c.topic, false); got != c.read {
			t.Errorf("read %s = %v", c.topic, got)
		}
		if got := wire.DeviceMayAccess("capbox", "box-a", c.topic, true); got != c.write {
			t.Errorf("write %s = %v", c.topic, got)
		}
	}
	if wire.DeviceMayAccess("capbox", "Box A", "capbox/Box A/status", true) {
		t.Error("a username that is no device id got access")
	}
	if !wire.FleetMayAccess("capbox", "capbox/#") || !wire.FleetMayAccess("capbox", "capbox/+/state") ||
		wire.FleetMayAccess("capbox", "#") || wire.FleetMayAccess("capbox", "$SYS/#") {
		t.Error("fleet ACL")
	}
}

func TestTelemetryExample(t *testing.T) {
	example := `{"v":1,"ts":0,"sess":12,"seq":88,"uptime_s":3630,
 "sys":{"cpu_pct":41.5,"load1":1.2,"mem_total_mb":3884,"mem_avail_mb":2210,
        "disks":[{"mount":"/data","total_mb":29800,"free_mb":21000}],
        "temps_c":{"cpu-thermal":67.5},"throttle":{"now":[],"since_boot":["soft_temp_limit"]},
        "clock_synced":true},
 "net":[{"if":"eth0","oper":"up","carrier":true,"speed_mbps":1000,"addrs":["192.0.2.10/24"],
         "rx_bytes":1,"tx_bytes":2,"rx_errors":0,"tx_errors":0}],
 "capture":{"device":"/dev/v4l/by-path/...","signal":true,"width":1920,"height":1080,"fps":60,
            "frames":216000,"dropped":12},
 "audio":{"device":"hw:CARD=...","peak_dbfs":-12.5,"rms_dbfs":-23.0,"silent":false},
 "encoder":{"element":"v4l2h264enc","hardware":true,"zero_copy":true,"bitrate_kbps":6000,"frames":216000},
 "outputs":[{"name":"primary","proto":"srt","state":"up","bytes":123,"bitrate_kbps":5980,
             "reconnects":1,"rtt_ms":35,"loss_pct":0.1}],
 "recording":{"path":"/data/recordings","segments":12,"bytes":1,"free_mb":21000},
 "config_version":17}`
	dec := json.NewDecoder(strings.NewReader(example))
	dec.DisallowUnknownFields()
	var tel wire.Telemetry
	if err := dec.Decode(&tel); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(tel)
	var a, b map[string]any
	_ = json.Unmarshal([]byte(example), &a)
	_ = json.Unmarshal(out, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("round trip differs:\n%s\n%s", ja, jb)
	}
	if tmax, ok := tel.Sys.MaxTempC(); !ok || tmax != 67.5 {
		t.Errorf("max temp %v %v", tmax, ok)
	}
}

func TestStatusOrder(t *testing.T) {
	birth := wire.Status{V: 1, Online: true, Sess: 12, Seq: 1}
	rebirth := wire.Status{V: 1, Online: true, Sess: 12, Seq: 40}
	will := wire.Status{V: 1, Online: false, State: wire.StatusLost, Sess: 12}
	next := wire.Status{V: 1, Online: true, Sess: 13, Seq: 1}
	if !birth.Order().Before(rebirth.Order()) || !rebirth.Order().Before(will.Order()) || !will.Order().Before(next.Order()) {
		t.Error("status order: birth < rebirth < will < next session")
	}
}

func TestDecodeRequest(t *testing.T) {
	cases := []struct {
		body   string
		err    error
		wantID string
	}{
		{`{"v":1,"id":"a-1","args":{"name":"x"},"exp":1}`, nil, "a-1"},
		{`{"v":1,"id":"a-1","args":null}`, nil, "a-1"},
		{`{"v":1,"id":"a-2","args":[1]}`, wire.ErrBadArgs, "a-2"},
		{`{"v":1,"id":"a-3","exp":-1}`, wire.ErrBadField, "a-3"},
		{`{"v":1,"id":"a 4"}`, wire.ErrBadField, ""},
		{`{"v":1,"id":""}`, wire.ErrBadField, ""},
		{`{"v":1,"id":"a-5"} {"v":1}`, wire.ErrNotJSON, ""},
		{`{"v":1,"id":"a-6","extra":1}`, wire.ErrBadField, "a-6"},
		{`[1,2]`, wire.ErrNotJSON, ""},
		{``, wire.ErrNotJSON, ""},
		{"{\"v\":1,\"id\":\"a-7\",\"args\":{\"name\":\"\xc3\x28\"}}", wire.ErrInvalidUTF8, ""},
		{`{"v":1,"id":"a-8","args":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, wire.ErrTooDeep, ""},
		{`{"v":1,"id":"a-9","args":{"name":"` + strings.Repeat("x", wire.MaxPayload) + `"}}`, wire.ErrTooLarge, ""},
	}
	for _, c := range cases {
		req, err := wire.DecodeRequest([]byte(c.body))
		if !errors.Is(err, c.err) || req.ID != c.wantID {
			t.Errorf("%.60s: err %v id %q, want %v %q", c.body, err, req.ID, c.err, c.wantID)
		}
	}
}

func TestDecodeArgs(t *testing.T) {
	spec, _ := wire.LookupCommand(wire.CmdSetLogLevel)
	if a, err := wire.DecodeArgs(spec, json.RawMessage(`{"level":"warn"}`)); err != nil || a.Level != "warn" {
		t.Errorf("%+v %v", a, err)
	}
	for _, bad := range []string{`{}`, `{"level":"trace"}`, `{"level":1}`, `{"level":"info","x":"y"}`, `"info"`} {
		if _, err := wire.DecodeArgs(spec, json.RawMessage(bad)); !errors.Is(err, wire.ErrBadArgs) {
			t.Errorf("%s accepted", bad)
		}
	}
	ping, _ := wire.LookupCommand(wire.CmdPing)
	if _, err := wire.DecodeArgs(ping, json.RawMessage(`{"x":"y"}`)); err == nil {
		t.Error("ping took an argument")
	}
	if _, err := wire.DecodeArgs(ping, nil); err != nil {
		t.Error(err)
	}
}
