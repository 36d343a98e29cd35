package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"capbox/agent/fleet/wire"
)

// Timing of the sessions.
const (
	// reconnectMin and reconnectMax bound the reconnect delays (PROTOCOL.md:
	// 1 s .. 60 s, jittered): full jitter, because paho's own reconnect has
	// none and a fleet that lost its broker would come back in lockstep.
	reconnectMin = time.Second
	reconnectMax = 60 * time.Second
	// stableSession: a session that lasted this long resets the backoff; a
	// broker that drops the box right after connecting (an ACL refusing its
	// birth, a duplicate device id) sees the delays grow instead of a loop.
	stableSession = 10 * time.Second
	// birthEchoTimeout: a box that never sees its own birth come back is
	// refused by the broker's ACL (mosquitto drops silently); say so once.
	birthEchoTimeout = 10 * time.Second
)

// session is the MQTT connection and the numbering of what it sends.
type session struct {
	target wire.BrokerTarget
	dial   dialFunc
	conn   conn // nil while disconnected
	connAt time.Time
	// sess numbers the connections (persisted, so it grows across
	// restarts); seq numbers one session's messages in the order they leave.
	sess, seq int64
	saved     int64 // the session number last written to disk
	inflight  int   // publishes awaiting their acknowledgement
	// birthState is the status-level summary the last birth said;
	// birthSeen: the broker delivered this session's birth back.
	birthState string
	birthSeen  bool
	warned     bool         // an identity mismatch was logged once
	mood       atomic.Value // string: the link's own mood (Link.Mood)
}

func (l *Link) username() string {
	if l.cfg.Username != "" {
		return l.cfg.Username
	}
	return l.id
}

// connect opens a new session: bump and persist sess, dial with the will,
// subscribe, publish the birth, then queue the rest of the retained set.
func (l *Link) connect(ctx context.Context) error {
	s := &l.mqtt
	// The attempt's session number is on disk before the will can name it;
	// failed attempts reuse it (no gaps, no flash writes while the broker
	// is away).
	next := s.sess + 1
	if s.saved != next {
		if err := saveSess(l.stateDir, next); err != nil {
			l.log.Warn("session number not persisted", "err", err)
		} else {
			s.saved = next
		}
	}
	will, _ := json.Marshal(wire.Status{V: wire.SchemaVersion, Online: false, State: wire.StatusLost, Sess: next})
	pw, err := readPassword(l.cfg)
	if err != nil {
		return err
	}
	l.scrub.add(pw)
	p := dialParams{
		broker: s.target.URL, clientID: l.id, username: l.username(), password: pw,
		willTopic: l.topics.T(wire.TopicStatus), will: will,
		onMessage: func(topic string, payload []byte, retained bool) { l.onMessage(ctx, topic, payload, retained) },
	}
	if l.cfg.Username != "" && l.cfg.Username != l.id && !s.warned {
		l.log.Warn("fleet username differs from the device id: the broker ACL (%u) will refuse this box's topics",
			"username", l.cfg.Username, "device", l.id)
		s.warned = true
	}
	if s.target.Secure {
		tc, leaf, err := wire.ClientTLS(l.cfg.CA, l.cfg.Cert, l.cfg.Key, s.target.Host)
		if err != nil {
			return err
		}
		if leaf != nil && leaf.Subject.CommonName != l.id && !s.warned {
			l.log.Warn("client certificate CN differs from the device id: the broker will refuse this box",
				"cn", leaf.Subject.CommonName, "device", l.id)
			s.warned = true
		}
		p.tls = tc
	}
	c, err := s.dial(ctx, p)
	if err != nil {
		return err
	}
	s.sess, s.seq = next, 0
	// Subscribe before the birth (as Sparkplug does): a fleet tool that
	// answers the birth with a command must find the box listening.
	subs := map[string]byte{
		l.topics.T(wire.TopicCmdReqPrefix + "+"): 1,
		l.topics.T(wire.TopicConfigDesired):      1,
		l.topics.T(wire.TopicOTAJob):             1,
		l.topics.T(wire.TopicStatus):             1,
	}
	if err := c.Subscribe(ctx, subs); errors.Is(err, ErrSubscriptionDenied) {
		// Reconnecting would not change the ACL: stay, publish, and say so.
		l.log.Error("the broker refused this box's subscriptions: commands and config will not arrive",
			"err", err, "username", l.username())
	} else if err != nil {
		c.Close(0)
		return err
	}
	// The birth is the session's first message and must be acknowledged:
	// a broker that refuses it (mochi disconnects on an ACL refusal) fails
	// the connect, which then backs off.
	meta := l.meta()
	topic, payload, err := l.encode(&outMsg{suffix: wire.TopicStatus, body: l.birth(meta)})
	if err != nil {
		c.Close(0)
		return err
	}
	if err := wait(ctx, c.Publish(topic, 1, true, payload), c.Done()); err != nil {
		c.Close(0)
		return fmt.Errorf("fleet: birth not acknowledged: %w", err)
	}
	s.conn, s.connAt, s.birthSeen, s.inflight = c, time.Now(), false, 0
	s.mood.Store(string(wire.MoodHappy))
	l.log.Info("fleet connected", "broker", s.target.URL, "sess", s.sess)
	l.queueRetained(meta, false)
	return nil
}

func (l *Link) onLost() {
	if l.mqtt.conn != nil {
		l.mqtt.conn.Close(0)
	}
	l.mqtt.conn, l.mqtt.inflight = nil, 0
	l.mqtt.mood.Store(string(wire.MoodHungry))
}

// encode stamps, marshals, scrubs and checks one message.
func (l *Link) encode(m *outMsg) (string, []byte, error) {
	topic := l.topics.T(m.suffix)
	if err := l.topics.CheckOutgoing(topic); err != nil {
		return "", nil, err
	}
	l.mqtt.seq++
	m.body.Stamp(l.mqtt.sess, l.mqtt.seq, time.Now().UnixMilli())
	b, err := json.Marshal(m.body)
	if err != nil {
		return "", nil, fmt.Errorf("fleet: encode %s: %w", m.suffix, err)
	}
	if s, hit := l.scrub.scrub(b); hit {
		l.log.Warn("a secret was scrubbed from an outgoing message", "topic", topic)
		if !json.Valid(s) {
			return "", nil, fmt.Errorf("fleet: %s withheld: it carried a secret", m.suffix)
		}
		b = s
	}
	if len(b) > wire.MaxPayload {
		return "", nil, fmt.Errorf("fleet: %s is %d bytes, over the %d byte limit", m.suffix, len(b), wire.MaxPayload)
	}
	return topic, b, nil
}

// pump sends queued messages while connected, up to maxInflight awaiting
// their acknowledgement; unacknowledged ones are requeued on a loss.
func (l *Link) pump() error {
	var errs []error
	for l.mqtt.conn != nil && l.mqtt.inflight < maxInflight {
		m := l.out.pop()
		if m == nil {
			break
		}
		topic, b, err := l.encode(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := l.mqtt.conn
		tok := c.Publish(topic, m.qos, m.retained, b)
		l.mqtt.inflight++
		go func() {
			var err error
			select {
			case <-tok.Done():
				err = tok.Error()
			case <-c.Done():
				err = ErrConnectionLost
			}
			l.mail.work.Post(func() { l.onAck(m, c, err) })
		}()
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// onAck frees the slot of an acknowledged publish (on the connection that
// sent it) and requeues a message that mattered but was not acknowledged.
func (l *Link) onAck(m *outMsg, c conn, err error) {
	if c == l.mqtt.conn && l.mqtt.inflight > 0 {
		l.mqtt.inflight--
	}
	if err != nil && m.qos > 0 {
		l.out.requeue(m)
	}
}

// sendNow publishes outside the queue (telemetry, QoS 0: lost while
// offline by design).
func (l *Link) sendNow(m *outMsg) error {
	if l.mqtt.conn == nil {
		return nil
	}
	topic, b, err := l.encode(m)
	if err != nil {
		return err
	}
	l.mqtt.conn.Publish(topic, m.qos, m.retained, b)
	return nil
}
