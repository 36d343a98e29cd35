package gst

import (
	"runtime"
	"sync"
	"time"
)

// A torn-down pipeline's C memory (elements, buffers, a failed output's
// connection state) and its bus's descriptors are freed only when the Go
// wrappers that hold them are finalized, that is after a garbage
// collection. The Go heap of this process is small and collects rarely
// (the runtime forces one every two minutes), so an output that fails and
// is retried twice a second would hold minutes of dead pipelines. reclaim
// asks for collections soon after teardowns, at most every few seconds,
// and a few of them: a wrapper still referenced at the first (a front kept
// a moment for its switch, a teardown that finished late) or only
// reachable from another finalized wrapper goes at a later one.
var reclaimer struct {
	sync.Mutex
	// rounds is how many collections are still to run; a timer is
	// pending while it is above zero.
	rounds int
	last   time.Time
}

const (
	// reclaimEvery bounds how often teardowns trigger a collection.
	reclaimEvery = 5 * time.Second
	// reclaimRounds is how many collections follow the last teardown.
	reclaimRounds = 3
)

func reclaimSoon() {
	reclaimer.Lock()
	defer reclaimer.Unlock()
	if reclaimer.rounds == 0 {
		time.AfterFunc(max(reclaimEvery-time.Since(reclaimer.last), 0), reclaimRound)
	}
	reclaimer.rounds = reclaimRounds
}

func reclaimRound() {
	runtime.GC()
	reclaimer.Lock()
	defer reclaimer.Unlock()
	reclaimer.rounds--
	reclaimer.last = time.Now()
	if reclaimer.rounds > 0 {
		time.AfterFunc(reclaimEvery, reclaimRound)
	}
}
