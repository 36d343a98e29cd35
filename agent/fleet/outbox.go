package fleet

import "capbox/agent/fleet/wire"

// Bounds of what waits for the broker (PROTOCOL.md: messages that matter
// are queued in bounded memory while offline; telemetry is not queued).
const (
	maxQueuedEvents    = 256
	maxQueuedResponses = 64
	maxInflight        = 16
)

// stamper is a payload whose header is filled at send time, so that
// (sess, seq) follow the order messages actually leave in.
type stamper interface {
	Stamp(sess, seq, nowMS int64)
}

// outMsg is one message for the broker.
type outMsg struct {
	suffix   string
	qos      byte
	retained bool
	// latest: only the newest pending message of this suffix matters
	// (retained documents: status, meta, state, config/reported).
	latest bool
	body   stamper
}

// outbox is the FIFO of messages waiting for a connection. Events and
// responses are bounded (oldest dropped); retained documents keep only the
// newest per topic.
type outbox struct {
	q         []*outMsg
	events    int
	responses int
	dropped   int
}

func (o *outbox) kindCount(m *outMsg) *int {
	switch {
	case len(m.suffix) > len(wire.TopicEvtPrefix) && m.suffix[:len(wire.TopicEvtPrefix)] == wire.TopicEvtPrefix:
		return &o.events
	case len(m.suffix) > len(wire.TopicCmdResPrefix) && m.suffix[:len(wire.TopicCmdResPrefix)] == wire.TopicCmdResPrefix:
		return &o.responses
	}
	return nil
}

func capFor(o *outbox, c *int) int {
	if c == &o.events {
		return maxQueuedEvents
	}
	return maxQueuedResponses
}

// push appends m, replacing a pending message of the same retained topic
// and dropping the oldest of its kind when the kind is full.
func (o *outbox) push(m *outMsg) {
	if m.latest {
		o.removeSuffix(m.suffix)
	} else if c := o.kindCount(m); c != nil {
		if *c >= capFor(o, c) {
			o.dropOldest(c)
		}
		*c++
	}
	o.q = append(o.q, m)
}

// requeue puts back a message the broker never acknowledged, at the front,
// unless a newer one of the same retained topic is already waiting.
func (o *outbox) requeue(m *outMsg) {
	if m.latest {
		for _, p := range o.q {
			if p.suffix == m.suffix {
				return
			}
		}
	} else if c := o.kindCount(m); c != nil {
		if *c >= capFor(o, c) {
			o.dropped++
			return
		}
		*c++
	}
	o.q = append([]*outMsg{m}, o.q...)
}

// pushRetained queues a retained document (QoS 1); only the newest of its
// topic waits.
func (o *outbox) pushRetained(suffix string, body stamper) {
	o.push(&outMsg{suffix: suffix, qos: 1, retained: true, latest: true, body: body})
}

func (o *outbox) pop() *outMsg {
	if len(o.q) == 0 {
		return nil
	}
	m := o.q[0]
	o.q[0] = nil
	o.q = o.q[1:]
	if c := o.kindCount(m); c != nil && !m.latest {
		*c--
	}
	return m
}

func (o *outbox) len() int { return len(o.q) }

func (o *outbox) removeSuffix(suffix string) {
	out := o.q[:0]
	for _, p := range o.q {
		if !(p.latest && p.suffix == suffix) {
			out = append(out, p)
		}
	}
	for i := len(out); i < len(o.q); i++ {
		o.q[i] = nil
	}
	o.q = out
}

func (o *outbox) dropOldest(c *int) {
	for i, p := range o.q {
		if !p.latest && o.kindCount(p) == c {
			copy(o.q[i:], o.q[i+1:])
			o.q[len(o.q)-1] = nil
			o.q = o.q[:len(o.q)-1]
			*c--
			o.dropped++
			return
		}
	}
}
