package upload

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Segments that cover a live output's outage go first, whether the outage
// is marked before or after they are queued; a plain upload in flight
// gives way and resumes afterwards.
func TestGapSegmentsGoFirst(t *testing.T) {
	s3 := startS3(t)
	// 4 Mbit/s: the first segment takes about 2 s, time enough to queue
	// the others behind it.
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport(), kbps: 4000})
	now := time.Now()
	a, _ := r.segment(1, 1<<20, now.Add(-time.Minute))
	b, _ := r.segment(2, 256<<10, now.Add(-50*time.Second))
	r.enqueue(a)
	r.enqueue(b)
	time.Sleep(300 * time.Millisecond)
	from := time.Now()
	c, _ := r.segment(3, 256<<10, from.Add(-time.Second))
	r.enqueue(c) // covers the outage's start
	time.Sleep(200 * time.Millisecond)
	to := time.Now()
	if err := r.u.MarkGap(context.Background(), "primary", from, to); err != nil {
		t.Fatal(err)
	}
	d, _ := r.segment(4, 256<<10, to.Add(-100*time.Millisecond))
	r.enqueue(d) // queued after the outage was marked, and covers its end
	e, _ := r.segment(5, 256<<10, time.Now())
	r.enqueue(e) // after the outage
	r.waitFor(60*time.Second, "every upload", func() bool { return len(r.eventsOf(EventDone)) == 5 })
	got := s3.completedKeys()
	if got[0] != r.remote(c) || got[1] != r.remote(d) {
		t.Errorf("upload order %v: want the outage's %s and %s first", got, r.remote(c), r.remote(d))
	}
	gaps := r.eventsOf(EventGap)
	if len(gaps) != 1 || !gaps[0].From.Equal(from) || !gaps[0].To.Equal(to) || gaps[0].Output != "primary" ||
		len(gaps[0].Segments) != 1 || gaps[0].Segments[0] != r.remote(c) {
		t.Errorf("gap event: %+v", gaps)
	}
	for _, l := range r.u.List(10) {
		if wantGap := l.Path == c.Path || l.Path == d.Path; l.Gap != wantGap {
			t.Errorf("%s: gap %v", l.Name, l.Gap)
		}
	}
}

// A clock that jumps back while recording changes nothing about order or
// uniqueness: segments go up in the order they were recorded, each under
// its own name; a segment from before the clock was synced is named by the
// boot counter.
func TestClockJumpKeepsOrderAndNames(t *testing.T) {
	s3 := startS3(t)
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport()})
	s3.down()
	t0 := time.Now().UTC().Truncate(time.Second).Add(-2 * time.Hour)
	unsynced, _ := r.segment(1, 1000, time.Time{})
	first, _ := r.segment(2, 1000, t0)
	back, _ := r.segment(3, 1000, t0.Add(-time.Hour+5*time.Minute)) // the clock jumped back an hour
	for _, s := range []Segment{unsynced, first, back} {
		r.enqueue(s)
	}
	if b := r.u.Backlog(); !b.OldestPending.Equal(t0.Add(-time.Hour + 5*time.Minute)) {
		t.Errorf("oldest pending %v", b.OldestPending)
	}
	s3.up()
	if err := r.u.UploadNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitFor(30*time.Second, "every upload", func() bool { return len(r.eventsOf(EventDone)) == 3 })
	want := []string{"room1/boot1/room1-boot1-00001.ts", r.remote(first), r.remote(back)}
	if want[1] == want[2] {
		t.Fatalf("one name for two segments: %s", want[1])
	}
	if got := s3.completedKeys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uploaded %v, want %v", got, want)
	}
}

// With uploads pending and the disk filling: retention takes uploaded
// segments first; when only pending ones are left it takes the oldest,
// and the uploader says the segment is lost to the archive.
func TestDiskFullWithUploadsPending(t *testing.T) {
	s3 := startS3(t)
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport()})
	var all []string
	for i := range 2 {
		seg, _ := r.segment(uint64(i+1), 1000, time.Now())
		r.enqueue(seg)
		all = append(all, seg.Path)
	}
	r.waitFor(20*time.Second, "two uploads", func() bool { return len(r.eventsOf(EventDone)) == 2 })
	s3.down()
	for i := 2; i < 4; i++ {
		seg, _ := r.segment(uint64(i+1), 1000, time.Now())
		r.enqueue(seg)
		all = append(all, seg.Path)
	}
	ctx := context.Background()
	// Retention frees space the way recdir will: the victim, delete,
	// tell the uploader.
	var order []string
	for range 3 {
		victim, uploaded := r.u.Victim(all)
		if victim == "" {
			t.Fatal("no victim")
		}
		if err := os.Remove(victim); err != nil {
			t.Fatal(err)
		}
		why := ""
		if !uploaded {
			why = "disk full"
		}
		if err := r.u.Removed(ctx, victim, why); err != nil {
			t.Fatal(err)
		}
		order = append(order, filepath.Base(victim))
		all = removeString(all, victim)
	}
	var lostPaths []string
	lost := func() bool {
		lostPaths = nil
		for _, ev := range r.eventsOf(EventFailed) {
			if strings.Contains(ev.Msg, "disk full") {
				lostPaths = append(lostPaths, filepath.Base(ev.Path))
			}
		}
		return len(lostPaths) > 0
	}
	r.waitFor(5*time.Second, "the lost segment's event", lost)
	time.Sleep(200 * time.Millisecond) // no second one
	lost()
	if len(lostPaths) != 1 || lostPaths[0] != order[2] {
		t.Errorf("deleted %v; lost-segment events for %v (want exactly the third)", order, lostPaths)
	}
	if b := r.u.Backlog(); b.Files != 1 {
		t.Errorf("backlog: %+v", b)
	}
}

func removeString(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// delete_after_upload: once every target has a segment, it leaves the box.
func TestDeleteAfterUpload(t *testing.T) {
	s3 := startS3(t)
	sshd := startSSHD(t)
	remoteDir := t.TempDir()
	r := newRig(t, rigOpts{targets: []uploadTargetConf{sshd.target("archive", remoteDir), s3.target("s3", "")},
		transport: s3.transport(), deleteUp: true})
	seg, data := r.segment(1, 100<<10, time.Now())
	r.enqueue(seg)
	r.waitFor(30*time.Second, "both uploads", func() bool { return len(r.eventsOf(EventDone)) == 2 })
	r.waitFor(5*time.Second, "the local file to go", func() bool { _, err := os.Stat(seg.Path); return os.IsNotExist(err) })
	got, _ := os.ReadFile(filepath.Join(remoteDir, r.remote(seg)))
	sameBytes(t, "sftp copy", got, data)
	sameBytes(t, "s3 copy", s3.object(t, r.remote(seg)), data)
}

// A journal that cannot be read is set aside, said so, and a new one
// started: the uploads go on.
func TestUnreadableJournalSetAside(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, journalName), `{"version":1,"next":1,"entries":[{"id":5}`)
	s3 := startS3(t)
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport(), dir: dir})
	r.waitFor(5*time.Second, "the event", func() bool { return len(r.eventsOf(EventFailed)) == 1 })
	if ev := r.eventsOf(EventFailed)[0]; !strings.Contains(ev.Msg, ErrJournal.Error()) || !strings.Contains(ev.Msg, "set aside") {
		t.Errorf("event: %+v", ev)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, journalName+".unreadable-*"))
	if len(aside) != 1 {
		t.Errorf("set aside: %v", aside)
	}
	seg, _ := r.segment(1, 1000, time.Now())
	r.enqueue(seg)
	r.waitFor(10*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
}
