package board

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrSnapshotDirNotEmpty refuses to mix a snapshot into existing files.
var ErrSnapshotDirNotEmpty = errors.New("snapshot folder is not empty")

// snapshotFile marks a folder made by Snapshot and says where from.
const snapshotFile = "/capbox-snapshot.json"

// SnapshotInfo is capbox-snapshot.json.
type SnapshotInfo struct {
	Format  int       `json:"format"` // 1
	Kernel  string    `json:"kernel"`
	Machine string    `json:"machine"`
	Taken   time.Time `json:"taken"`
	Files   int       `json:"files"`
	Probes  int       `json:"probes"`
}

// Snapshot runs detection and the health collectors on opts.Root (the
// live system by default) while recording every file, directory listing
// and symlink they read, then writes exactly those into dir, with the V4L2
// probe answers (capbox-probes.json) and capbox-snapshot.json. Detect with
// Root: dir reads it back to the same result (probed becomes recorded).
// The machine-id and board serial are not read, so not copied.
func Snapshot(ctx context.Context, dir string, opts Options) (Detection, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return Detection{}, fmt.Errorf("snapshot %s: %w", dir, ErrSnapshotDirNotEmpty)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Detection{}, fmt.Errorf("snapshot: %w", err)
	}
	rec := newRecorder()
	var recs map[string]ProbeRecord
	opts.rec, opts.probes = rec, &recs
	d, derr := Detect(ctx, opts)
	src := newFsys(opts.Root)
	src.rec = rec
	_, _ = readHealth(src, nil) // what it could not read is simply not in the snapshot

	var errs []error
	if derr != nil {
		errs = append(errs, derr)
	}
	src.rec = nil
	if err := rec.writeTo(src, dir); err != nil {
		errs = append(errs, fmt.Errorf("snapshot: %w", err))
	}
	if len(recs) > 0 {
		if err := writeProbeFile(dir, recs); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: %w", err))
		}
	}
	info := SnapshotInfo{Format: 1, Taken: time.Now().UTC().Truncate(time.Second), Files: len(rec.files), Probes: len(recs)}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		info.Kernel = strings.TrimRight(string(u.Release[:]), "\x00")
		info.Machine = strings.TrimRight(string(u.Machine[:]), "\x00")
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(newFsys(dir).host(snapshotFile), append(b, '\n'), 0o644); err != nil {
		errs = append(errs, fmt.Errorf("snapshot: %w", err))
	}
	return d, errors.Join(errs...)
}
