package gst

import (
	"runtime"
	"sync"
	"time"
)

// A torn-down pipeline's C memory (elements, buffers, a failed output's
// connection state) is freed only when the Go wrappers that hold it are
// finalized, that is after a garbage collection. The Go heap of this
// process is small and collects rarely, so an output that fails and is
// retried twice a second would hold minutes of dead pipelines. reclaim
// asks for a collection soon after teardowns, at most every few seconds.
var reclaimer struct {
	sync.Mutex
	pending bool
	last    time.Time
}

// reclaimEvery bounds how often teardowns trigger a collection.
const reclaimEvery = 5 * time.Second

func reclaimSoon() {
	reclaimer.Lock()
	defer reclaimer.Unlock()
	if reclaimer.pending {
		return
	}
	reclaimer.pending = true
	wait := max(reclaimEvery-time.Since(reclaimer.last), 0)
	time.AfterFunc(wait, func() {
		runtime.GC()
		reclaimer.Lock()
		reclaimer.pending, reclaimer.last = false, time.Now()
		reclaimer.Unlock()
	})
}
