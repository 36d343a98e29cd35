// Package broker is the embedded MQTT broker of `capboxctl broker`: mochi
// with a mosquitto-format password file, PROTOCOL.md's per-box ACL, and
// optional TLS (mutual TLS when a client CA is given). It is for a lab or a
// one-room venue; a fleet runs mosquitto or a clustered broker (FLEET.md).
package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"capbox/agent/fleet/wire"
)

// Config is one embedded broker.
type Config struct {
	// Listen is host:port; use 127.0.0.1:0 for a free loopback port.
	Listen string
	// Prefix is the fleet topic prefix (default capbox).
	Prefix string
	// PasswordFile is in mosquitto_passwd format; it is re-read when it
	// changes. Required: the broker never runs anonymous.
	PasswordFile string
	// FleetUsers get read and write on {prefix}/#; every other user is a box
	// whose username must equal its client id and device id.
	FleetUsers []string
	// TLS, when set, serves MQTT over TLS. With ClientAuth set to verify
	// client certificates, a certificate's CN must equal the username, and
	// a client with a verified certificate needs no password.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	tcp  *listeners.TCP
	log  *slog.Logger
	hook *aclHook
}

// closeTimeout bounds mochi's Close, which can deadlock (mochi issue #488).
const closeTimeout = 3 * time.Second

// New binds the listener; Run serves.
func New(cfg Config) (*Broker, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if !wire.ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("broker: prefix %q: want one topic level", cfg.Prefix)
	}
	if cfg.PasswordFile == "" {
		return nil, fmt.Errorf("%w: a password file is required", ErrPasswordFile)
	}
	pw := &passwords{path: cfg.PasswordFile}
	if err := pw.load(); err != nil && pw.entries == nil {
		return nil, err
	} else if err != nil && cfg.Logger != nil {
		cfg.Logger.Warn("password file has bad lines; they are ignored", "err", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{Logger: log.With("component", "mochi")})
	// A few times the protocol's 16 KiB payload: larger packets are junk.
	srv.Options.Capabilities.MaximumPacketSize = 64 << 10
	fleetUsers := map[string]bool{}
	for _, u := range cfg.FleetUsers {
		fleetUsers[u] = true
	}
	h := &aclHook{prefix: cfg.Prefix, fleet: fleetUsers, pw: pw, log: log}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "capbox", Address: cfg.Listen, TLSConfig: cfg.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", cfg.Listen, err)
	}
	return &Broker{srv: srv, tcp: tcp, log: log, hook: h}, nil
}

// Addr is the bound listen address.
func (b *Broker) Addr() string { return b.tcp.Address() }

// Connects counts accepted connections (tests watch reconnect loops).
func (b *Broker) Connects() int64 { return b.hook.connects.Load() }

// Refusals counts refused connections and ACL denials.
func (b *Broker) Refusals() int64 { return b.hook.refusals.Load() }

// Run serves until ctx ends, then closes (bounded: mochi's Close can hang).
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.log.Info("broker serving", "addr", b.Addr())
	<-ctx.Done()
	return b.Close()
}

// Close stops the broker without Run's context.
func (b *Broker) Close() error {
	done := make(chan struct{})
	go func() {
		_ = b.srv.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(closeTimeout):
		return errors.New("broker: close timed out (mochi issue #488); listener left to the process exit")
	}
}

// aclHook authenticates against the password file (or a client certificate)
// and applies PROTOCOL.md's ACL.
type aclHook struct {
	mqtt.HookBase
	prefix   string
	fleet    map[string]bool
	pw       *passwords
	log      *slog.Logger
	connects atomic.Int64
	refusals atomic.Int64
	retainMu sync.RWMutex
	held     sync.Map // *mqtt.Client -> heldLock
}

func (h *aclHook) ID() string { return "capbox-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnPublish, mqtt.OnRetainMessage, mqtt.OnSubscribed, mqtt.OnPacketProcessed}, []byte{b})
}

// mochi 2.7.9 reads a topic node's retained path while scanning retained
// messages for a new subscription without the lock its writer holds (a
// data race the race detector reports, and a torn string read in theory).
// The hook serialises the two: a retained publish holds retainMu from
// OnPublish to OnRetainMessage, a subscription's retained delivery holds
// it shared from OnSubscribed to OnPacketProcessed. Both pairs run on the
// client's own goroutine; OnPacketProcessed releases whatever is still
// held. Wills and $SYS topics retain without OnPublish and stay unguarded.
type heldLock struct{ write, read bool }

func (h *aclHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && !cl.Net.Inline {
		h.retainMu.Lock()
		h.held.Store(cl, heldLock{write: true})
	}
	return pk, nil
}

func (h *aclHook) OnRetainMessage(cl *mqtt.Client, _ packets.Packet, _ int64) {
	if v, ok := h.held.LoadAndDelete(cl); ok && v.(heldLock).write {
		h.retainMu.Unlock()
	}
}

func (h *aclHook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) {
	if cl.Net.Inline {
		return
	}
	h.retainMu.RLock()
	h.held.Store(cl, heldLock{read: true})
}

func (h *aclHook) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	if v, ok := h.held.LoadAndDelete(cl); ok {
		if v.(heldLock).write {
			h.retainMu.Unlock()
		} else {
			h.retainMu.RUnlock()
		}
	}
}

func (h *aclHook) refuse(cl *mqtt.Client, user, why string) bool {
	h.refusals.Add(1)
	h.log.Warn("connection refused", "user", user, "client", cl.ID, "why", why, "remote", cl.Net.Remote)
	return false
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if user == "" {
		return h.refuse(cl, user, "no username")
	}
	certOK := false
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			// The listener verified the chain; the identity is the CN.
			if cn := certs[0].Subject.CommonName; cn != user {
				return h.refuse(cl, user, fmt.Sprintf("certificate CN %q is not the username", cn))
			}
			certOK = true
		}
	}
	if !h.fleet[user] {
		if !wire.DeviceIDPattern.MatchString(user) {
			return h.refuse(cl, user, "username is not a device id")
		}
		if cl.ID != user {
			return h.refuse(cl, user, "client id differs from the username")
		}
	}
	if !certOK && !h.pw.verify(user, string(pk.Connect.Password)) {
		return h.refuse(cl, user, "bad credentials")
	}
	if pk.Connect.WillFlag && !h.allowed(user, pk.Connect.WillTopic, true) {
		return h.refuse(cl, user, "will topic not allowed")
	}
	h.connects.Add(1)
	return true
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.allowed(string(cl.Properties.Username), topic, write) {
		return true
	}
	h.refusals.Add(1)
	h.log.Info("acl denied", "user", string(cl.Properties.Username), "topic", topic, "write", write)
	return false
}

func (h *aclHook) allowed(user, topic string, write bool) bool {
	if h.fleet[user] {
		return wire.FleetMayAccess(h.prefix, topic)
	}
	return wire.DeviceMayAccess(h.prefix, user, topic, write)
}
