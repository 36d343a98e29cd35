package fleet

import (
	"context"
	"strings"

	"capbox/agent/fleet/wire"
)

// maxInbound bounds the messages waiting for the loop; more are dropped.
const maxInbound = 64

// onMessage runs on paho's goroutines: it hands the message to the loop
// and never waits. A message that finds maxInbound waiting is dropped.
func (l *Link) onMessage(ctx context.Context, topic string, payload []byte, retained bool) {
	if l.mail.inbound.TryPost(func() { l.handleInbound(ctx, topic, payload, retained) }) {
		return
	}
	select {
	case <-l.mail.inbound.Stopped():
		return // Run has returned: nobody would read it
	default:
	}
	if n := l.mail.dropped.Add(1); n == 1 || n%100 == 0 {
		l.log.Warn("fleet inbound queue full, message dropped", "topic", topic, "dropped", n)
	}
}

// handleInbound routes one message for this box. retained: delivered
// because we subscribed (a snapshot from before this session's birth), not
// forwarded live.
func (l *Link) handleInbound(ctx context.Context, topic string, payload []byte, retained bool) {
	suffix, ok := strings.CutPrefix(topic, l.topics.Base())
	if !ok {
		return
	}
	switch {
	case suffix == wire.TopicStatus:
		l.onOwnStatus(payload, retained)
	case suffix == wire.TopicConfigDesired:
		l.onDesired(ctx, payload)
	case strings.HasPrefix(suffix, wire.TopicCmdReqPrefix):
		l.onCommand(ctx, strings.TrimPrefix(suffix, wire.TopicCmdReqPrefix), payload)
	case suffix == wire.TopicOTAJob:
		l.log.Debug("ota/job ignored: updates are not part of protocol version 1 here")
	}
}
