// Package recdir is the recorder's folder on the box's storage: the room
// left on its file system, keep_free retention (the oldest finished
// segments go first), the folder's size, and flushing segments to storage
// so that a power cut loses little. It is plain Go on files: the engine
// (pipelines/gst) calls it, and its tests run on a temporary directory.
package recdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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

// sizeOfFS is the size of dir's file system (statfs f_blocks).
func sizeOfFS(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Blocks * uint64(st.Bsize), nil
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

// Segments lists dir's segments of one extension (ts, mp4, fwht) in the
// order they were written: by their sequence number, which does not depend
// on the clock (a box without a real-time clock boots at the same time
// again and again). Segments named by an older capbox (capbox-<UTC>-<n>)
// come first, by name.
func Segments(dir, ext string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*."+ext))
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool {
		si, oki := SeqOf(files[i])
		sj, okj := SeqOf(files[j])
		switch {
		case oki && okj && si != sj:
			return si < sj
		case oki != okj:
			return okj // unnumbered (older capbox) first
		}
		return files[i] < files[j]
	})
	return files, nil
}

// SeqOf reads a segment's sequence number from its name,
// capbox-<seq>-<UTC start>.<ext> (pipelines.SegmentName); false for
// names without one.
func SeqOf(path string) (uint64, bool) {
	rest, ok := strings.CutPrefix(filepath.Base(path), pipelines.RecordingPrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok || len(digits) != pipelines.SegmentSeqDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// seqFile keeps the last sequence number given out in a recording folder,
// so that numbers keep rising after every segment was deleted.
const seqFile = ".capbox-seq"

// NextSeq is the first sequence number a recorder starting in dir may use:
// above every segment there and above the last one given out.
func NextSeq(dir string) (uint64, error) {
	var last uint64
	b, err := os.ReadFile(filepath.Join(dir, seqFile))
	switch {
	case err == nil:
		last, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			// A torn file (a power cut) says nothing; the names still do.
			last = 0
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("segment sequence: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, pipelines.RecordingPrefix+"*"))
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		if n, ok := SeqOf(f); ok && n > last {
			last = n
		}
	}
	return last + 1, nil
}

// SaveSeq records that seq was given out in dir (written to a temporary
// file and renamed, so a power cut leaves the old or the new number).
func SaveSeq(dir string, seq uint64) error {
	tmp := filepath.Join(dir, seqFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o640); err != nil {
		return fmt.Errorf("segment sequence: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, seqFile)); err != nil {
		return fmt.Errorf("segment sequence: %w", err)
	}
	return nil
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
	// Capacity measures the size of Dir's file system; statfs when nil.
	Capacity func(dir string) (uint64, error)
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
// segment written after it is deleted), and at the first segment it cannot
// delete (a *DeleteError). deleted, when not nil, hears of each deletion
// as it happens. KeepFree above half the file system's size is taken as
// half: a keep_free the disk can never give would delete every segment.
func (r Retention) MakeRoom(writing string, deleted func(path string)) error {
	if r.KeepFree <= 0 {
		return nil
	}
	measure := r.Free
	if measure == nil {
		measure = FreeBytes
	}
	want := uint64(r.KeepFree)
	capacity := r.Capacity
	if capacity == nil {
		capacity = sizeOfFS
	}
	if size, err := capacity(r.Dir); err == nil && size > 0 && want > size/2 {
		want = size / 2
	}
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
