package simbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/fleet/wire"
)

type observer struct {
	c  paho.Client
	mu sync.Mutex
	m  map[string][][]byte
}

func (o *observer) count(topic string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m[topic])
}

func (o *observer) last(topic string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.m[topic]
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

func (o *observer) waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *observer) command(t *testing.T, id, name string, args json.RawMessage) {
	t.Helper()
	body, _ := json.Marshal(wire.CmdRequest{V: 1, ID: "t-" + name + "-" + time.Now().Format("150405.000"), Args: args})
	if tok := o.c.Publish("capbox/"+id+"/cmd/req/"+name, 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("publish", tok.Error())
	}
}

// TestSimulatedBoxOnMosquitto: a simulated box on a real mosquitto with
// the fleet ACL sends what a box sends, and previews and meters exactly
// while a lease holds.
func TestSimulatedBoxOnMosquitto(t *testing.T) {
	m, err := StartMosquitto(t.TempDir(), map[string]string{"fleet": "fleet-pw-123", "room-1": "room-1-pw-123"}, "fleet")
	if errors.Is(err, ErrNoMosquitto) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	o := &observer{m: map[string][][]byte{}}
	target, _ := wire.ParseBrokerURL(m.URL, false)
	opts := paho.NewClientOptions().AddBroker(target.URL).SetClientID("obs").SetUsername("fleet").SetPassword("fleet-pw-123").
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			o.mu.Lock()
			o.m[msg.Topic()] = append(o.m[msg.Topic()], msg.Payload())
			o.mu.Unlock()
		})
	o.c = paho.NewClient(opts)
	if tok := o.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer o.c.Disconnect(0)
	if tok := o.c.Subscribe("capbox/#", 0, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	box := New(Options{ID: "room-1", Broker: m.URL, Password: "room-1-pw-123", TelemetryInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = box.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	o.waitFor(t, "birth, meta, state, telemetry", 10*time.Second, func() bool {
		return o.count("capbox/room-1/status") > 0 && o.count("capbox/room-1/meta") > 0 &&
			o.count("capbox/room-1/state") > 0 && o.count("capbox/room-1/telemetry") > 0
	})
	if o.count("capbox/room-1/preview") != 0 {
		t.Fatal("a preview without a lease")
	}
	o.command(t, "room-1", wire.CmdWatch, wire.WatchArgs(wire.WatchPreview, time.Second, 2*time.Second))
	o.command(t, "room-1", wire.CmdWatch, wire.WatchArgs(wire.WatchMeter, 100*time.Millisecond, 2*time.Second))
	o.waitFor(t, "previews and meters", 10*time.Second, func() bool {
		return o.count("capbox/room-1/preview") >= 2 && o.count("capbox/room-1/meter") >= 5
	})
	p := o.last("capbox/room-1/preview")
	if err := wire.CheckPreview(p); err != nil {
		t.Fatal(err)
	}
	if img, err := jpeg.Decode(bytes.NewReader(p)); err != nil || img.Bounds().Dx() != previewW {
		t.Fatalf("preview: %v", err)
	}
	if mt, err := wire.DecodeMeter(o.last("capbox/room-1/meter")); err != nil || mt.Channels[0].PeakDBFS < -25 {
		t.Fatalf("meter %+v %v", mt, err)
	}
	var res wire.CmdResponse
	if json.Unmarshal(o.last("capbox/room-1/cmd/res/watch"), &res) != nil || res.Status != wire.ResOK {
		t.Fatalf("watch answer %s", o.last("capbox/room-1/cmd/res/watch"))
	}
	// The lease lapses without renewal: nothing more after 2 s.
	time.Sleep(2500 * time.Millisecond)
	n := o.count("capbox/room-1/preview")
	time.Sleep(1500 * time.Millisecond)
	if o.count("capbox/room-1/preview") != n {
		t.Error("previews after the lease lapsed")
	}
	// A bad desired config is refused by path, with agent/config's words.
	doc := `{"v":1,"version":2,"config":{"device":{"id":"room-1"},"encode":{"bitrate_kbps":1}}}`
	if tok := o.c.Publish("capbox/room-1/config/desired", 1, true, doc); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("publish desired")
	}
	o.waitFor(t, "config report", 10*time.Second, func() bool { return o.count("capbox/room-1/config/reported") > 0 })
	var rep wire.ConfigReported
	_ = json.Unmarshal(o.last("capbox/room-1/config/reported"), &rep)
	if rep.Status != wire.ConfigRejected || len(rep.Errors) != 1 || rep.Errors[0].Path != "encode.bitrate_kbps" {
		t.Errorf("report %+v", rep)
	}
	box.SetSignal(false)
	o.waitFor(t, "no signal state", 5*time.Second, func() bool {
		return strings.Contains(string(o.last("capbox/room-1/state")), `"no_signal"`)
	})
}
