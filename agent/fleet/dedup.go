package fleet

import (
	"container/list"

	"capbox/agent/fleet/wire"
)

// Bounds of the remembered command ids: enough for every command an
// operator sends in hours, and at most ~1 MiB of stored answers (a
// snapshot answer is ~12 KiB).
const (
	maxRememberedIDs   = 512
	maxRememberedBytes = 1 << 20
)

// remembered is the first answer to one request id; pending until the
// command finishes.
type remembered struct {
	key     string
	pending bool
	res     wire.CmdResponse
}

// dedup remembers recent request ids (per command name) with their first
// answer, evicting the oldest past its bounds.
type dedup struct {
	order *list.List
	byKey map[string]*list.Element
	bytes int
}

func newDedup() *dedup {
	return &dedup{order: list.New(), byKey: map[string]*list.Element{}}
}

func dedupKey(name, id string) string { return name + "\x00" + id }

// seen returns the remembered entry for a repeat, or registers the id as
// pending and returns nil.
func (d *dedup) seen(name, id string) *remembered {
	k := dedupKey(name, id)
	if e, ok := d.byKey[k]; ok {
		return e.Value.(*remembered)
	}
	d.byKey[k] = d.order.PushBack(&remembered{key: k, pending: true})
	d.evict()
	return nil
}

// done stores the first final answer.
func (d *dedup) done(name, id string, res wire.CmdResponse) {
	e, ok := d.byKey[dedupKey(name, id)]
	if !ok {
		return // evicted while running
	}
	r := e.Value.(*remembered)
	if !r.pending {
		return
	}
	r.pending, r.res = false, res
	d.bytes += len(res.Result) + len(res.Msg)
	d.evict()
}

func (d *dedup) evict() {
	for d.order.Len() > maxRememberedIDs || (d.bytes > maxRememberedBytes && d.order.Len() > 1) {
		e := d.order.Front()
		r := e.Value.(*remembered)
		d.order.Remove(e)
		delete(d.byKey, r.key)
		d.bytes -= len(r.res.Result) + len(r.res.Msg)
	}
}

// forget drops an id whose answer must not be remembered (busy).
func (d *dedup) forget(name, id string) {
	k := dedupKey(name, id)
	if e, ok := d.byKey[k]; ok {
		d.order.Remove(e)
		delete(d.byKey, k)
	}
}
