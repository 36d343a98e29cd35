package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// A desired config at the very end of the version range (2^63 - 1) is
// refused by the box, and capboxctl's next version is computed without an
// overflow: the box takes the next config set, instead of refusing every
// later version as older than the one it had saved.
func TestConfigVersionAtTheEndOfTheRange(t *testing.T) {
	l := startLab(t, "room-a")
	sb := newSimBox(1)
	l.box("room-a", sb)
	l.waitLs("room-a", func(rows []row) bool { return len(rows) == 1 && rows[0].Online })

	c := paho.NewClient(paho.NewClientOptions().AddBroker(l.url).SetClientID("fleet-test").
		SetUsername("fleet").SetPassword(fleetPassword).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	payload := fmt.Sprintf(`{"v":1,"version":%d,"config":{"encode":{"bitrate_kbps":6000}}}`, int64(math.MaxInt64))
	if tok := c.Publish("capbox/room-a/config/desired", 1, true, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	time.Sleep(time.Second)
	if got := sb.Applies(); len(got) != 0 {
		t.Fatalf("the box applied version %v", got)
	}

	good := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(good, []byte("encode: {bitrate_kbps: 5000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errw := l.ctl("config", "set", "room-a", good)
	if code != 0 || !strings.Contains(out, "version 1 applied") {
		t.Errorf("config set after an out-of-range version: %d %s %s", code, out, errw)
	}
}
