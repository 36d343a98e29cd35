package main

import (
	"errors"
	"net"
	"strings"
	"sync"
)

// MQTT 3.1.1 control packet types (the high nibble of the first byte;
// OASIS MQTT 3.1.1 section 2.2.1).
var packetNames = [16]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved"}

// tally counts bytes and packets by direction and kind.
type tally struct {
	mu    sync.Mutex
	bytes map[string]int64
	count map[string]int64
}

func newTally() *tally { return &tally{bytes: map[string]int64{}, count: map[string]int64{}} }

func (t *tally) add(kind string, n int) {
	t.mu.Lock()
	t.bytes[kind] += int64(n)
	t.count[kind]++
	t.mu.Unlock()
}

// snapshot copies the counters.
func (t *tally) snapshot() (bytes, count map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bytes, count = map[string]int64{}, map[string]int64{}
	for k, v := range t.bytes {
		bytes[k] = v
	}
	for k, v := range t.count {
		count[k] = v
	}
	return bytes, count
}

// meter splits one direction of an MQTT connection into packets and
// counts each whole packet (fixed header included) under "dir KIND", with
// PUBLISH named by its topic's level after the box id
// ("up PUBLISH telemetry", "up PUBLISH evt").
type meter struct {
	dir    string
	t      *tally
	buf    []byte
	broken bool
}

// errRemainingLength is a remaining-length field longer than 4 bytes.
var errRemainingLength = errors.New("malformed MQTT remaining length")

func (m *meter) feed(p []byte) {
	if m.broken {
		m.t.add(m.dir+" unparsed", len(p))
		return
	}
	m.buf = append(m.buf, p...)
	for len(m.buf) >= 2 {
		rl, n, err := remainingLength(m.buf[1:])
		if err != nil {
			m.broken = true
			m.t.add(m.dir+" unparsed", len(m.buf))
			m.buf = nil
			return
		}
		if n == 0 {
			return // the length field is not complete yet
		}
		total := 1 + n + rl
		if len(m.buf) < total {
			return
		}
		m.t.add(m.dir+" "+packetKind(m.buf[:total], 1+n), total)
		m.buf = append(m.buf[:0], m.buf[total:]...)
	}
}

// remainingLength decodes the variable-length integer of the fixed
// header: it returns the value and the bytes it took, or n == 0 when b
// ends before the last byte of the field.
func remainingLength(b []byte) (v, n int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		v += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, errRemainingLength
}

// packetKind names a whole packet; vh is where its variable header starts.
func packetKind(pkt []byte, vh int) string {
	typ := pkt[0] >> 4
	if typ != 3 {
		return packetNames[typ]
	}
	if len(pkt) < vh+2 {
		return "PUBLISH ?"
	}
	tl := int(pkt[vh])<<8 | int(pkt[vh+1])
	if len(pkt) < vh+2+tl {
		return "PUBLISH ?"
	}
	return "PUBLISH " + topicKind(string(pkt[vh+2:vh+2+tl]))
}

// topicKind is the level after prefix/id: capbox/room-1/telemetry ->
// telemetry, capbox/room-1/evt/signal_lost -> evt.
func topicKind(topic string) string {
	parts := strings.SplitN(topic, "/", 4)
	if len(parts) < 3 {
		return topic
	}
	return parts[2]
}

// countingProxy forwards TCP connections to target and meters both
// directions: "up" is client to broker.
type countingProxy struct {
	ln     net.Listener
	target string
	t      *tally
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newCountingProxy(target string, t *tally) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, target: target, t: t, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *countingProxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.conns == nil {
			return false // closed
		}
		p.conns[c] = struct{}{}
	} else if p.conns != nil {
		delete(p.conns, c)
	}
	return true
}

func (p *countingProxy) handle(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	if !p.track(c, true) {
		return
	}
	defer p.track(c, false)
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn, m *meter) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				m.feed(buf[:n])
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// One side ended: end both.
		_ = c.Close()
		_ = s.Close()
		done <- struct{}{}
	}
	go pump(s, c, &meter{dir: "up", t: p.t})
	go pump(c, s, &meter{dir: "down", t: p.t})
	<-done
	<-done
}

// close stops accepting, ends every connection and waits.
func (p *countingProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
