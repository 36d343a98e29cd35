package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// What the external tests (package fleet_test) need of the inside: a
// broker they can break at will, to drive the real loop with fleettest's
// box inside testing/synctest.

// Reconnect bounds (PROTOCOL.md: 1 s .. 60 s, jittered).
const (
	ReconnectMin = reconnectMin
	ReconnectMax = reconnectMax
)

// WithBroker makes the link dial b instead of paho.
func WithBroker(b *FakeBroker) Option { return withDialer(b.dial) }

// Pub is one message the link published.
type Pub struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	At       time.Time
}

// FakeBroker hands out connections that record what the link publishes
// and acknowledge at once.
type FakeBroker struct {
	mu          sync.Mutex
	down        bool
	dropOnBirth bool
	dials       []time.Time
	pubs        []Pub
	conn        *fakeConn
	onMessage   func(topic string, payload []byte, retained bool)
}

// Deliver hands the link a message as paho's callback does, on the
// caller's goroutine.
func (b *FakeBroker) Deliver(topic string, payload []byte) {
	b.mu.Lock()
	f := b.onMessage
	b.mu.Unlock()
	f(topic, payload, false)
}

// SetDown makes dials fail (true) or succeed again.
func (b *FakeBroker) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// SetDropOnBirth makes every connection close at the box's status, as mochi
// does on a publish its ACL refuses.
func (b *FakeBroker) SetDropOnBirth(drop bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropOnBirth = drop
}

// Cut closes the current connection: the link sees it lost.
func (b *FakeBroker) Cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close(0)
	}
}

// Dials are the times of every connection attempt.
func (b *FakeBroker) Dials() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.dials...)
}

// Published lists the messages whose topic ends in /suffix, in order.
func (b *FakeBroker) Published(suffix string) []Pub {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Pub
	for _, p := range b.pubs {
		if strings.HasSuffix(p.Topic, "/"+suffix) {
			out = append(out, p)
		}
	}
	return out
}

func (b *FakeBroker) dial(ctx context.Context, p dialParams) (conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dials = append(b.dials, time.Now())
	if b.down {
		return nil, errors.New("connection refused")
	}
	b.conn = &fakeConn{b: b, done: make(chan struct{}), dropOnBirth: b.dropOnBirth}
	b.onMessage = p.onMessage
	return b.conn, nil
}

// fakeConn records what the link publishes; with dropOnBirth it behaves
// like mochi refusing a publish: it closes the connection.
type fakeConn struct {
	b           *FakeBroker
	done        chan struct{}
	once        sync.Once
	dropOnBirth bool
}

func (c *fakeConn) Publish(topic string, qos byte, retained bool, payload []byte) token {
	if c.dropOnBirth && strings.HasSuffix(topic, "/status") {
		c.Close(0)
		return completed(ErrConnectionLost)
	}
	select {
	case <-c.done:
		return completed(ErrConnectionLost)
	default:
	}
	c.b.mu.Lock()
	c.b.pubs = append(c.b.pubs, Pub{topic, append([]byte(nil), payload...), qos, retained, time.Now()})
	c.b.mu.Unlock()
	return completed(nil)
}

func (c *fakeConn) Subscribe(context.Context, map[string]byte) error { return nil }
func (c *fakeConn) Done() <-chan struct{}                            { return c.done }
func (c *fakeConn) Err() error                                       { return ErrConnectionLost }
func (c *fakeConn) Close(time.Duration)                              { c.once.Do(func() { close(c.done) }) }

// doneToken is an acknowledgement that is already complete.
type doneToken struct {
	ch  chan struct{}
	err error
}

func (t doneToken) Done() <-chan struct{} { return t.ch }
func (t doneToken) Error() error          { return t.err }

func completed(err error) token {
	ch := make(chan struct{})
	close(ch)
	return doneToken{ch: ch, err: err}
}
