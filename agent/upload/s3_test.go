package upload

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A 20 MiB segment goes up in three parts (each but the last at least
// S3's 5 MiB, which the checker in front of the server enforces), and the
// stored object is the segment, byte for byte.
func TestS3UploadVerified(t *testing.T) {
	s3 := startS3(t)
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "2026")}, transport: s3.transport()})
	start := time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC)
	seg, data := r.segment(7, 20<<20+12345, start)
	r.enqueue(seg)
	r.waitFor(60*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
	key := "2026/room1/2026-12-08/room1-20261208T093000Z-00007.ts"
	if ev := r.eventsOf(EventDone)[0]; ev.Remote != key || ev.Target != "s3" || ev.Size != seg.Size {
		t.Errorf("done event: %+v", ev)
	}
	sameBytes(t, key, s3.object(t, key), data)
	if !r.u.Uploaded(seg.Path) {
		t.Error("Uploaded says no")
	}
	if b := r.u.Backlog(); b.Files != 0 || b.Bytes != 0 {
		t.Errorf("backlog after upload: %+v", b)
	}
	if l := r.u.List(10); len(l) != 1 || !l[0].Uploaded || l[0].Size != seg.Size || len(l[0].Targets) != 1 {
		t.Errorf("list: %+v", l)
	}
}

// The checker really enforces what gofakes3 does not: a part under 5 MiB
// that is not the last is refused at completion, as S3 refuses it, and a
// wrong secret is refused with S3's code.
func TestS3CheckerRefusesWhatS3Refuses(t *testing.T) {
	s3 := startS3(t)
	ctx := context.Background()
	dial := func(secret string) *minio.Core {
		c, err := minio.NewCore(s3.addr, &minio.Options{Creds: credentials.NewStaticV4(s3.access, secret, ""),
			Secure: true, Transport: s3.transport(), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial(s3.secret)
	id, err := c.NewMultipartUpload(ctx, testBucket, "small", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []minio.CompletePart
	for i := 1; i <= 2; i++ {
		body := strings.Repeat("x", 1<<20)
		p, err := c.PutObjectPart(ctx, testBucket, "small", id, i, strings.NewReader(body), int64(len(body)), minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: i, ETag: p.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx, testBucket, "small", id, parts, minio.PutObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code != "EntityTooSmall" {
		t.Errorf("1 MiB parts: want EntityTooSmall, got %v", err)
	}
	_, err = dial("wrong-secret").NewMultipartUpload(ctx, testBucket, "x", minio.PutObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: want SignatureDoesNotMatch, got %v", err)
	}
}

// Wrong credentials: one clear event naming them, a wait of BlockedRetry
// rather than a retry storm, and no secret in anything said.
func TestS3WrongCredentials(t *testing.T) {
	s3 := startS3(t)
	tc := s3.target("s3", "")
	writeFile(t, tc.SecretKeyFile, "not-the-secret-at-all")
	r := newRig(t, rigOpts{targets: []uploadTargetConf{tc}, transport: s3.transport()})
	seg, _ := r.segment(1, 1000, time.Now())
	r.enqueue(seg)
	r.waitFor(10*time.Second, "upload_failed", func() bool { return len(r.eventsOf(EventFailed)) > 0 })
	before := s3.requestCount()
	time.Sleep(3 * time.Second) // RetryMin is 200 ms: a storm would show
	if n := s3.requestCount() - before; n > 0 {
		t.Errorf("%d requests after the credentials were refused", n)
	}
	evs := r.eventsOf(EventFailed)
	if len(evs) != 1 || !strings.Contains(evs[0].Msg, ErrCredentials.Error()) || !strings.Contains(evs[0].Msg, "SignatureDoesNotMatch") &&
		!strings.Contains(evs[0].Msg, "signature") {
		t.Errorf("want one credentials event, got %+v", evs)
	}
	b := r.u.Backlog()
	for _, s := range []string{"not-the-secret-at-all", s3.access} {
		if strings.Contains(b.LastError, s) || strings.Contains(fmt.Sprint(evs), s) {
			t.Errorf("a key leaks: %q in %q", s, b.LastError)
		}
	}
	if b.Files != 1 || b.LastError == "" {
		t.Errorf("backlog: %+v", b)
	}
	// The right key, and upload_now: it goes at once.
	writeFile(t, tc.SecretKeyFile, s3.secret)
	if err := r.u.UploadNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitFor(10*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
}

// The server away: the backlog grows, failures are said once, and when it
// is back the segments go up in the order they were recorded.
func TestS3ServerDownBacklogDrainsInOrder(t *testing.T) {
	s3 := startS3(t)
	s3.down()
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport()})
	t0 := time.Now().Add(-time.Hour)
	var want []string
	for i := range 5 {
		seg, _ := r.segment(uint64(i+1), 64<<10, t0.Add(time.Duration(i)*time.Minute))
		r.enqueue(seg)
		want = append(want, r.remote(seg))
	}
	r.waitFor(10*time.Second, "a failure", func() bool { return r.u.Backlog().LastError != "" })
	time.Sleep(2 * time.Second)
	b := r.u.Backlog()
	if b.Files != 5 || b.Bytes != 5*64<<10 || !b.OldestPending.Equal(t0.UTC()) {
		t.Errorf("backlog while down: %+v", b)
	}
	if n := len(r.eventsOf(EventFailed)); n != 1 {
		t.Errorf("%d upload_failed events for one outage (want 1: said once, not at each retry)", n)
	}
	s3.up()
	r.waitFor(30*time.Second, "the backlog to drain", func() bool { return len(r.eventsOf(EventDone)) == 5 })
	got := s3.completedKeys()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("drained in order %v, want %v", got, want)
	}
	if b := r.u.Backlog(); b.Files != 0 {
		t.Errorf("backlog after: %+v", b)
	}
}

// The journal survives a restart: what was queued is still queued, and
// goes up once a target is reachable.
func TestJournalSurvivesRestart(t *testing.T) {
	s3 := startS3(t)
	s3.down()
	dir := t.TempDir()
	r := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport(), dir: dir})
	seg, data := r.segment(3, 300<<10, time.Time{})
	r.enqueue(seg)
	r.stop()
	s3.up()
	r2 := newRig(t, rigOpts{targets: []uploadTargetConf{s3.target("s3", "")}, transport: s3.transport(), dir: dir, rec: r.rec})
	r2.waitFor(20*time.Second, "upload_done", func() bool { return len(r2.eventsOf(EventDone)) == 1 })
	key := "room1/boot1/room1-boot1-00003.ts"
	sameBytes(t, key, s3.object(t, key), data)
}

// Killed in the middle of a segment, the uploader comes back, lists the
// parts the server has, checks them and sends only the rest.
func TestS3KilledMidUploadResumes(t *testing.T) {
	s3 := startS3(t)
	dir, rec := t.TempDir(), t.TempDir()
	tc := s3.target("s3", "")
	// A cap slow enough to stop it between parts: 3 parts of 8 MiB.
	helper := startHelper(t, helperConfig{Targets: []uploadTargetConf{tc}, Kbps: 40000, Dir: dir, CA: s3.dir + "/ca.pem"})
	seg := helper.segment(rec, 20<<20)
	helper.enqueue(seg)
	waitUntil(t, 60*time.Second, "a part stored", func() bool {
		for _, p := range s3.allParts() {
			if p >= 1 {
				return true
			}
		}
		return false
	})
	helper.kill()
	var stored int64
	for _, size := range s3.storedSizes() {
		stored += size
	}
	r := newRig(t, rigOpts{targets: []uploadTargetConf{tc}, transport: s3.transport(), dir: dir, rec: rec})
	r.waitFor(60*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
	ev := r.eventsOf(EventDone)[0]
	if ev.Resumed == 0 || ev.Resumed != stored {
		t.Errorf("resumed %d bytes; the server had %d bytes of parts before the kill", ev.Resumed, stored)
	}
	for id, puts := range s3.allPuts() {
		for n, c := range puts {
			if c > 1 {
				t.Errorf("upload %s part %d sent %d times", id, n, c)
			}
		}
	}
	sameBytes(t, ev.Remote, s3.object(t, ev.Remote), helper.data)
}

func (s *s3Server) allParts() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, m := range s.parts {
		for n := range m {
			out = append(out, n)
		}
	}
	return out
}

func (s *s3Server) storedSizes() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for id, m := range s.partSizes {
		for n, size := range m {
			out[fmt.Sprintf("%s/%d", id, n)] = size
		}
	}
	return out
}

func (s *s3Server) allPuts() map[string]map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[int]int{}
	for id, m := range s.parts {
		out[id] = map[int]int{}
		for n, c := range m {
			out[id][n] = c
		}
	}
	return out
}
