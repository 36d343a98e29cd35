// Package recdir is the recorder's folder on the box's storage: the room
// left on its file system, keep_free retention (the oldest finished
// segments go first), the folder's size, and flushing segments to storage
// so that a power cut loses little. It is plain Go on files: the engine
// (pipelines/gst) calls it, and its tests run on a temporary directory.
package recdir

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"capbox/pipelines"
)

// FreeBytes is what an unprivileged writer may still use on dir's file
// system (statfs f_bavail).
func FreeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Size is the bytes of every recording in dir, whatever its format.
func Size(dir string) (uint64, error) {
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*"))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += uint64(st.Size())
		}
	}
	return n, nil
}

// Segments lists dir's segments of one extension (ts, mp4, fwht), oldest
// first: their names sort by start time.
func Segments(dir, ext string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*."+ext))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// Retention is keep_free on one recording folder: while its file system
// has less room than KeepFree, the oldest segments are deleted.
type Retention struct {
	Dir string
	// Ext is the segments' extension; other files are never deleted.
	Ext string
	// KeepFree is the room to keep, in bytes; 0 or less keeps everything.
	KeepFree int64
	// Free measures the room left in Dir; FreeBytes when nil.
	Free func(dir string) (uint64, error)
}

// DeleteError is a segment that retention could not delete; it deletes
// nothing more in that round.
type DeleteError struct {
	Path string
	Err  error
}

func (e *DeleteError) Error() string { return fmt.Sprintf("cannot delete old segment: %v", e.Err) }

func (e *DeleteError) Unwrap() error { return e.Err }

// MakeRoom deletes the oldest segments, one at a time, until KeepFree is
// free. It stops at writing, the segment being written (neither it nor a
// segment named after it is deleted), and at the first segment it cannot
// delete (a *DeleteError). deleted, when not nil, hears of each deletion
// as it happens.
func (r Retention) MakeRoom(writing string, deleted func(path string)) error {
	if r.KeepFree <= 0 {
		return nil
	}
	measure := r.Free
	if measure == nil {
		measure = FreeBytes
	}
	want := uint64(r.KeepFree)
	free, err := measure(r.Dir)
	if err != nil || free >= want {
		return err
	}
	files, err := Segments(r.Dir, r.Ext)
	if err != nil {
		return err
	}
	for _, f := range files {
		if free >= want || f == writing {
			break
		}
		if err := os.Remove(f); err != nil {
			return &DeleteError{Path: f, Err: err}
		}
		if deleted != nil {
			deleted(f)
		}
		if free, err = measure(r.Dir); err != nil {
			return err
		}
	}
	return nil
}
