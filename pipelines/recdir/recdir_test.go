package recdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// segment writes a recording file of size bytes into dir.
func segment(t *testing.T, dir, name string, size int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// disk measures dir as if it were alone on a file system of capacity
// bytes: the room left is what its files leave. Counted here from the
// directory itself, not with Size.
func disk(t *testing.T, capacity uint64) func(string) (uint64, error) {
	return func(dir string) (uint64, error) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return 0, err
		}
		var used uint64
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return 0, err
			}
			used += uint64(info.Size())
		}
		if used > capacity {
			return 0, nil
		}
		return capacity - used, nil
	}
}

// left lists dir's file names, sorted.
func left(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// Segment names as the recorder writes them: start time (UTC) and a counter.
var names = []string{
	"capbox-20261208T090000Z-00000.ts",
	"capbox-20261208T090500Z-00001.ts",
	"capbox-20261208T091000Z-00002.ts",
	"capbox-20261208T091500Z-00003.ts",
	"capbox-20261208T092000Z-00004.ts",
}

// writeSegments writes names[i] with 100 bytes each, newest first, and
// gives the oldest name the newest modification time: the order is the
// names', not the clock's.
func writeSegments(t *testing.T, dir string) []string {
	t.Helper()
	paths := make([]string, len(names))
	base := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	for i := len(names) - 1; i >= 0; i-- {
		paths[i] = segment(t, dir, names[i], 100)
		mtime := base.Add(time.Duration(len(names)-i) * time.Minute)
		if err := os.Chtimes(paths[i], mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func TestFreeBytesOfATempDir(t *testing.T) {
	dir := t.TempDir()
	free, err := FreeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if total := st.Blocks * uint64(st.Bsize); free == 0 || free > total {
		t.Errorf("free %d bytes on a file system of %d", free, total)
	}
	if _, err := FreeBytes(filepath.Join(dir, "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("free bytes of a missing folder: %v, want ENOENT", err)
	}
}

// Size counts every recording, whatever its format, and nothing else.
func TestSizeCountsTheRecordingsOnly(t *testing.T) {
	dir := t.TempDir()
	if n, err := Size(dir); err != nil || n != 0 {
		t.Errorf("empty folder: %d bytes, %v", n, err)
	}
	segment(t, dir, "capbox-20261208T090000Z-00000.ts", 1000)
	segment(t, dir, "capbox-20261208T090000Z-00000.mp4", 234)
	segment(t, dir, "capbox-fwht.fwht", 10)
	segment(t, dir, "notes.txt", 5000)
	segment(t, dir, "copy-capbox-1.ts", 77)
	if n, err := Size(dir); err != nil || n != 1244 {
		t.Errorf("Size = %d, %v; want 1244", n, err)
	}
	// A folder the recorder has not made yet holds nothing.
	if n, err := Size(filepath.Join(dir, "not-yet")); err != nil || n != 0 {
		t.Errorf("missing folder: %d bytes, %v", n, err)
	}
}

func TestSegmentsAreOldestFirstByName(t *testing.T) {
	dir := t.TempDir()
	paths := writeSegments(t, dir)
	segment(t, dir, "capbox-20261208T080000Z-00000.mp4", 10)
	segment(t, dir, "notes.ts", 10)
	got, err := Segments(dir, "ts")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, paths) {
		t.Errorf("Segments = %v, want %v", got, paths)
	}
}

// Retention deletes the oldest segment first, reports each deletion, and
// stops as soon as enough is free.
func TestRetentionDeletesTheOldestUntilEnoughIsFree(t *testing.T) {
	dir := t.TempDir()
	paths := writeSegments(t, dir)
	// 500 bytes of segments on a 600-byte disk: 100 free, 300 wanted.
	r := Retention{Dir: dir, Ext: "ts", KeepFree: 300, Free: disk(t, 600)}
	var deleted []string
	if err := r.MakeRoom(paths[4], func(p string) { deleted = append(deleted, p) }); err != nil {
		t.Fatal(err)
	}
	if want := paths[:2]; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if got, want := left(t, dir), names[2:]; !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

// However short of room, the segment being written stays, and so does
// anything named after it.
func TestRetentionNeverDeletesTheSegmentBeingWritten(t *testing.T) {
	dir := t.TempDir()
	paths := writeSegments(t, dir)
	r := Retention{Dir: dir, Ext: "ts", KeepFree: 1 << 40, Free: disk(t, 500)}
	var deleted []string
	if err := r.MakeRoom(paths[4], func(p string) { deleted = append(deleted, p) }); err != nil {
		t.Fatal(err)
	}
	if want := paths[:4]; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if got := left(t, dir); !slices.Equal(got, names[4:]) {
		t.Errorf("left %v, want only the segment being written", got)
	}

	// Segments named after the one being written (the clock was set
	// back) are kept too.
	dir = t.TempDir()
	paths = writeSegments(t, dir)
	r.Dir = dir
	if err := r.MakeRoom(paths[1], nil); err != nil {
		t.Fatal(err)
	}
	if got := left(t, dir); !slices.Equal(got, names[1:]) {
		t.Errorf("left %v, want %v", got, names[1:])
	}
}

func TestRetentionKeepsEverythingWithRoomOrWithoutKeepFree(t *testing.T) {
	dir := t.TempDir()
	paths := writeSegments(t, dir)
	for _, r := range []Retention{
		{Dir: dir, Ext: "ts", KeepFree: 100, Free: disk(t, 600)},
		{Dir: dir, Ext: "ts", KeepFree: 0, Free: disk(t, 500)},
		// The real file system of the temporary folder has a byte to spare.
		{Dir: dir, Ext: "ts", KeepFree: 1},
	} {
		if err := r.MakeRoom(paths[4], func(p string) { t.Errorf("deleted %s", p) }); err != nil {
			t.Fatal(err)
		}
	}
	if got := left(t, dir); !slices.Equal(got, names) {
		t.Errorf("left %v, want every segment", got)
	}
}

// Only the recorder's segments of the format recorded are deleted.
func TestRetentionLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	paths := writeSegments(t, dir)
	others := []string{"capbox-20261208T080000Z-00000.mp4", "notes.ts", "notes.txt"}
	for _, n := range others {
		segment(t, dir, n, 100)
	}
	r := Retention{Dir: dir, Ext: "ts", KeepFree: 1 << 40, Free: disk(t, 800)}
	if err := r.MakeRoom("", nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not deleted: %v", p, err)
		}
	}
	if got := left(t, dir); !slices.Equal(got, others) {
		t.Errorf("left %v, want %v", got, others)
	}
}

// A segment that cannot be deleted (here a folder that is not empty:
// ENOTEMPTY) stops the round there, named in the error.
func TestRetentionStopsAtASegmentItCannotDelete(t *testing.T) {
	dir := t.TempDir()
	stuck := filepath.Join(dir, "capbox-20261208T085500Z-00000.ts")
	if err := os.Mkdir(stuck, 0o755); err != nil {
		t.Fatal(err)
	}
	segment(t, stuck, "inside", 1)
	paths := writeSegments(t, dir)
	r := Retention{Dir: dir, Ext: "ts", KeepFree: 1 << 40, Free: disk(t, 500)}
	err := r.MakeRoom(paths[4], func(p string) { t.Errorf("deleted %s", p) })
	var del *DeleteError
	if !errors.As(err, &del) || del.Path != stuck || !errors.Is(err, unix.ENOTEMPTY) {
		t.Fatalf("MakeRoom = %v, want a DeleteError for %s (ENOTEMPTY)", err, stuck)
	}
	if got := left(t, dir); len(got) != len(names)+1 {
		t.Errorf("left %v, want everything", got)
	}
}

// A folder that is gone is an error, not a round that found nothing.
func TestRetentionOfAMissingFolderIsAnError(t *testing.T) {
	r := Retention{Dir: filepath.Join(t.TempDir(), "gone"), Ext: "ts", KeepFree: 1}
	if err := r.MakeRoom("", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MakeRoom = %v, want ENOENT", err)
	}
}
