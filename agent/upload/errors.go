package upload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// What can go wrong, by what the box can do about it.
var (
	// ErrCredentials: the server refused the key or the access keys. Retried
	// rarely (blockedRetry), since retrying cannot fix it.
	ErrCredentials = errors.New("upload credentials refused")
	// ErrHostKeyUnknown: the SFTP server's host key is not in known_hosts.
	ErrHostKeyUnknown = errors.New("upload server host key not in known_hosts")
	// ErrHostKeyChanged: the SFTP server offered a key other than the one
	// known_hosts has for it.
	ErrHostKeyChanged = errors.New("upload server host key changed")
	// ErrSecretFile: a key, known_hosts or access key file cannot be used.
	ErrSecretFile = errors.New("upload secret file unusable")
	// ErrRemote: the target refused the upload for a reason of its own (no
	// such bucket, permission denied); retried rarely too.
	ErrRemote = errors.New("upload target refused")
	// ErrVerify: what the server holds differs from the segment.
	ErrVerify = errors.New("upload verification failed")
	// ErrSegment: a segment that cannot be queued or read.
	ErrSegment = errors.New("segment unusable")
	// ErrSegmentGone: the segment's file went away before it was uploaded.
	ErrSegmentGone = errors.New("segment deleted before upload")
)

// blocked reports whether err needs a person (a key, a host key, a
// bucket): such a target is retried only every blockedRetry, or at once
// on upload_now.
func blocked(err error) bool {
	return errors.Is(err, ErrCredentials) || errors.Is(err, ErrHostKeyUnknown) ||
		errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrSecretFile) || errors.Is(err, ErrRemote)
}

// maxSecretSize bounds a key or access key file; known_hosts may be longer.
const (
	maxSecretSize     = 64 << 10
	maxKnownHostsSize = 1 << 20
)

// readSecretFile reads a secret the way every capbox secret is read: a
// regular file (a symlink to one is fine), at most limit bytes, trailing
// newlines trimmed. Errors name the file, never its content.
func readSecretFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSecretFile, path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrSecretFile, path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrSecretFile, path, limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSecretFile, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrSecretFile, path, limit)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrSecretFile, path)
	}
	return b, nil
}

// scrub replaces every secret in msg by ***: the last line of defence for
// errors that quote what a server sent back.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return msg
}
