package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Files in the link's state directory.
const (
	sessFile    = "sess.json"
	appliedFile = "config.json"
	// applyingFile names the version being applied, written before the
	// box applies it and removed after: found at start, it names a version
	// that crashed or hung the agent.
	applyingFile = "applying.json"
	// refusedFile keeps such a version, refused from then on.
	refusedFile = "refused.json"
)

// DefaultStateDir is where the link keeps its session number and the
// applied config document: systemd's StateDirectory= when set, else
// /var/lib/capbox.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return filepath.Join(filepath.SplitList(d)[0], "fleet")
	}
	return "/var/lib/capbox/fleet"
}

// WriteFileAtomic replaces path with data so that a power cut leaves the
// old or the new content, never a mix: write a temp file in the same
// directory, fsync it, rename it over path, fsync the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := f.Name()
	cleanup := func() { _ = os.Remove(tmp) }
	if err := f.Chmod(perm); err != nil {
		f.Close()
		cleanup()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		cleanup()
		return fmt.Errorf("state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		cleanup()
		return fmt.Errorf("state file fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		cleanup()
		return fmt.Errorf("state file: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or a removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state dir fsync: %w", err)
	}
	return nil
}

type sessDoc struct {
	Sess int64 `json:"sess"`
}

// loadSess reads the last session number (0 when there is none).
func loadSess(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, sessFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session file: %w", err)
	}
	var d sessDoc
	if err := json.Unmarshal(b, &d); err != nil || d.Sess < 0 {
		return 0, fmt.Errorf("session file %s: corrupt", filepath.Join(dir, sessFile))
	}
	return d.Sess, nil
}

func saveSess(dir string, sess int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	b, _ := json.Marshal(sessDoc{Sess: sess})
	return WriteFileAtomic(filepath.Join(dir, sessFile), b, 0o600)
}

// Applied is the last config document applied from config/desired, as
// persisted in the state directory. It holds secrets: the file is 0600.
type Applied struct {
	Version int64           `json:"version"`
	SHA256  string          `json:"effective_sha256,omitempty"`
	Config  json.RawMessage `json:"config"`
}

// LoadApplied reads the applied config document from the state directory;
// ok is false when none was ever applied. The agent starts from it (it is
// newer than the file) so a reboot keeps what the fleet set.
func LoadApplied(stateDir string) (a Applied, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(stateDir, appliedFile))
	if errors.Is(err, os.ErrNotExist) {
		return Applied{}, false, nil
	}
	if err != nil {
		return Applied{}, false, fmt.Errorf("applied config: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Version < 1 || len(a.Config) == 0 {
		return Applied{}, false, fmt.Errorf("applied config %s: corrupt", filepath.Join(stateDir, appliedFile))
	}
	return a, true, nil
}

func saveApplied(dir string, a Applied) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("applied config: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, appliedFile), b, 0o600)
}

// Refused is a desired config version the box will not apply again by
// itself, and why.
type Refused struct {
	Version int64  `json:"version"`
	Reason  string `json:"reason"`
}

// markApplying records durably that version is about to be applied.
func markApplying(dir string, version int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	b, _ := json.Marshal(Refused{Version: version})
	return WriteFileAtomic(filepath.Join(dir, applyingFile), b, 0o600)
}

// clearApplying records that the apply ended, either way.
func clearApplying(dir string) error {
	err := os.Remove(filepath.Join(dir, applyingFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("applying marker: %w", err)
	}
	return syncDir(dir)
}

// takeApplying reads and removes the applying marker: ok when a previous
// run died while applying version.
func takeApplying(dir string) (version int64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, applyingFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("applying marker: %w", err)
	}
	var m Refused
	if err := json.Unmarshal(b, &m); err != nil || m.Version < 1 {
		// A marker torn by a power cut still says an apply was under way,
		// but not which: nothing can be refused by version.
		return 0, false, errors.Join(fmt.Errorf("applying marker %s: corrupt", filepath.Join(dir, applyingFile)), clearApplying(dir))
	}
	return m.Version, true, clearApplying(dir)
}

func loadRefused(dir string) (Refused, error) {
	b, err := os.ReadFile(filepath.Join(dir, refusedFile))
	if errors.Is(err, os.ErrNotExist) {
		return Refused{}, nil
	}
	var r Refused
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return Refused{}, fmt.Errorf("refused config %s: %w", filepath.Join(dir, refusedFile), err)
	}
	return r, nil
}

func saveRefused(dir string, r Refused) error {
	b, _ := json.Marshal(r)
	return WriteFileAtomic(filepath.Join(dir, refusedFile), b, 0o600)
}
