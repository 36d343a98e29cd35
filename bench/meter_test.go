package main

import (
	"bytes"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// publish builds an MQTT 3.1.1 PUBLISH (QoS 0 or 1) as the spec lays it
// out: fixed header, remaining length, topic, packet id for QoS 1, payload.
func publish(topic string, qos byte, payload []byte) []byte {
	var vh []byte
	vh = append(vh, byte(len(topic)>>8), byte(len(topic)))
	vh = append(vh, topic...)
	if qos > 0 {
		vh = append(vh, 0, 7)
	}
	body := append(vh, payload...)
	return append(append([]byte{0x30 | qos<<1}, encodeLength(len(body))...), body...)
}

func encodeLength(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func TestMeterSplitsPackets(t *testing.T) {
	tel := publish("capbox/room-1/telemetry", 0, bytes.Repeat([]byte("x"), 1300)) // 2-byte length
	evt := publish("capbox/room-1/evt/signal_lost", 1, []byte(`{}`))
	ping := []byte{0xC0, 0x00}
	stream := append(append(append([]byte{}, tel...), ping...), evt...)
	// Every split point, including inside the length field and the topic.
	for cut := 0; cut <= len(stream); cut++ {
		tl := newTally()
		m := &meter{dir: "up", t: tl}
		m.feed(stream[:cut])
		m.feed(stream[cut:])
		got, count := tl.snapshot()
		want := map[string]int64{"up PUBLISH telemetry": int64(len(tel)), "up PINGREQ": 2, "up PUBLISH evt": int64(len(evt))}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d: %v", cut, got)
		}
		if count["up PUBLISH telemetry"] != 1 {
			t.Fatalf("cut at %d: counts %v", cut, count)
		}
	}
}

func TestMeterMalformedLength(t *testing.T) {
	tl := newTally()
	m := &meter{dir: "down", t: tl}
	m.feed([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'})
	m.feed([]byte("rest"))
	got, _ := tl.snapshot()
	if got["down unparsed"] != 11 || len(got) != 1 {
		t.Errorf("got %v", got)
	}
}

func TestTopicKind(t *testing.T) {
	for topic, want := range map[string]string{
		"capbox/room-1/telemetry": "telemetry", "capbox/room-1/cmd/res/ping": "cmd", "capbox/room-1/config/reported": "config", "x": "x",
	} {
		if got := topicKind(topic); got != want {
			t.Errorf("%s: %s", topic, got)
		}
	}
}

// TestCountingProxy sends MQTT packets through the proxy to a loopback
// server that echoes them: both directions are counted, whole.
func TestCountingProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	tl := newTally()
	px, err := newCountingProxy(ln.Addr().String(), tl)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", px.addr())
	if err != nil {
		t.Fatal(err)
	}
	pkt := publish("capbox/room-7/state", 1, []byte(strings.Repeat("s", 200)))
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(pkt))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, pkt) {
		t.Fatal("the proxy changed the bytes")
	}
	c.Close()
	px.close()
	got, _ := tl.snapshot()
	want := map[string]int64{"up PUBLISH state": int64(len(pkt)), "down PUBLISH state": int64(len(pkt))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestUDPBound(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if ok, err := udpBound(port); err != nil || !ok {
		t.Fatalf("bound socket on %d not seen: %v", port, err)
	}
	c.Close()
	if ok, _ := udpBound(port); ok {
		t.Errorf("closed socket on %d still seen", port)
	}
}
