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
	msgs chan msg
	g    *globals
}

// Buffer for incoming messages: 500 boxes x 5 retained documents, twice.
const msgBuffer = 8192

// connect opens a clean session with a random client id.
func connect(ctx context.Context, g *globals) (*client, error) {
	target, err := wire.ParseBrokerURL(g.broker, g.insecure)
	if err != nil {
		if errors.Is(err, wire.ErrInsecureBroker) {
			return nil, errors.New("plain mqtt:// to a non-loopback broker sends the password in clear: use mqtts:// or --insecure")
		}
		return nil, err
	}
	idb := make([]byte, 6)
	_, _ = rand.Read(idb)
	o := paho.NewClientOptions().AddBroker(target.URL).SetClientID("capboxctl-" + hex.EncodeToString(idb)).
		SetCleanSession(true).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).
		SetOrderMatters(false)
	if g.username != "" {
		o.SetUsername(g.username)
	}
	if g.passwordFile != "" {
		b, err := os.ReadFile(filepath.Clean(g.passwordFile))
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		o.SetPassword(strings.TrimRight(string(b), "\r\n"))
	}
	if target.Secure {
		tc, _, err := wire.ClientTLS(g.ca, g.cert, g.key, target.Host)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	cl := &client{msgs: make(chan msg, msgBuffer), g: g}
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

// subscribe waits for the SUBACK; refused filters are an error.
func (c *client) subscribe(ctx context.Context, filters ...string) error {
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
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

// collect feeds messages to f until none came for quiet, max passed, or f
// says done. Retained documents arrive right after the SUBACK, so a short
// quiet period ends a snapshot early.
func (c *client) collect(ctx context.Context, quiet, max time.Duration, f func(m msg) (done bool)) error {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	idle := time.NewTimer(quiet)
	defer idle.Stop()
	for {
		select {
		case m := <-c.msgs:
			if f(m) {
				return nil
			}
			idle.Reset(quiet)
		case <-idle.C:
			return nil
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *globals) topic(id, suffix string) string { return g.prefix + "/" + id + "/" + suffix }
