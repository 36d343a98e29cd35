package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
)

// MQTT session settings (PROTOCOL.md "Identity and connection").
const (
	keepAlive      = 30 * time.Second
	connectTimeout = 10 * time.Second
	writeTimeout   = 10 * time.Second
	ackTimeout     = 10 * time.Second
)

// Connection problems, named for what the operator must fix.
var (
	ErrNoBroker           = wire.ErrNoBroker
	ErrInsecureBroker     = wire.ErrInsecureBroker
	ErrBrokerURL          = wire.ErrBrokerURL
	ErrCredentials        = wire.ErrCredentials
	ErrSubscriptionDenied = errors.New("fleet: broker refused a subscription")
	ErrConnectionLost     = errors.New("fleet: connection lost")
)

// token is an MQTT acknowledgement to wait for (paho.Token has this shape).
type token interface {
	Done() <-chan struct{}
	Error() error
}

// conn is one MQTT connection. The link makes a new one per connect (its
// own reconnect loop with jitter); paho is behind pahoConn.
type conn interface {
	Publish(topic string, qos byte, retained bool, payload []byte) token
	// Subscribe waits for the SUBACK and fails when any filter is refused.
	Subscribe(ctx context.Context, filters map[string]byte) error
	// Done is closed when the connection is lost or closed.
	Done() <-chan struct{}
	Err() error
	Close(quiesce time.Duration)
}

// dialParams is one connection attempt.
type dialParams struct {
	broker    string // paho form: tcp://host:port or ssl://host:port
	clientID  string
	username  string
	password  string
	tls       *tls.Config
	willTopic string
	will      []byte
	onMessage func(topic string, payload []byte, retained bool)
}

type dialFunc func(ctx context.Context, p dialParams) (conn, error)

// parseBroker checks the broker URL (wire.ParseBrokerURL).
func parseBroker(f config.Fleet) (wire.BrokerTarget, error) {
	return wire.ParseBrokerURL(f.Broker, f.AllowInsecure)
}

// readPassword reads the password file at connect time (so a rotated
// password is used on the next connect). The error names the file only.
func readPassword(f config.Fleet) (string, error) {
	if f.PasswordFile == "" {
		return f.Password, nil
	}
	b, err := os.ReadFile(filepath.Clean(f.PasswordFile))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("%w: password file %s: %w", ErrCredentials, f.PasswordFile, pe.Err)
		}
		return "", fmt.Errorf("%w: password file %s unreadable", ErrCredentials, f.PasswordFile)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%w: password file %s is empty", ErrCredentials, f.PasswordFile)
	}
	return p, nil
}

// pahoConn is a conn over one paho client with auto-reconnect off.
// Publishes go through one goroutine: paho's Publish can block for the
// whole write timeout while a connection dies, and the link's loop must
// not; one goroutine also keeps the order the loop chose.
type pahoConn struct {
	c        paho.Client
	done     chan struct{}
	pubs     chan pubReq
	lostOnce sync.Once
	mu       sync.Mutex
	err      error
}

type pubReq struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
	tok      *asyncToken
}

// asyncToken completes once: when paho acknowledges or the link gives up.
type asyncToken struct {
	done chan struct{}
	once sync.Once
	err  error
}

func newAsyncToken() *asyncToken { return &asyncToken{done: make(chan struct{})} }

func (t *asyncToken) finish(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.done)
	})
}

func (t *asyncToken) Done() <-chan struct{} { return t.done }

func (t *asyncToken) Error() error {
	<-t.done
	return t.err
}

// publisher hands publishes to paho in order until the connection ends.
func (c *pahoConn) publisher() {
	for {
		select {
		case r := <-c.pubs:
			pt := c.c.Publish(r.topic, r.qos, r.retained, r.payload)
			go func() {
				select {
				case <-pt.Done():
					r.tok.finish(pt.Error())
				case <-c.done:
					r.tok.finish(ErrConnectionLost)
				}
			}()
		case <-c.done:
			for {
				select {
				case r := <-c.pubs:
					r.tok.finish(ErrConnectionLost)
				default:
					return
				}
			}
		}
	}
}

func (c *pahoConn) lost(err error) {
	c.lostOnce.Do(func() {
		c.mu.Lock()
		c.err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *pahoConn) Publish(topic string, qos byte, retained bool, payload []byte) token {
	t := newAsyncToken()
	select {
	case c.pubs <- pubReq{topic: topic, qos: qos, retained: retained, payload: payload, tok: t}:
	case <-c.done:
		t.finish(ErrConnectionLost)
	default:
		t.finish(errors.New("fleet: publish queue full"))
	}
	return t
}

func (c *pahoConn) Subscribe(ctx context.Context, filters map[string]byte) error {
	tok := c.c.SubscribeMultiple(filters, nil)
	if err := wait(ctx, tok, c.done); err != nil {
		return err
	}
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	for f, code := range st.Result() {
		if code == 0x80 {
			return fmt.Errorf("%w: %s", ErrSubscriptionDenied, f)
		}
	}
	return nil
}

func (c *pahoConn) Done() <-chan struct{} { return c.done }

func (c *pahoConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *pahoConn) Close(quiesce time.Duration) {
	c.c.Disconnect(uint(quiesce / time.Millisecond))
	c.lost(errors.New("closed"))
}

// wait waits for an acknowledgement, the connection's end, ctx, or the ack
// timeout.
func wait(ctx context.Context, t token, done <-chan struct{}) error {
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-done:
		return ErrConnectionLost
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("fleet: broker did not acknowledge in time")
	}
}

// dialPaho connects one paho client: clean session, keepalive 30 s, no
// auto-reconnect (the link reconnects with jitter), handlers that never
// block (OrderMatters false; onMessage only enqueues).
func dialPaho(ctx context.Context, p dialParams) (conn, error) {
	o := paho.NewClientOptions()
	o.AddBroker(p.broker)
	o.SetClientID(p.clientID)
	o.SetUsername(p.username)
	o.SetPassword(p.password)
	o.SetCleanSession(true)
	// MQTT 3.1.1 only: without it paho retries a refused CONNECT as 3.1,
	// doubling every refused attempt.
	o.SetProtocolVersion(4)
	o.SetKeepAlive(keepAlive)
	o.SetPingTimeout(10 * time.Second)
	o.SetConnectTimeout(connectTimeout)
	o.SetWriteTimeout(writeTimeout)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetResumeSubs(false)
	o.SetOrderMatters(false)
	o.SetStore(paho.NewMemoryStore())
	o.SetMaxResumePubInFlight(maxInflight)
	if p.tls != nil {
		o.SetTLSConfig(p.tls)
	}
	if p.willTopic != "" {
		o.SetBinaryWill(p.willTopic, p.will, 1, true)
	}
	pc := &pahoConn{done: make(chan struct{}), pubs: make(chan pubReq, 4*maxInflight)}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		p.onMessage(m.Topic(), m.Payload(), m.Retained())
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { pc.lost(err) })
	pc.c = paho.NewClient(o)
	tok := pc.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		pc.c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		pc.c.Disconnect(0)
		return nil, fmt.Errorf("fleet: connect %s: %w", p.broker, err)
	}
	go pc.publisher()
	return pc, nil
}
