package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"capbox/agent/config"
)

type uploadTargetConf = config.UploadTarget

// rig runs one uploader and keeps every event it reports.
type rig struct {
	t      *testing.T
	u      *Uploader
	dir    string // journal
	rec    string // recordings
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	events []Event
}

type rigOpts struct {
	targets   []uploadTargetConf
	kbps      int
	deleteUp  bool
	transport http.RoundTripper
	dir, rec  string
	uplink    Uplink
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.rec == "" {
		o.rec = t.TempDir()
	}
	cfg := config.Upload{BandwidthKbps: o.kbps, DeleteAfterUpload: o.deleteUp, Targets: o.targets}
	full := config.Default()
	full.Upload = cfg
	if es := full.Validate(); len(es) > 0 {
		t.Fatalf("config: %v", es)
	}
	u, err := New(cfg, Deps{
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Dir: o.dir, Device: "room1", Uplink: o.uplink, S3Transport: o.transport,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, BlockedRetry: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, u: u, dir: o.dir, rec: o.rec, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		for ev := range u.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	go func() { r.done <- u.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
		r.done <- nil
	case <-time.After(20 * time.Second):
		r.t.Error("Run did not return")
	}
}

func (r *rig) eventsOf(kind EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func (r *rig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			r.mu.Lock()
			evs := append([]Event(nil), r.events...)
			r.mu.Unlock()
			r.t.Fatalf("timed out waiting for %s; backlog %+v; events %+v", what, r.u.Backlog(), evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// segment writes a file of size random bytes as segment seq of boot 1,
// started at start, and returns it with its content.
func (r *rig) segment(seq uint64, size int, start time.Time) (Segment, []byte) {
	r.t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	p := filepath.Join(r.rec, "capbox-"+time.Now().Format("150405.000000")+"-"+string(rune('a'+seq%26))+".ts")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return Segment{Path: p, Start: start, Boot: 1, Seq: seq, Size: int64(size)}, data
}

func (r *rig) enqueue(seg Segment) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.u.Enqueue(ctx, seg); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) remote(seg Segment) string {
	name, err := RemoteName("room1", seg)
	if err != nil {
		r.t.Fatal(err)
	}
	return name
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the segment's %d", what, len(got), len(want))
	}
}
