package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// An SFTP upload lands whole under its remote name with its checksum
// beside it, and resumes onto a partial file whose bytes are the
// segment's.
func TestSFTPUploadResumesVerified(t *testing.T) {
	sshd := startSSHD(t)
	remoteDir := t.TempDir()
	r := newRig(t, rigOpts{targets: []uploadTargetConf{sshd.target("archive", remoteDir+"/rooms")}})
	start := time.Date(2026, 12, 8, 23, 59, 59, 0, time.FixedZone("CET", 3600))
	seg, data := r.segment(12, 3<<20+7, start)
	name := r.remote(seg)
	if name != "room1/2026-12-08/room1-20261208T225959Z-00012.ts" {
		t.Errorf("remote name %s: want UTC date and start", name)
	}
	final := filepath.Join(remoteDir, "rooms", name)
	// What a cut left: the first MiB already there.
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(final+".part", data[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	r.enqueue(seg)
	r.waitFor(30*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
	if ev := r.eventsOf(EventDone)[0]; ev.Resumed != 1<<20 || ev.Remote != final {
		t.Errorf("done: %+v (want resumed at 1 MiB, remote %s)", ev, final)
	}
	got, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, final, got, data)
	sum := sha256.Sum256(data)
	side, _ := os.ReadFile(final + ".sha256")
	if string(side) != hex.EncodeToString(sum[:])+"  "+filepath.Base(final)+"\n" {
		t.Errorf("sidecar %q", side)
	}
	if _, err := os.Stat(final + ".part"); !os.IsNotExist(err) {
		t.Errorf("the part file is still there: %v", err)
	}
}

// A partial file that is not the segment's is not built upon: the upload
// starts again from the first byte.
func TestSFTPForeignPartialRestarts(t *testing.T) {
	sshd := startSSHD(t)
	remoteDir := t.TempDir()
	r := newRig(t, rigOpts{targets: []uploadTargetConf{sshd.target("archive", remoteDir)}})
	seg, data := r.segment(1, 2<<20, time.Time{})
	final := filepath.Join(remoteDir, r.remote(seg))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := append([]byte(nil), data[:1<<20]...)
	foreign[1000] ^= 0xff
	if err := os.WriteFile(final+".part", foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	r.enqueue(seg)
	r.waitFor(30*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
	if ev := r.eventsOf(EventDone)[0]; ev.Resumed != 0 {
		t.Errorf("resumed %d bytes onto a foreign partial file", ev.Resumed)
	}
	got, _ := os.ReadFile(final)
	sameBytes(t, final, got, data)
}

// A changed or unknown host key is a clear error, never accepted, and the
// box does not hammer the server with retries.
func TestSFTPHostKeyChangedOrUnknown(t *testing.T) {
	sshd := startSSHD(t)
	other, _ := writeKey(t, filepath.Join(t.TempDir(), "other"))
	for _, tc := range []struct {
		name  string
		known func()
		want  error
	}{
		{"changed", func() { sshd.writeKnownHosts(other) }, ErrHostKeyChanged},
		{"unknown", func() {
			writeFile(t, sshd.knownHosts, "[192.0.2.1]:22 "+string(ssh.MarshalAuthorizedKey(sshd.hostKey)))
		}, ErrHostKeyUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.known()
			remoteDir := t.TempDir()
			r := newRig(t, rigOpts{targets: []uploadTargetConf{sshd.target("archive", remoteDir)}})
			seg, _ := r.segment(1, 1000, time.Now())
			before := sshd.connections()
			r.enqueue(seg)
			r.waitFor(15*time.Second, "upload_failed", func() bool { return len(r.eventsOf(EventFailed)) > 0 })
			time.Sleep(2 * time.Second)
			evs := r.eventsOf(EventFailed)
			if len(evs) != 1 || !strings.Contains(evs[0].Msg, tc.want.Error()) || !strings.Contains(evs[0].Msg, ssh.FingerprintSHA256(sshd.hostKey)) {
				t.Errorf("want one event saying %q with the offered key's fingerprint, got %+v", tc.want, evs)
			}
			if n := sshd.connections() - before; n != 1 {
				t.Errorf("%d connections to the server (want 1: no retry storm)", n)
			}
			entries, _ := os.ReadDir(remoteDir)
			if len(entries) != 0 {
				t.Errorf("something was written to a server whose key is not trusted: %v", entries)
			}
		})
	}
	sshd.writeKnownHosts(sshd.hostKey)
}

// A key the server does not take: one event, no retry storm.
func TestSFTPKeyRefused(t *testing.T) {
	sshd := startSSHD(t)
	tc := sshd.target("archive", t.TempDir())
	tc.KeyFile = filepath.Join(t.TempDir(), "stranger")
	writeKey(t, tc.KeyFile)
	r := newRig(t, rigOpts{targets: []uploadTargetConf{tc}})
	seg, _ := r.segment(1, 1000, time.Now())
	before := sshd.connections()
	r.enqueue(seg)
	r.waitFor(15*time.Second, "upload_failed", func() bool { return len(r.eventsOf(EventFailed)) > 0 })
	time.Sleep(2 * time.Second)
	evs := r.eventsOf(EventFailed)
	if len(evs) != 1 || !strings.Contains(evs[0].Msg, ErrCredentials.Error()) {
		t.Errorf("want one credentials event, got %+v", evs)
	}
	if n := sshd.connections() - before; n != 1 {
		t.Errorf("%d connections (want 1)", n)
	}
}

// Killed mid-file, the uploader resumes at the remote file's size after
// checking the bytes there, and the result is the segment.
func TestSFTPKilledMidUploadResumes(t *testing.T) {
	sshd := startSSHD(t)
	dir, rec, remoteDir := t.TempDir(), t.TempDir(), t.TempDir()
	tc := sshd.target("archive", remoteDir)
	helper := startHelper(t, helperConfig{Targets: []uploadTargetConf{tc}, Kbps: 16000, Dir: dir})
	seg := helper.segment(rec, 8<<20)
	name, _ := RemoteName("room1", seg)
	part := filepath.Join(remoteDir, name) + ".part"
	helper.enqueue(seg)
	waitUntil(t, 60*time.Second, "a partial file", func() bool {
		st, err := os.Stat(part)
		return err == nil && st.Size() >= 2<<20
	})
	helper.kill()
	st, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{targets: []uploadTargetConf{tc}, dir: dir, rec: rec})
	r.waitFor(60*time.Second, "upload_done", func() bool { return len(r.eventsOf(EventDone)) == 1 })
	if ev := r.eventsOf(EventDone)[0]; ev.Resumed == 0 || ev.Resumed > st.Size() {
		t.Errorf("resumed at %d; the partial file had %d bytes", ev.Resumed, st.Size())
	}
	got, _ := os.ReadFile(filepath.Join(remoteDir, name))
	sameBytes(t, name, got, helper.data)
}
