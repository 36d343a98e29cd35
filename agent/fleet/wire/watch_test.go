package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"math"
	"strings"
	"testing"
	"time"

	"capbox/agent/fleet/wire"
)

func TestDecodeWatch(t *testing.T) {
	good := []struct {
		args string
		want wire.WatchRequest
	}{
		{`{"what":"preview","interval":"3s","expiry":"15s"}`, wire.WatchRequest{What: "preview", Interval: 3 * time.Second, Expiry: 15 * time.Second}},
		{`{"what":"meter","interval":"200ms","expiry":"2m"}`, wire.WatchRequest{What: "meter", Interval: 200 * time.Millisecond, Expiry: 2 * time.Minute}},
		{`{"what":"preview","interval":"1m","expiry":"1m"}`, wire.WatchRequest{What: "preview", Interval: time.Minute, Expiry: time.Minute}},
	}
	for _, g := range good {
		got, err := wire.DecodeWatch(json.RawMessage(g.args))
		if err != nil || got != g.want {
			t.Errorf("%s: %+v %v", g.args, got, err)
		}
	}
	for _, bad := range []string{
		`{"what":"preview","interval":"500ms","expiry":"15s"}`, // preview faster than 1 s
		`{"what":"meter","interval":"50ms","expiry":"15s"}`,
		`{"what":"meter","interval":"11s","expiry":"15s"}`,
		`{"what":"preview","interval":"3s","expiry":"1s"}`,
		`{"what":"preview","interval":"3s","expiry":"3m"}`,
		`{"what":"preview","interval":"30s","expiry":"20s"}`, // lease shorter than one interval
		`{"what":"video","interval":"3s","expiry":"15s"}`,
		`{"what":"preview","interval":"3 s","expiry":"15s"}`,
		`{"what":"preview","interval":"-3s","expiry":"15s"}`,
		`{"what":"preview","interval":"1h","expiry":"15s"}`,
		`{"what":"preview","interval":"9999999s","expiry":"15s"}`,
		`{"what":"preview","interval":"3s"}`,
		`{"what":"preview","interval":3,"expiry":"15s"}`,
		`{"what":"preview","interval":"3s","expiry":"15s","quality":"high"}`,
		`[]`, ``,
	} {
		if _, err := wire.DecodeWatch(json.RawMessage(bad)); !errors.Is(err, wire.ErrBadArgs) {
			t.Errorf("%s: %v, want ErrBadArgs", bad, err)
		}
	}
	// The request the dashboard sends is one the box takes.
	for _, c := range []struct {
		what     string
		interval time.Duration
	}{{wire.WatchPreview, 3 * time.Second}, {wire.WatchMeter, 200 * time.Millisecond}, {wire.WatchPreview, time.Minute}} {
		expiry := max(15*time.Second, c.interval)
		raw := wire.WatchArgs(c.what, c.interval, expiry)
		got, err := wire.DecodeWatch(raw)
		if err != nil || got.Interval != c.interval || got.Expiry != expiry {
			t.Errorf("WatchArgs %s: %s -> %+v %v", c.what, raw, got, err)
		}
	}
}

func TestLeases(t *testing.T) {
	var l wire.Leases
	t0 := time.Unix(1_800_000_000, 0)
	if _, _, ok := l.Active(wire.WatchPreview, t0); ok {
		t.Fatal("a lease holds before any request")
	}
	// A slow viewer, then a faster one: the faster interval is in force
	// until its lease lapses, then the slow one's again, then nothing.
	r := l.Renew(wire.WatchRequest{What: wire.WatchPreview, Interval: 5 * time.Second, Expiry: 30 * time.Second}, t0)
	if r.IntervalMS != 5000 || r.ExpiresInMS != 30000 {
		t.Errorf("first lease %+v", r)
	}
	r = l.Renew(wire.WatchRequest{What: wire.WatchPreview, Interval: 2 * time.Second, Expiry: 10 * time.Second}, t0.Add(time.Second))
	if r.IntervalMS != 2000 || r.ExpiresInMS != 29000 {
		t.Errorf("second lease %+v", r)
	}
	if iv, _, ok := l.Active(wire.WatchPreview, t0.Add(10*time.Second)); !ok || iv != 2*time.Second {
		t.Errorf("at 10 s: %s %v", iv, ok)
	}
	if iv, _, ok := l.Active(wire.WatchPreview, t0.Add(12*time.Second)); !ok || iv != 5*time.Second {
		t.Errorf("at 12 s: %s %v", iv, ok)
	}
	if _, _, ok := l.Active(wire.WatchPreview, t0.Add(30*time.Second)); ok {
		t.Error("the lease holds at its expiry")
	}
	if k := l.Kinds(t0.Add(30 * time.Second)); len(k) != 0 {
		t.Errorf("kinds after expiry %v", k)
	}
	// A renewal never shortens a lease another viewer holds.
	l.Renew(wire.WatchRequest{What: wire.WatchMeter, Interval: 200 * time.Millisecond, Expiry: time.Minute}, t0)
	l.Renew(wire.WatchRequest{What: wire.WatchMeter, Interval: 200 * time.Millisecond, Expiry: 2 * time.Second}, t0)
	if _, u, ok := l.Active(wire.WatchMeter, t0.Add(30*time.Second)); !ok || !u.Equal(t0.Add(time.Minute)) {
		t.Errorf("meter lease shortened: %v %v", u, ok)
	}
	// Many intervals: the table stays bounded and keeps the latest.
	for i := range 100 {
		l.Renew(wire.WatchRequest{What: wire.WatchPreview, Interval: time.Duration(i+1) * time.Second, Expiry: time.Minute}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if iv, _, ok := l.Active(wire.WatchPreview, t0.Add(time.Second)); !ok || iv < 90*time.Second {
		t.Errorf("after 100 intervals the shortest held is %s (want one of the last 8)", iv)
	}
	if k := l.Kinds(t0.Add(time.Second)); strings.Join(k, ",") != "meter,preview" {
		t.Errorf("kinds %v", k)
	}
}

func TestDecodeMeter(t *testing.T) {
	m, err := wire.DecodeMeter([]byte(`{"v":1,"ts":1,"sess":2,"seq":3,"channels":[{"peak_dbfs":-20,"rms_dbfs":-23},{"peak_dbfs":-120,"rms_dbfs":-120}],"new_key":1}`))
	if err != nil || len(m.Channels) != 2 || m.Channels[0].RMSDBFS != -23 || m.Seq != 3 {
		t.Errorf("%+v %v", m, err)
	}
	for _, bad := range []string{
		`{"v":2,"channels":[{"peak_dbfs":-20,"rms_dbfs":-23}]}`,
		`{"v":1,"channels":[]}`,
		`{"v":1}`,
		`{"v":1,"channels":[{"peak_dbfs":3,"rms_dbfs":-23}]}`,
		`{"v":1,"channels":[{"peak_dbfs":-20,"rms_dbfs":-121}]}`,
		`{"v":1,"channels":[{"peak_dbfs":"loud","rms_dbfs":-23}]}`,
		`{"v":1,"channels":[` + strings.Repeat(`{"peak_dbfs":-1,"rms_dbfs":-1},`, 8) + `{"peak_dbfs":-1,"rms_dbfs":-1}]}`,
		`[1]`, ``, "{\"v\":1,\"x\":\"\xff\"}",
	} {
		if _, err := wire.DecodeMeter([]byte(bad)); err == nil {
			t.Errorf("%.60s accepted", bad)
		}
	}
	if wire.ClampDBFS(math.Inf(-1)) != wire.MeterFloorDBFS || wire.ClampDBFS(math.NaN()) != wire.MeterFloorDBFS || wire.ClampDBFS(3) != 0 || wire.ClampDBFS(-12.5) != -12.5 {
		t.Error("ClampDBFS")
	}
}

func smallJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckPreview(t *testing.T) {
	if err := wire.CheckPreview(smallJPEG(t, 320, 180)); err != nil {
		t.Errorf("a 320x180 JPEG: %v", err)
	}
	big := smallJPEG(t, 641, 100)
	png := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("x", 100))
	cut := smallJPEG(t, 32, 18)
	cut = cut[:len(cut)-2]
	huge := append(append([]byte{0xff, 0xd8, 0xff}, make([]byte, wire.MaxPreviewJPEG)...), 0xff, 0xd9)
	for name, b := range map[string][]byte{"641 wide": big, "png": png, "no end marker": cut, "over 16 KiB": huge, "empty": nil,
		"markers only": {0xff, 0xd8, 0xff, 0xd9}} {
		if err := wire.CheckPreview(b); !errors.Is(err, wire.ErrBadPreview) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPreviewAndMeterAreBoxTopics(t *testing.T) {
	tp := wire.Topics{Prefix: "capbox", ID: "room-1"}
	for _, s := range []string{wire.TopicPreview, wire.TopicMeter, wire.TopicCmdResPrefix + wire.CmdWatch} {
		if err := tp.CheckOutgoing(tp.T(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
