package web

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"capbox/agent/fleet/wire"
)

func TestRestoreSecrets(t *testing.T) {
	prev := []byte(`{"outputs":[{"name":"yt","url":"rtmp://a.example.org/live2/sk-1234567890","key":"sk-inline-abcdef"},
		{"name":"srt","url":"srt://h:9000?passphrase=0123456789abc"}],"fleet":{"password":"fleet-pw-12345"}}`)
	red, _ := wire.RedactDoc(prev)
	got, errs := restoreSecrets(red, prev)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var a, b any
	_ = json.Unmarshal(got, &a)
	_ = json.Unmarshal(prev, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("the secrets left as *** did not come back:\n%s\n%s", ja, jb)
	}
	// A *** that stands for nothing is an error by path.
	for doc, path := range map[string]string{
		`{"outputs":[{"name":"new","url":"rtmp://a.example.org/live2","key":"***"}]}`: "outputs[0].key",
		`{"outputs":[{"name":"yt","url":"rtmp://b.example.org/live2/***"}]}`:          "outputs[0].url",
		`{"slate":{"text":"***"}}`: "",
		`{"outputs":[{"name":"srt","url":"srt://h:9001?passphrase=***"}],"log":{"level":1}}`: "outputs[0].url",
	} {
		out, errs := restoreSecrets([]byte(doc), prev)
		if out != nil || len(errs) == 0 || errs[0].Path != path {
			t.Errorf("%s: %s %+v, want an error at %q", doc, out, errs, path)
		}
	}
}

func TestRestoreSecretsWithoutADesiredDocument(t *testing.T) {
	if out, errs := restoreSecrets([]byte(`{"fleet":{"password":"***"}}`), nil); out != nil || len(errs) != 1 || errs[0].Path != "fleet.password" {
		t.Errorf("%s %+v", out, errs)
	}
}

func TestBoxKeepsTheNewest(t *testing.T) {
	b := &box{id: "room-1"}
	now := time.Now()
	state := func(seq int64, mode string) []byte {
		s, _ := json.Marshal(wire.State{Header: wire.Header{V: 1, TS: now.UnixMilli(), Sess: 2, Seq: seq}, Mode: mode,
			Capture: wire.CaptureState{Signal: "locked"}})
		return s
	}
	if !b.apply(wire.TopicState, state(5, wire.ModeStreaming), false, now) || b.apply(wire.TopicState, state(4, wire.ModeNoSignal), false, now) {
		t.Fatal("an older state replaced a newer one")
	}
	birth := []byte(`{"v":1,"online":true,"state":"ready","sess":2,"seq":1,"ts":1}`)
	will := []byte(`{"v":1,"online":false,"state":"lost","sess":2}`)
	b.apply(wire.TopicStatus, will, false, now)
	if b.apply(wire.TopicStatus, birth, true, now) || b.online() {
		t.Error("a birth arriving after its session's will hid the will")
	}
	if _, ok := b.alerts(now)[alertLost]; !ok {
		t.Error("a vanished box is not an alert")
	}
	// Junk is dropped, never kept.
	for _, bad := range [][]byte{[]byte("not json"), []byte(`{"v":2,"sess":9,"seq":9,"mode":"error"}`), nil} {
		if b.apply(wire.TopicState, bad, false, now) {
			t.Errorf("%q applied", bad)
		}
	}
	if b.apply(wire.TopicPreview, []byte("\xff\xd8\xff not a jpeg \xff\xd9"), false, now) || b.preview != nil {
		t.Error("a preview that is no JPEG was kept")
	}
}

func TestAlerts(t *testing.T) {
	now := time.Now()
	b := &box{id: "room-1", status: &wire.Status{V: 1, Online: true, Sess: 1, Seq: 1, TS: now.UnixMilli()}}
	b.telAt = now
	b.telemetry = &wire.Telemetry{IntervalS: 10, Sys: wire.SysHealth{TempsC: map[string]float64{"cpu": 81}},
		Audio: &wire.AudioHealth{Silent: true}}
	b.state = &wire.State{Mode: wire.ModeDegraded, Capture: wire.CaptureState{Signal: "locked"},
		Outputs: map[string]string{"a": wire.OutputDown, "b": wire.OutputUp}}
	got := b.alerts(now)
	for _, k := range []string{alertHot, alertSilent, alertOutput} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s alert in %v", k, got)
		}
	}
	b.state.Capture.Signal = "no_signal"
	got = b.alerts(now)
	if _, ok := got[alertSilent]; ok {
		t.Error("silence without a picture is an alert")
	}
	b.trackAlerts(now)
	if b.listed(alertNoSignal, now.Add(5*time.Second)) || !b.listed(alertNoSignal, now.Add(10*time.Second)) || !b.listed(alertHot, now) {
		t.Error("no signal is listed on top only after 10 s; hot at once")
	}
	if _, ok := b.alerts(now.Add(31 * time.Second))[alertStale]; !ok {
		t.Error("no telemetry for 3 intervals is not stale")
	}
}

type fakeListener struct{ addr net.Addr }

func (l fakeListener) Accept() (net.Conn, error) { return nil, errors.New("closed") }
func (l fakeListener) Close() error              { return nil }
func (l fakeListener) Addr() net.Addr            { return l.addr }

type noBroker struct{}

func (noBroker) Publish(string, byte, bool, []byte) {}

type okUsers struct{}

func (okUsers) Verify(string, string) bool { return false }

func TestNewRefusesAnOpenListenerOffLoopback(t *testing.T) {
	off := fakeListener{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 8443}}
	if _, err := New(Options{Listener: off, Broker: noBroker{}}); !errors.Is(err, ErrInsecureListener) {
		t.Errorf("no TLS, no logins: %v", err)
	}
	if _, err := New(Options{Listener: off, Broker: noBroker{}, Users: okUsers{}}); !errors.Is(err, ErrInsecureListener) {
		t.Errorf("no TLS: %v", err)
	}
	lo := fakeListener{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}}
	if _, err := New(Options{Listener: lo, Broker: noBroker{}}); err != nil {
		t.Errorf("loopback: %v", err)
	}
	if _, err := New(Options{Listener: lo, Broker: noBroker{}, Lease: time.Second}); err == nil || !strings.Contains(err.Error(), "expiry") {
		t.Errorf("a lease the boxes refuse: %v", err)
	}
}
