package broker

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Password file format: mosquitto_passwd's, so one file serves both this
// broker and mosquitto. Lines are "user:$7$iterations$salt$hash"
// (PBKDF2-HMAC-SHA512, mosquitto 2.0's default) or "user:$6$salt$hash"
// (SHA-512 of password then salt, mosquitto 1.6's); salt and hash base64.

// ErrPasswordFile is a password file that cannot be used.
var ErrPasswordFile = errors.New("password file unusable")

const (
	pbkdf2Iterations = 101 // mosquitto_passwd's default
	saltLen          = 12
	hashLen          = 64
)

type entry struct {
	alg  int // 6 or 7
	iter int
	salt []byte
	hash []byte
}

// HashPassword returns a mosquitto "$7$" hash for a password file line.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	h, err := pbkdf2.Key(sha512.New, password, salt, pbkdf2Iterations, hashLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$7$%d$%s$%s", pbkdf2Iterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(h)), nil
}

func parseHash(s string) (entry, error) {
	parts := strings.Split(s, "$")
	if len(parts) < 4 || parts[0] != "" {
		return entry{}, errors.New("not a mosquitto hash")
	}
	var e entry
	var saltB64, hashB64 string
	switch parts[1] {
	case "7":
		if len(parts) != 5 {
			return entry{}, errors.New("want $7$iterations$salt$hash")
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 || n > 10_000_000 {
			return entry{}, errors.New("bad iteration count")
		}
		e.alg, e.iter, saltB64, hashB64 = 7, n, parts[3], parts[4]
	case "6":
		if len(parts) != 4 {
			return entry{}, errors.New("want $6$salt$hash")
		}
		e.alg, saltB64, hashB64 = 6, parts[2], parts[3]
	default:
		return entry{}, fmt.Errorf("unknown hash type $%s$", parts[1])
	}
	var err error
	if e.salt, err = base64.StdEncoding.DecodeString(saltB64); err != nil {
		return entry{}, errors.New("bad salt")
	}
	if e.hash, err = base64.StdEncoding.DecodeString(hashB64); err != nil || len(e.hash) == 0 {
		return entry{}, errors.New("bad hash")
	}
	return e, nil
}

func (e entry) verify(password string) bool {
	var got []byte
	switch e.alg {
	case 7:
		h, err := pbkdf2.Key(sha512.New, password, e.salt, e.iter, len(e.hash))
		if err != nil {
			return false
		}
		got = h
	case 6:
		s := sha512.New()
		s.Write([]byte(password))
		s.Write(e.salt)
		got = s.Sum(nil)
	}
	return subtle.ConstantTimeCompare(got, e.hash) == 1
}

// ParsePasswordFile reads password file content. Errors name lines, never
// their content.
func ParsePasswordFile(data []byte) (map[string]entry, error) {
	out := map[string]entry{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			errs = append(errs, fmt.Errorf("%w: line %d: want user:hash", ErrPasswordFile, n))
			continue
		}
		e, err := parseHash(hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: line %d (%s): %w", ErrPasswordFile, n, user, err))
			continue
		}
		out[user] = e
	}
	return out, errors.Join(errs...)
}

// passwords is a password file re-read when it changes, so adding a box
// needs no restart.
type passwords struct {
	path    string
	mu      sync.Mutex
	mtime   time.Time
	size    int64
	entries map[string]entry
}

func (p *passwords) load() error {
	st, err := os.Stat(p.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries != nil && st.ModTime().Equal(p.mtime) && st.Size() == p.size {
		return nil
	}
	data, err := os.ReadFile(filepath.Clean(p.path))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	entries, perr := ParsePasswordFile(data)
	p.entries, p.mtime, p.size = entries, st.ModTime(), st.Size()
	return perr
}

func (p *passwords) verify(user, password string) bool {
	_ = p.load() // a broken reload keeps the good lines
	p.mu.Lock()
	e, ok := p.entries[user]
	p.mu.Unlock()
	return ok && e.verify(password)
}

// PasswordFile is a mosquitto-format password file for a service of its
// own (the dashboard's logins), re-read when it changes.
type PasswordFile struct{ p *passwords }

// OpenPasswordFile reads a password file; bad lines are ignored once good
// ones exist, and reported.
func OpenPasswordFile(path string) (*PasswordFile, error) {
	p := &passwords{path: path}
	err := p.load()
	if p.entries == nil {
		return nil, err
	}
	return &PasswordFile{p: p}, err
}

// Verify checks a user's password.
func (f *PasswordFile) Verify(user, password string) bool { return f.p.verify(user, password) }

// SetPassword adds or replaces user's line in the password file (created
// 0600 when missing), atomically.
func SetPassword(path, user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\n\r") {
		return fmt.Errorf("%w: bad user name", ErrPasswordFile)
	}
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrPasswordFile)
	}
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	var lines []string
	replaced := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if u, _, ok := strings.Cut(line, ":"); ok && u == user {
			line, replaced = user+":"+h, true
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	if !replaced {
		lines = append(lines, user+":"+h)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".passwd-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordFile, err)
	}
	return nil
}
