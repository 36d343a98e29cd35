package upload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// journalName is the journal's file in the data directory.
const journalName = "upload-journal.json"

// maxJournalSize bounds the journal read back at start: a segment's record
// is a few hundred bytes, so this holds tens of thousands.
const maxJournalSize = 16 << 20

// maxEntries bounds what the journal keeps; past it, the oldest uploaded
// segments are forgotten first (their files may still be on disk).
const maxEntries = 20000

// maxGaps is how many outages the journal remembers for segments still to
// come.
const maxGaps = 16

// ErrJournal is a journal that cannot be read or written.
var ErrJournal = errors.New("upload journal unusable")

// journal is the durable queue: every finished segment, what each target
// has of it, and the live outputs' recent outages. It is written whole to
// a new file, flushed and renamed over the old one, so a power cut leaves
// either the old or the new journal, never a torn one.
type journal struct {
	Version int      `json:"version"`
	Next    uint64   `json:"next"`
	Entries []*entry `json:"entries"`
	Gaps    []Gap    `json:"gaps,omitempty"`
}

// entry is one segment in the journal.
type entry struct {
	ID   uint64 `json:"id"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Start is the segment's UTC start; zero when the clock was never
	// synced (Boot and Seq name it then).
	Start    time.Time `json:"start,omitzero"`
	Boot     uint64    `json:"boot"`
	Seq      uint64    `json:"seq"`
	Enqueued time.Time `json:"enqueued"`
	// Remote is the name under each target's folder.
	Remote string `json:"remote"`
	// Gap: the segment covers a live output's outage; it goes first.
	Gap     bool                    `json:"gap,omitempty"`
	Targets map[string]*targetState `json:"targets"`
}

// targetState is what one target has of a segment.
type targetState struct {
	Done bool `json:"done,omitempty"`
	// UploadID is the S3 multipart upload to resume.
	UploadID  string    `json:"upload_id,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	DoneAt    time.Time `json:"done_at,omitzero"`
}

func (e *entry) done() bool {
	for _, ts := range e.Targets {
		if !ts.Done {
			return false
		}
	}
	return true
}

// since is when the segment's recording began as far as this box can
// tell: its start, else the end of the segment before it (prev).
func (e *entry) since(prev time.Time) time.Time {
	if !e.Start.IsZero() {
		return e.Start
	}
	return prev
}

func loadJournal(dir string) (*journal, error) {
	j := &journal{Version: 1, Next: 1}
	f, err := os.Open(filepath.Join(dir, journalName))
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJournal, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJournalSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJournal, err)
	}
	if len(data) > maxJournalSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrJournal, maxJournalSize)
	}
	return decodeJournal(data)
}

// decodeJournal parses and checks a journal; anything malformed is an
// error naming what, never a panic.
func decodeJournal(data []byte) (*journal, error) {
	j := &journal{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJournal, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrJournal)
	}
	if j.Version != 1 {
		return nil, fmt.Errorf("%w: version %d (want 1)", ErrJournal, j.Version)
	}
	if len(j.Entries) > maxEntries || len(j.Gaps) > maxGaps {
		return nil, fmt.Errorf("%w: %d entries, %d gaps (at most %d, %d)", ErrJournal, len(j.Entries), len(j.Gaps), maxEntries, maxGaps)
	}
	seen := map[string]bool{}
	for i, e := range j.Entries {
		switch {
		case e == nil:
			return nil, fmt.Errorf("%w: entry %d is null", ErrJournal, i)
		case e.ID == 0 || e.ID >= j.Next:
			return nil, fmt.Errorf("%w: entry %d: id %d outside 1..%d", ErrJournal, i, e.ID, j.Next-1)
		case i > 0 && e.ID <= j.Entries[i-1].ID:
			return nil, fmt.Errorf("%w: entry %d: ids out of order", ErrJournal, i)
		case !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path:
			return nil, fmt.Errorf("%w: entry %d: path %q is not a clean absolute path", ErrJournal, i, e.Path)
		case seen[e.Path]:
			return nil, fmt.Errorf("%w: entry %d: path %q twice", ErrJournal, i, e.Path)
		case e.Size < 0:
			return nil, fmt.Errorf("%w: entry %d: negative size", ErrJournal, i)
		case !validRemote(e.Remote):
			return nil, fmt.Errorf("%w: entry %d: remote name %q", ErrJournal, i, e.Remote)
		}
		seen[e.Path] = true
		if e.Targets == nil {
			e.Targets = map[string]*targetState{}
		}
		for name, ts := range e.Targets {
			if ts == nil {
				return nil, fmt.Errorf("%w: entry %d: target %q is null", ErrJournal, i, name)
			}
		}
	}
	for i, g := range j.Gaps {
		if g.To.Before(g.From) {
			return nil, fmt.Errorf("%w: gap %d ends before it starts", ErrJournal, i)
		}
	}
	return j, nil
}

// save writes the journal durably: a new file, flushed, renamed over the
// old one, and the folder flushed so the rename itself survives.
func (j *journal) save(dir string) error {
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	tmp, err := os.CreateTemp(dir, journalName+".new-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, journalName))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	return nil
}

func (j *journal) find(path string) (int, *entry) {
	for i, e := range j.Entries {
		if e.Path == path {
			return i, e
		}
	}
	return -1, nil
}

func (j *journal) remove(i int) {
	j.Entries = append(j.Entries[:i], j.Entries[i+1:]...)
}

// trim forgets the oldest uploaded segments past maxEntries.
func (j *journal) trim() {
	for i := 0; len(j.Entries) > maxEntries && i < len(j.Entries); {
		if j.Entries[i].done() {
			j.remove(i)
			continue
		}
		i++
	}
}
