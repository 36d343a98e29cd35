package upload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/agent/config"
)

func testUploadConfig(kbps int) config.Upload {
	return config.Upload{BandwidthKbps: kbps, Targets: []config.UploadTarget{{Name: "s3", URL: "s3://talks",
		Endpoint: "https://127.0.0.1:9", AccessKeyFile: "/nonexistent/id", SecretKeyFile: "/nonexistent/secret"}}}
}

func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j := &journal{Version: 1, Next: 3, Entries: []*entry{
		{ID: 1, Path: "/data/recordings/a.ts", Size: 10, Remote: "room1/boot1/room1-boot1-00001.ts", Targets: map[string]*targetState{"s3": {UploadID: "u1"}}},
		{ID: 2, Path: "/data/recordings/b.ts", Size: 20, Start: time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC), Gap: true,
			Remote: "room1/2026-12-08/room1-20261208T010203Z-00002.ts", Targets: map[string]*targetState{"s3": {Done: true}}},
	}, Gaps: []Gap{{Output: "primary", From: time.Unix(100, 0).UTC(), To: time.Unix(200, 0).UTC()}}}
	if err := j.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 2 || got.Entries[0].Targets["s3"].UploadID != "u1" || !got.Entries[1].done() ||
		!got.Entries[1].Start.Equal(j.Entries[1].Start) || len(got.Gaps) != 1 {
		t.Errorf("round trip: %+v", got)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.new-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestJournalRefusesMalformed(t *testing.T) {
	for name, doc := range map[string]string{
		"torn":      `{"version":1,"next":2,"entries":[{"id":1,"path":"/a.ts"`,
		"version":   `{"version":2,"next":1,"entries":[]}`,
		"relative":  `{"version":1,"next":2,"entries":[{"id":1,"path":"a.ts","remote":"r/a.ts","targets":{}}]}`,
		"dup":       `{"version":1,"next":3,"entries":[{"id":1,"path":"/a.ts","remote":"r/a.ts"},{"id":2,"path":"/a.ts","remote":"r/b.ts"}]}`,
		"id order":  `{"version":1,"next":3,"entries":[{"id":2,"path":"/a.ts","remote":"r/a.ts"},{"id":1,"path":"/b.ts","remote":"r/b.ts"}]}`,
		"remote":    `{"version":1,"next":2,"entries":[{"id":1,"path":"/a.ts","remote":"../etc/passwd"}]}`,
		"null":      `{"version":1,"next":2,"entries":[null]}`,
		"null tgt":  `{"version":1,"next":2,"entries":[{"id":1,"path":"/a.ts","remote":"r/a.ts","targets":{"s3":null}}]}`,
		"unknown":   `{"version":1,"next":1,"entries":[],"extra":1}`,
		"negative":  `{"version":1,"next":2,"entries":[{"id":1,"path":"/a.ts","remote":"r/a.ts","size":-1}]}`,
		"gap order": `{"version":1,"next":1,"entries":[],"gaps":[{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}]}`,
		"trailing":  `{"version":1,"next":1,"entries":[]} {}`,
	} {
		if _, err := decodeJournal([]byte(doc)); !errors.Is(err, ErrJournal) {
			t.Errorf("%s: want ErrJournal, got %v", name, err)
		}
	}
}

// FuzzDecodeJournal: any bytes give a journal or ErrJournal, never a
// panic; an accepted journal saves and loads back the same.
func FuzzDecodeJournal(f *testing.F) {
	f.Add([]byte(`{"version":1,"next":2,"entries":[{"id":1,"path":"/a.ts","size":5,"remote":"r/a.ts","targets":{"s3":{"done":true}}}]}`))
	f.Add([]byte(`{"version":1,"next":1,"entries":[],"gaps":[{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := decodeJournal(data)
		if err != nil {
			if !errors.Is(err, ErrJournal) {
				t.Fatalf("error not ErrJournal: %v", err)
			}
			return
		}
		dir := t.TempDir()
		if err := j.save(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := loadJournal(dir); err != nil {
			t.Fatalf("saved journal does not load: %v", err)
		}
	})
}

func TestRemoteNames(t *testing.T) {
	for _, tc := range []struct {
		seg  Segment
		want string
	}{
		{Segment{Path: "/r/capbox-00001.ts", Start: time.Date(2026, 12, 8, 9, 0, 5, 0, time.UTC), Seq: 1}, "room1/2026-12-08/room1-20261208T090005Z-00001.ts"},
		{Segment{Path: "/r/capbox-00002.mp4", Boot: 17, Seq: 123456}, "room1/boot17/room1-boot17-123456.mp4"},
		{Segment{Path: "/r/capbox-3", Boot: 1, Seq: 3}, "room1/boot1/room1-boot1-00003.bin"},
	} {
		got, err := RemoteName("room1", tc.seg)
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %q, %v; want %q", tc.seg, got, err, tc.want)
		}
	}
	if _, err := RemoteName("room1", Segment{Path: "/r/x.t$s"}); !errors.Is(err, ErrSegment) {
		t.Errorf("odd extension: %v", err)
	}
}

// Secret files follow the project's rule: regular files, bounded, and
// errors that name the file but never show its content.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, "AKIAEXAMPLE\n")
	if b, err := readSecretFile(good, maxSecretSize); err != nil || string(b) != "AKIAEXAMPLE" {
		t.Errorf("good: %q %v", b, err)
	}
	big := filepath.Join(dir, "big")
	writeFile(t, big, strings.Repeat("s3cr3t", maxSecretSize))
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := readSecretFile(link, maxSecretSize); err != nil {
		t.Errorf("a symlink to a regular file: %v", err)
	}
	for _, p := range []string{dir, big, empty, "/dev/zero", filepath.Join(dir, "missing")} {
		_, err := readSecretFile(p, maxSecretSize)
		if !errors.Is(err, ErrSecretFile) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v", p, err)
		}
	}
}
