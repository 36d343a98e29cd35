package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/fleet/wire"
)

// msg is one message from the broker.
type msg struct {
	topic    string
	payload  []byte
	retained bool
	at       time.Time
}

// client is capboxctl's MQTT session with the fleet account.
type client struct {
	c    paho.Client
	id   string
	msgs chan msg
	g    *globals
}

// Buffer for incoming messages: 500 boxes x 5 retained documents, twice.
const msgBuffer = 8192

// clientOptions are the session's settings from the global flags: the
// checked broker URL, a random client id, the account and TLS.
func clientOptions(g *globals) (*paho.ClientOptions, string, error) {
	target, err := wire.ParseBrokerURL(g.broker, g.insecure)
	if err != nil {
		if errors.Is(err, wire.ErrInsecureBroker) {
			return nil, "", errors.New("plain mqtt:// to a non-loopback broker sends the password in clear: use mqtts:// or --insecure")
		}
		return nil, "", err
	}
	idb := make([]byte, 6)
	_, _ = rand.Read(idb)
	id := "capboxctl-" + hex.EncodeToString(idb)
	// OrderMatters: the handler only enqueues, and snapshot relies on
	// seeing messages in the order the broker sent them.
	o := paho.NewClientOptions().AddBroker(target.URL).SetClientID(id).
		SetCleanSession(true).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).
		SetOrderMatters(true)
	if g.username != "" {
		o.SetUsername(g.username)
	}
	if g.passwordFile != "" {
		b, err := os.ReadFile(filepath.Clean(g.passwordFile))
		if err != nil {
			return nil, "", fmt.Errorf("password file: %w", err)
		}
		o.SetPassword(strings.TrimRight(string(b), "\r\n"))
	}
	if target.Secure {
		tc, _, err := wire.ClientTLS(g.ca, g.cert, g.key, target.Host)
		if err != nil {
			return nil, "", err
		}
		o.SetTLSConfig(tc)
	}
	return o, id, nil
}

// connect opens a clean session with a random client id.
func connect(ctx context.Context, g *globals) (*client, error) {
	o, id, err := clientOptions(g)
	if err != nil {
		return nil, err
	}
	cl := &client{id: id, msgs: make(chan msg, msgBuffer), g: g}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		select {
		case cl.msgs <- msg{topic: m.Topic(), payload: m.Payload(), retained: m.Retained(), at: time.Now()}:
		default: // a reader this far behind has lost the live view anyway
		}
	})
	cl.c = paho.NewClient(o)
	tok := cl.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("broker %s: %w", g.broker, err)
	}
	return cl, nil
}

func (c *client) close() { c.c.Disconnect(100) }

// subscribe waits for the SUBACK; refused filters are an error. Views
// subscribe with QoS 0: a broker owes a QoS 0 subscriber its retained
// documents without counting them against its per-client queue of
// unacknowledged messages (mosquitto's max_queued_messages is 1000, and
// 500 boxes have 2500 retained documents).
func (c *client) subscribe(ctx context.Context, filters ...string) error {
	return c.subscribeQoS(ctx, 0, filters...)
}

// subscribeQoS is subscribe for answers that must not be lost (command
// responses, config reports).
func (c *client) subscribeQoS(ctx context.Context, qos byte, filters ...string) error {
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = qos
	}
	tok := c.c.SubscribeMultiple(subs, nil)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("the broker refused the subscription %s (is %q a fleet account?)", f, c.g.username)
			}
		}
	}
	return nil
}

func (c *client) publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	tok := c.c.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// until feeds messages to f until it says done or ctx ends.
func (c *client) until(ctx context.Context, f func(m msg) (done bool)) error {
	for {
		select {
		case m := <-c.msgs:
			if f(m) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// snapshotTail is how long a snapshot still listens after its marker came
// back, for brokers (clusters) that do not keep the order exactly.
const snapshotTail = 50 * time.Millisecond

// snapshot subscribes to filters and feeds the retained documents to f.
// It knows the burst is over without guessing from silence: it also
// subscribes to a marker topic of its own and publishes to it after the
// SUBACK; the broker queues the marker behind the retained messages it
// already owes this session, so the marker coming back closes the burst.
// max bounds the wait (a broker that drops the marker).
func (c *client) snapshot(ctx context.Context, max time.Duration, f func(m msg), filters ...string) error {
	marker := c.g.prefix + "/_capboxctl/" + c.id
	if err := c.subscribe(ctx, append(filters, marker)...); err != nil {
		return err
	}
	if err := c.publish(ctx, marker, false, []byte("{}")); err != nil {
		return err
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	var tail <-chan time.Time
	for {
		select {
		case m := <-c.msgs:
			if m.topic == marker {
				tail = time.After(snapshotTail)
				continue
			}
			f(m)
		case <-tail:
			return nil
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *globals) topic(id, suffix string) string { return g.prefix + "/" + id + "/" + suffix }
