// Package upload sends the finished segments of the recording to archives
// (SFTP and S3), resuming where a cut left off and verifying each file end
// to end, below the live outputs: a cap of its own, and a yield to the
// live outputs whenever their SRT statistics say the uplink is tight.
// Segments that cover a live output's outage go first, so the archive can
// fill the hole the stream left. Its queue is a journal on the data
// partition that survives restarts and power cuts.
//
// New makes one, Run runs it until its context ends; Enqueue hands it a
// finished segment, MarkGap an outage, Removed a segment that retention
// deleted. Backlog, Uploaded and List answer at once from the latest
// state; Events reports what happened.
package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"capbox/agent/config"
	"capbox/internal/backoff"
	"capbox/internal/loop"
)

// Segment is a finished segment of the recording.
type Segment struct {
	Path string
	// Start is when the segment began, in UTC; zero when the clock was
	// never synced, and then Boot names it.
	Start time.Time
	// Boot is the box's boot counter; Seq the segment's sequence number,
	// unique within a boot.
	Boot uint64
	Seq  uint64
	Size int64
}

// Gap is a live output's outage: what the stream missed.
type Gap struct {
	Output string    `json:"output,omitempty"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// EventKind names what happened (PROTOCOL.md evt/{type} uses the same names).
type EventKind string

// Events.
const (
	// EventDone: one target has the segment, verified.
	EventDone EventKind = "upload_done"
	// EventFailed: an upload failed (said once per distinct error and
	// target, not at every retry), or a segment was deleted before it was
	// uploaded.
	EventFailed EventKind = "upload_failed"
	// EventGap: a live output was down; the segments covering it go first.
	EventGap EventKind = "upload_gap"
)

// Event is one thing the uploader did.
type Event struct {
	Kind   EventKind `json:"kind"`
	Target string    `json:"target,omitempty"`
	Path   string    `json:"path,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Size   int64     `json:"size,omitempty"`
	// Resumed is how much the target already had when this upload began.
	Resumed int64  `json:"resumed,omitempty"`
	Msg     string `json:"msg,omitempty"`
	// Gap: the outage and the segments that cover it so far.
	Output   string    `json:"output,omitempty"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	Segments []string  `json:"segments,omitempty"`
	At       time.Time `json:"at"`
}

// Backlog is what is still to upload.
type Backlog struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// GapFiles are the pending segments that cover an outage.
	GapFiles int `json:"gap_files,omitempty"`
	// OldestPending is when the oldest pending segment began (or was
	// queued, when the clock was never synced).
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	// Uploading is the segment being sent, and how much of it is there.
	Uploading     string `json:"uploading,omitempty"`
	UploadingDone int64  `json:"uploading_done,omitempty"`
	// RateKbps is the rate the uploads may use now; -1 when unlimited.
	RateKbps int `json:"rate_kbps"`
	// Yielding: a live output is tight, so the uploads hold back.
	Yielding bool `json:"yielding,omitempty"`
}

// Recording is one segment as List shows it.
type Recording struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	Start    time.Time `json:"start,omitzero"`
	Uploaded bool      `json:"uploaded"`
	// Targets are the targets that have it.
	Targets []string `json:"targets,omitempty"`
	Gap     bool     `json:"gap,omitempty"`
}

// MaxList bounds List.
const MaxList = 500

// Deps is what the uploader needs from the box.
type Deps struct {
	Log *slog.Logger
	// Dir holds the journal (on the data partition, /data/upload).
	Dir string
	// Device is the device id remote names start with.
	Device string
	// Uplink gives the live outputs' statistics to yield to; nil: none.
	Uplink Uplink
	// S3Transport carries S3 requests; nil is Go's default.
	S3Transport http.RoundTripper
	// RetryMin and RetryMax bound the backoff between failed attempts;
	// BlockedRetry is the wait after a failure a retry cannot fix (keys,
	// host keys). Zero: 2 s, 5 min, 15 min.
	RetryMin, RetryMax, BlockedRetry time.Duration
}

// target is one archive.
type target interface {
	Name() string
	// Upload sends the job's segment, resuming what the target has, and
	// verifies it.
	Upload(ctx context.Context, j *job) (result, error)
	Close() error
}

// job is one segment for one target.
type job struct {
	path, remote string
	uploadID     string
	limit        *limiter
	saveUploadID func(string) error
	progress     func(done int64)
}

// result is what an upload did.
type result struct {
	Remote        string
	Resumed, Sent int64
}

// Uploader is the upload queue and its worker.
type Uploader struct {
	cfg    config.Upload
	deps   Deps
	log    *slog.Logger
	loop   *loop.Loop
	events chan Event
	snap   atomic.Pointer[snapshot]
	limit  *limiter
	drops  atomic.Int64

	// Owned by the Run loop.
	j       *journal
	targets []target
	runs    map[string]*targetRun
	running *running
	yield   *yielder
	lastErr string
	lastAt  time.Time
	// outbox holds events until the state they speak of is published.
	outbox []Event
}

type targetRun struct {
	backoff *backoff.Backoff
	retryAt time.Time
	lastErr string
}

type running struct {
	id       uint64
	target   string
	path     string
	gap      bool
	cancel   context.CancelFunc
	done     chan struct{}
	progress atomic.Int64
}

// snapshot is the state readers see without waiting for the loop.
type snapshot struct {
	backlog    Backlog
	uploaded   map[string]bool
	recordings []Recording // newest first
	noTargets  bool
}

// New makes an uploader for cfg. It reads nothing yet: Run opens the
// journal, and each upload reads its secret files when it starts.
func New(cfg config.Upload, deps Deps) (*Uploader, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.RetryMin <= 0 {
		deps.RetryMin = 2 * time.Second
	}
	if deps.RetryMax <= 0 {
		deps.RetryMax = 5 * time.Minute
	}
	if deps.BlockedRetry <= 0 {
		deps.BlockedRetry = 15 * time.Minute
	}
	if deps.Dir == "" {
		return nil, fmt.Errorf("%w: no folder for the journal", ErrJournal)
	}
	if !validRemote(deps.Device) || filepath.Base(deps.Device) != deps.Device {
		return nil, fmt.Errorf("%w: device id %q cannot start a remote name", ErrSegment, deps.Device)
	}
	if len(cfg.Targets) > config.MaxUploadTargets {
		return nil, fmt.Errorf("at most %d upload targets", config.MaxUploadTargets)
	}
	u := &Uploader{
		cfg: cfg, deps: deps, log: deps.Log,
		loop:   loop.New(64),
		events: make(chan Event, 256),
		runs:   map[string]*targetRun{},
	}
	for i, tc := range cfg.Targets {
		dest, err := tc.Parse()
		if err != nil {
			return nil, fmt.Errorf("upload.targets[%d]: %w", i, err)
		}
		switch dest.Scheme {
		case "sftp":
			u.targets = append(u.targets, &sftpTarget{name: tc.Name, conf: tc, dest: dest})
		case "s3":
			u.targets = append(u.targets, &s3Target{name: tc.Name, conf: tc, dest: dest, transport: shallowTransport(deps.S3Transport)})
		}
		u.runs[tc.Name] = &targetRun{backoff: backoff.New(deps.RetryMin, deps.RetryMax)}
	}
	now := time.Now()
	u.yield = newYielder(cfg.BandwidthKbps, now)
	u.limit = newLimiter(u.yield.rate)
	u.snap.Store(&snapshot{uploaded: map[string]bool{}, noTargets: len(u.targets) == 0, backlog: Backlog{RateKbps: kbps(u.yield.rate)}})
	return u, nil
}

// Events delivers what happened. Nobody has to read it: when it is full,
// the oldest events are dropped (and counted), never the uploads held.
func (u *Uploader) Events() <-chan Event { return u.events }

// Enqueue queues a finished segment; it returns once the journal on disk
// holds it. A segment already queued is left as it is.
func (u *Uploader) Enqueue(ctx context.Context, seg Segment) error {
	if !filepath.IsAbs(seg.Path) || filepath.Clean(seg.Path) != seg.Path {
		return fmt.Errorf("%w: %q is not a clean absolute path", ErrSegment, seg.Path)
	}
	remote, err := RemoteName(u.deps.Device, seg)
	if err != nil {
		return err
	}
	if seg.Size <= 0 {
		st, err := os.Stat(seg.Path)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSegment, err)
		}
		seg.Size = st.Size()
	}
	return u.loop.Do(ctx, func() error { return u.enqueue(seg, remote) })
}

// MarkGap records that a live output was down from from to to: the
// segments covering it, queued or still to come, go first.
func (u *Uploader) MarkGap(ctx context.Context, output string, from, to time.Time) error {
	if to.Before(from) {
		return fmt.Errorf("gap ends (%s) before it starts (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return u.loop.Do(ctx, func() error { return u.markGap(Gap{Output: output, From: from, To: to}) })
}

// Removed tells the uploader that retention deleted a segment. One that
// was not uploaded everywhere yet raises EventFailed: it is lost to the
// archive.
func (u *Uploader) Removed(ctx context.Context, path, why string) error {
	return u.loop.Do(ctx, func() error { return u.removed(path, why) })
}

// UploadNow retries every target at once, even one waiting after a
// refused key or host key.
func (u *Uploader) UploadNow(ctx context.Context) error {
	return u.loop.Do(ctx, func() error {
		for _, r := range u.runs {
			r.retryAt = time.Time{}
			r.backoff.Reset()
		}
		return nil
	})
}

// Backlog is what is still to upload, as of the latest change.
func (u *Uploader) Backlog() Backlog {
	s := u.snap.Load()
	b := s.backlog
	return b
}

// Uploaded reports whether every target has the segment at path, so that
// retention may delete it. With no targets, nothing waits for an upload:
// every segment counts as uploaded.
func (u *Uploader) Uploaded(path string) bool {
	s := u.snap.Load()
	return s.noTargets || s.uploaded[path]
}

// Victim is the segment retention deletes next, among paths given oldest
// first (in the order they were written, without the one being written):
// the oldest segment every target has; only when none is uploaded, the
// oldest of all, with uploaded false: it is lost to the archive, and
// Removed says so.
func (u *Uploader) Victim(paths []string) (path string, uploaded bool) {
	for _, p := range paths {
		if u.Uploaded(p) {
			return p, true
		}
	}
	if len(paths) == 0 {
		return "", false
	}
	return paths[0], false
}

// List returns up to limit segments of the journal, newest first.
func (u *Uploader) List(limit int) []Recording {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	s := u.snap.Load()
	return slices.Clone(s.recordings[:min(limit, len(s.recordings))])
}

// DroppedEvents is how many events nobody read in time.
func (u *Uploader) DroppedEvents() int64 { return u.drops.Load() }

// Run opens the journal and uploads until ctx ends; a cancelled context
// is not an error. An unreadable journal is set aside (renamed) and a new
// one started, so the uploads go on; the recordings themselves are
// untouched.
func (u *Uploader) Run(ctx context.Context) error {
	if err := os.MkdirAll(u.deps.Dir, 0o750); err != nil {
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	j, err := loadJournal(u.deps.Dir)
	if err != nil {
		aside := filepath.Join(u.deps.Dir, fmt.Sprintf("%s.unreadable-%d", journalName, time.Now().Unix()))
		if rerr := os.Rename(filepath.Join(u.deps.Dir, journalName), aside); rerr != nil {
			return fmt.Errorf("%w; and cannot set it aside: %w", err, rerr)
		}
		u.log.Error("upload journal unreadable; set aside, starting a new one", "err", err, "aside", aside)
		u.emit(Event{Kind: EventFailed, Msg: fmt.Sprintf("%v (set aside as %s)", err, aside)})
		j = &journal{Version: 1, Next: 1}
		u.j = j
		u.publish()
	}
	u.j = j
	u.reconcile()
	if err := u.save(); err != nil {
		return err
	}
	u.publish()

	tick := time.NewTicker(yieldTick)
	defer tick.Stop()
	for {
		u.schedule()
		select {
		case <-ctx.Done():
			u.loop.Stop()
			if r := u.running; r != nil {
				r.cancel()
				<-r.done
			}
			u.loop.Drain()
			for _, t := range u.targets {
				_ = t.Close()
			}
			u.publish()
			return nil
		case f := <-u.loop.C():
			f()
		case now := <-tick.C:
			u.tickYield(now)
		}
	}
}

// reconcile brings a journal read at start in line with the config and
// the disk: targets added or removed, segments deleted meanwhile.
func (u *Uploader) reconcile() {
	names := map[string]bool{}
	for _, t := range u.targets {
		names[t.Name()] = true
	}
	kept := u.j.Entries[:0]
	for _, e := range u.j.Entries {
		for name := range e.Targets {
			if !names[name] {
				delete(e.Targets, name)
			}
		}
		for name := range names {
			if e.Targets[name] == nil {
				e.Targets[name] = &targetState{}
			}
		}
		if _, err := os.Stat(e.Path); errors.Is(err, os.ErrNotExist) {
			if !e.done() {
				u.emit(Event{Kind: EventFailed, Path: e.Path, Msg: ErrSegmentGone.Error()})
			}
			continue
		}
		kept = append(kept, e)
	}
	u.j.Entries = kept
}

func (u *Uploader) save() error {
	u.j.trim()
	if err := u.j.save(u.deps.Dir); err != nil {
		u.log.Error("upload journal", "err", err)
		return err
	}
	return nil
}

func (u *Uploader) enqueue(seg Segment, remote string) error {
	if _, e := u.j.find(seg.Path); e != nil {
		return nil
	}
	now := time.Now()
	e := &entry{ID: u.j.Next, Path: seg.Path, Size: seg.Size, Boot: seg.Boot, Seq: seg.Seq,
		Enqueued: now, Remote: remote, Targets: map[string]*targetState{}}
	if !seg.Start.IsZero() {
		e.Start = seg.Start.UTC()
	}
	for _, t := range u.targets {
		e.Targets[t.Name()] = &targetState{}
	}
	prev := time.Time{}
	if n := len(u.j.Entries); n > 0 {
		prev = u.j.Entries[n-1].Enqueued
	}
	for _, g := range u.j.Gaps {
		if covers(e, prev, g) {
			e.Gap = true
		}
	}
	u.j.Next++
	u.j.Entries = append(u.j.Entries, e)
	if err := u.save(); err != nil {
		u.j.Entries = u.j.Entries[:len(u.j.Entries)-1]
		return err
	}
	u.publish()
	return nil
}

// covers reports whether segment e, recorded from its start (or the end of
// the one before, prev) until it was queued, overlaps the outage g.
func covers(e *entry, prev time.Time, g Gap) bool {
	from := e.since(prev)
	return from.Before(g.To) && e.Enqueued.After(g.From)
}

func (u *Uploader) markGap(g Gap) error {
	var names []string
	prev := time.Time{}
	for _, e := range u.j.Entries {
		if covers(e, prev, g) {
			if !e.done() {
				e.Gap = true
			}
			names = append(names, e.Remote)
		}
		prev = e.Enqueued
	}
	u.j.Gaps = append(u.j.Gaps, g)
	if n := len(u.j.Gaps); n > maxGaps {
		u.j.Gaps = u.j.Gaps[n-maxGaps:]
	}
	if err := u.save(); err != nil {
		return err
	}
	u.emit(Event{Kind: EventGap, Output: g.Output, From: g.From, To: g.To, Segments: names,
		Msg: fmt.Sprintf("%s was down %s: %d segment(s) go first", g.Output, g.To.Sub(g.From).Round(time.Second), len(names))})
	u.publish()
	return nil
}

func (u *Uploader) removed(path, why string) error {
	i, e := u.j.find(path)
	if e == nil {
		return nil
	}
	if r := u.running; r != nil && r.id == e.ID {
		r.cancel()
	}
	if !e.done() {
		msg := ErrSegmentGone.Error()
		if why != "" {
			msg += ": " + why
		}
		u.emit(Event{Kind: EventFailed, Path: path, Remote: e.Remote, Size: e.Size, Msg: msg})
	}
	u.j.remove(i)
	err := u.save()
	u.publish()
	return err
}

// next picks what to upload: segments covering an outage first, then the
// rest, each in the order they were queued; per segment the targets in
// config order, skipping targets that wait after a failure.
func (u *Uploader) next(now time.Time, gapOnly bool) (*entry, target) {
	for _, wantGap := range []bool{true, false} {
		if !wantGap && gapOnly {
			break
		}
		for _, e := range u.j.Entries {
			if e.Gap != wantGap {
				continue
			}
			for _, t := range u.targets {
				ts := e.Targets[t.Name()]
				if ts != nil && !ts.Done && !now.Before(u.runs[t.Name()].retryAt) {
					return e, t
				}
			}
		}
	}
	return nil, nil
}

func (u *Uploader) schedule() {
	now := time.Now()
	if r := u.running; r != nil {
		// An outage's segments preempt a plain one; it resumes later.
		if !r.gap {
			if e, _ := u.next(now, true); e != nil {
				r.cancel()
			}
		}
		return
	}
	e, t := u.next(now, false)
	if e == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{id: e.ID, target: t.Name(), path: e.Path, gap: e.Gap, cancel: cancel, done: make(chan struct{})}
	u.running = r
	id, name := e.ID, t.Name()
	j := &job{
		path: e.Path, remote: e.Remote, uploadID: e.Targets[name].UploadID, limit: u.limit,
		progress: func(done int64) { r.progress.Store(done) },
		// The id is saved while the parts go up: should the box stop
		// before it is on disk, the next attempt starts a new upload.
		saveUploadID: func(uploadID string) error {
			u.loop.Post(func() {
				if _, e := u.j.findID(id); e != nil {
					e.Targets[name].UploadID = uploadID
					_ = u.save()
				}
			})
			return nil
		},
	}
	u.publish()
	go func() {
		defer close(r.done)
		res, err := t.Upload(ctx, j)
		if ctx.Err() != nil && err != nil {
			err = context.Canceled
		}
		u.loop.Post(func() { u.finished(r, res, err) })
	}()
}

func (j *journal) findID(id uint64) (int, *entry) {
	for i, e := range j.Entries {
		if e.ID == id {
			return i, e
		}
	}
	return -1, nil
}

func (u *Uploader) finished(r *running, res result, err error) {
	r.cancel()
	if u.running == r {
		u.running = nil
	}
	defer u.publish()
	i, e := u.j.findID(r.id)
	if e == nil {
		return // removed meanwhile
	}
	ts := e.Targets[r.target]
	run := u.runs[r.target]
	now := time.Now()
	switch {
	case err == nil:
		ts.Done, ts.DoneAt, ts.UploadID, ts.LastError = true, now.UTC(), "", ""
		run.backoff.Reset()
		run.lastErr = ""
		u.emit(Event{Kind: EventDone, Target: r.target, Path: e.Path, Remote: res.Remote, Size: e.Size, Resumed: res.Resumed})
		u.log.Info("uploaded", "target", r.target, "segment", e.Path, "remote", res.Remote, "resumed", res.Resumed, "sent", res.Sent)
		if e.done() && u.cfg.DeleteAfterUpload {
			if err := os.Remove(e.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				u.log.Warn("delete after upload", "segment", e.Path, "err", err)
			} else {
				u.j.remove(i)
			}
		}
	case errors.Is(err, context.Canceled):
		return // shutdown, a gap first, or removed: resumes later
	case errors.Is(err, ErrSegmentGone):
		u.j.remove(i)
		u.emit(Event{Kind: EventFailed, Target: r.target, Path: e.Path, Remote: e.Remote, Size: e.Size, Msg: err.Error()})
	default:
		msg := err.Error()
		if errors.Is(err, ErrVerify) {
			ts.UploadID = "" // start that target's copy afresh
		}
		wait := run.backoff.Next()
		if blocked(err) {
			wait = u.deps.BlockedRetry
		}
		run.retryAt = now.Add(wait)
		ts.LastError = msg
		u.lastErr, u.lastAt = msg, now
		if msg != run.lastErr {
			u.emit(Event{Kind: EventFailed, Target: r.target, Path: e.Path, Remote: e.Remote, Size: e.Size, Msg: msg})
		}
		run.lastErr = msg
		u.log.Warn("upload failed", "target", r.target, "segment", e.Path, "err", msg, "retry_in", wait.Round(time.Second))
	}
	_ = u.save()
}

func (u *Uploader) tickYield(now time.Time) {
	var samples []LinkSample
	if u.deps.Uplink != nil {
		samples = u.deps.Uplink.LiveLinks()
	}
	rate := u.yield.tick(now, samples, u.limit.total())
	if rate != u.limit.currentRate() {
		u.limit.setRate(rate)
	}
	if u.running != nil || u.yield.tight {
		u.publish()
	}
}

func kbps(rate float64) int {
	if math.IsInf(rate, 1) {
		return -1
	}
	return int(rate * 8 / 1000)
}

// publish makes the current state what readers see.
func (u *Uploader) publish() {
	s := &snapshot{uploaded: map[string]bool{}, noTargets: len(u.targets) == 0}
	b := &s.backlog
	prev := time.Time{}
	for _, e := range u.j.Entries {
		if e.done() {
			s.uploaded[e.Path] = true
		} else {
			b.Files++
			b.Bytes += e.Size
			if e.Gap {
				b.GapFiles++
			}
			if since := e.since(prev); b.OldestPending.IsZero() || (!since.IsZero() && since.Before(b.OldestPending)) {
				if since.IsZero() {
					since = e.Enqueued
				}
				b.OldestPending = since
			}
		}
		prev = e.Enqueued
		rec := Recording{Name: filepath.Base(e.Path), Path: e.Path, Size: e.Size, Start: e.Start, Uploaded: e.done(), Gap: e.Gap}
		for _, t := range u.targets {
			if ts := e.Targets[t.Name()]; ts != nil && ts.Done {
				rec.Targets = append(rec.Targets, t.Name())
			}
		}
		s.recordings = append(s.recordings, rec)
	}
	slices.Reverse(s.recordings)
	if len(s.recordings) > MaxList {
		s.recordings = s.recordings[:MaxList]
	}
	b.LastError, b.LastErrorAt = u.lastErr, u.lastAt
	if r := u.running; r != nil {
		b.Uploading, b.UploadingDone = r.path, r.progress.Load()
	}
	b.RateKbps = kbps(u.limit.currentRate())
	b.Yielding = u.yield.tight
	u.snap.Store(s)
	for _, ev := range u.outbox {
		u.send(ev)
	}
	u.outbox = nil
}

// emit queues an event; publish sends it once the state it speaks of is
// what Backlog, Uploaded and List show.
func (u *Uploader) emit(ev Event) {
	ev.At = time.Now().UTC()
	u.outbox = append(u.outbox, ev)
}

// send hands an event on without ever blocking: when nobody reads, the
// oldest waiting event makes room.
func (u *Uploader) send(ev Event) {
	for {
		select {
		case u.events <- ev:
			return
		default:
		}
		select {
		case <-u.events:
			u.drops.Add(1)
		default:
		}
	}
}
