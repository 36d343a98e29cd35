package fleet

import (
	"context"
	"sync"
	"time"

	"capbox/internal/loop"

	"capbox/agent/fleet/wire"
)

// eventQueue sits between the Box's event channel and the loop, so the
// Box never waits on the loop (which may be dialing a broker).
type eventQueue struct {
	mu      sync.Mutex
	q       []wire.Event
	dropped int
	// bell hands the loop "take the events" without waiting: its depth
	// is 1, and a take already waiting takes this event too.
	bell *loop.Loop
	take func() // the loop's side: takeEvents
}

func newEventQueue(take func()) *eventQueue { return &eventQueue{bell: loop.New(1), take: take} }

func (q *eventQueue) add(e wire.Event) {
	q.mu.Lock()
	if len(q.q) >= maxQueuedEvents {
		copy(q.q, q.q[1:])
		q.q = q.q[:len(q.q)-1]
		q.dropped++
	}
	q.q = append(q.q, e)
	q.mu.Unlock()
	q.bell.TryPost(q.take)
}

func (q *eventQueue) takeAll() ([]wire.Event, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out, d := q.q, q.dropped
	q.q, q.dropped = nil, 0
	return out, d
}

// drainEvents copies the Box's events into the queue until ctx ends,
// stamping their creation time.
func (l *Link) drainEvents(ctx context.Context) {
	ch := l.box.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			if e.TS == 0 {
				e.TS = time.Now().UnixMilli()
			}
			l.mail.events.add(e)
		}
	}
}

// takeEvents moves drained events into the outbox.
func (l *Link) takeEvents() {
	evs, dropped := l.mail.events.takeAll()
	if dropped > 0 {
		l.log.Warn("fleet events dropped while the loop was busy", "dropped", dropped)
	}
	for _, e := range evs {
		l.queueEvent(e)
	}
}

func (l *Link) queueEvent(e wire.Event) {
	if !wire.ValidName(e.Type) {
		l.log.Warn("event with an invalid type dropped", "type", e.Type)
		return
	}
	e.V, e.Sess, e.Seq = 0, 0, 0
	before := l.out.dropped
	l.out.push(&outMsg{suffix: wire.TopicEvtPrefix + e.Type, qos: 1, body: &e})
	if l.out.dropped > before {
		l.log.Warn("fleet queue full: oldest queued event dropped", "queued", l.out.len())
	}
}
