package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"capbox/agent/config"
)

// sftpDialTimeout bounds the TCP connect and the SSH handshake.
const sftpDialTimeout = 15 * time.Second

// sftpInFlight bounds the writes in flight (of 32 KiB each): enough to
// fill a fast link, few enough that a cut in the rate shows on the link
// within a fraction of a second.
const sftpInFlight = 8

// sftpTarget uploads to NAME.part, resuming at the remote file's size once
// the bytes already there are read back and found equal to the segment's,
// then reads the whole file back to compare its SHA-256 with the
// segment's (an OpenSSH server computes no checksum for us), writes the
// checksum beside it as NAME.sha256 for the archive, and renames the part
// into place. The connection is kept between uploads.
type sftpTarget struct {
	name string
	conf config.UploadTarget
	dest config.UploadDest

	mu     sync.Mutex
	ssh    *ssh.Client
	client *sftp.Client
}

func (t *sftpTarget) Name() string { return t.name }

func (t *sftpTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked()
	return nil
}

func (t *sftpTarget) dropLocked() {
	if t.client != nil {
		_ = t.client.Close()
	}
	if t.ssh != nil {
		_ = t.ssh.Close()
	}
	t.client, t.ssh = nil, nil
}

func (t *sftpTarget) connect(ctx context.Context) (*sftp.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		if _, err := t.client.Getwd(); err == nil {
			return t.client, nil
		}
		t.dropLocked()
	}
	keyPEM, err := readSecretFile(t.conf.KeyFile, maxSecretSize)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not an unencrypted private key", ErrSecretFile, t.conf.KeyFile)
	}
	hostKeys, err := t.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	addr := t.dest.SFTPAddr()
	conn, err := shallowDialer(sftpDialTimeout).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	_ = conn.SetDeadline(time.Now().Add(sftpDialTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            t.dest.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         sftpDialTimeout,
	})
	if err != nil {
		conn.Close()
		return nil, t.classifyHandshake(err)
	}
	_ = conn.SetDeadline(time.Time{})
	sc := ssh.NewClient(cc, chans, reqs)
	client, err := sftp.NewClient(sc, sftp.UseConcurrentWrites(true), sftp.UseFstat(true),
		sftp.MaxConcurrentRequestsPerFile(sftpInFlight))
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("%w: %s: no SFTP subsystem: %w", ErrRemote, t.name, err)
	}
	t.ssh, t.client = sc, client
	return client, nil
}

// hostKeyCallback checks the server against known_hosts; an unknown or a
// changed key is an error naming the key's fingerprint, never accepted.
func (t *sftpTarget) hostKeyCallback() (ssh.HostKeyCallback, error) {
	if _, err := readSecretFile(t.conf.KnownHosts, maxKnownHostsSize); err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(t.conf.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSecretFile, t.conf.KnownHosts, err)
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%w: %s offers %s %s", ErrHostKeyUnknown, host, key.Type(), ssh.FingerprintSHA256(key))
			}
			return fmt.Errorf("%w: %s offers %s %s, known_hosts has %s", ErrHostKeyChanged, host, key.Type(),
				ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(ke.Want[0].Key))
		}
		return err
	}, nil
}

func (t *sftpTarget) classifyHandshake(err error) error {
	switch {
	case errors.Is(err, ErrHostKeyUnknown), errors.Is(err, ErrHostKeyChanged):
		// x/crypto/ssh flattens the callback's error into its own; keep ours.
		return fmt.Errorf("%s: %w", t.name, unwrapHostKey(err))
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%w: %s: the server refused the key in %s", ErrCredentials, t.name, t.conf.KeyFile)
	}
	return fmt.Errorf("%s: ssh: %w", t.name, err)
}

func unwrapHostKey(err error) error {
	for _, k := range []error{ErrHostKeyChanged, ErrHostKeyUnknown} {
		if errors.Is(err, k) {
			return err
		}
	}
	return err
}

func (t *sftpTarget) Upload(ctx context.Context, j *job) (res result, err error) {
	client, err := t.connect(ctx)
	if err != nil {
		return res, err
	}
	// A cancelled upload (shutdown, a gap to send first) closes the
	// connection: that is what stops a transfer in flight.
	stop := context.AfterFunc(ctx, func() { _ = t.Close() })
	defer stop()
	defer func() {
		if err != nil && !blocked(err) && !errors.Is(err, ErrSegmentGone) {
			_ = t.Close()
		}
	}()
	res, err = t.upload(ctx, client, j)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, err
}

func (t *sftpTarget) upload(ctx context.Context, client *sftp.Client, j *job) (result, error) {
	var res result
	local, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("%w: %s", ErrSegmentGone, j.path)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrSegment, err)
	}
	defer local.Close()
	st, err := local.Stat()
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrSegment, err)
	}
	size := st.Size()
	remote := path.Join(t.dest.Dir, j.remote)
	part := remote + ".part"
	if err := client.MkdirAll(path.Dir(remote)); err != nil {
		return res, t.classify(err, "mkdir "+path.Dir(remote))
	}

	// Crashed after the rename, before the journal heard of it: the file
	// may be there whole already.
	if rst, err := client.Stat(remote); err == nil {
		sum, err := fileSHA256(local, size)
		if err != nil {
			return res, err
		}
		if rst.Size() == size {
			if rsum, err := t.remoteSHA256(client, remote); err == nil && rsum == sum {
				res.Resumed, res.Remote = size, remote
				return res, t.writeSidecar(client, remote, sum)
			}
		}
		return res, fmt.Errorf("%w: %s: %s exists and differs from the segment", ErrRemote, t.name, remote)
	}

	f, err := client.OpenFile(part, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		return res, t.classify(err, "open "+part)
	}
	defer f.Close()
	pst, err := f.Stat()
	if err != nil {
		return res, t.classify(err, "stat "+part)
	}
	have := pst.Size()
	sum := sha256.New()
	if have > 0 && have <= size {
		// Resume only onto bytes that are the segment's.
		lsum := sha256.New()
		if _, err := io.Copy(lsum, io.NewSectionReader(local, 0, have)); err != nil {
			return res, fmt.Errorf("%w: %w", ErrSegment, err)
		}
		rsum, err := t.remoteSHA256Prefix(client, part, have)
		if err != nil {
			return res, t.classify(err, "read back "+part)
		}
		if bytes.Equal(rsum, lsum.Sum(nil)) {
			res.Resumed = have
			if _, err := io.Copy(sum, io.NewSectionReader(local, 0, have)); err != nil {
				return res, fmt.Errorf("%w: %w", ErrSegment, err)
			}
		} else {
			have = 0
		}
	} else {
		have = 0
	}
	if have == 0 && pst.Size() > 0 {
		if err := f.Truncate(0); err != nil {
			return res, t.classify(err, "truncate "+part)
		}
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return res, t.classify(err, "seek "+part)
	}
	body := &limitedReader{ctx: ctx, l: j.limit, left: size - have,
		r: io.TeeReader(&progressReader{r: io.NewSectionReader(local, have, size-have), j: j, done: have}, sum)}
	n, err := f.ReadFrom(body)
	res.Sent = n
	if err != nil {
		return res, t.classify(err, "write "+part)
	}
	if have+n != size {
		return res, fmt.Errorf("%w: %s: wrote %d of %d bytes", ErrVerify, part, have+n, size)
	}
	if err := f.Sync(); err != nil && !unsupported(err) {
		return res, t.classify(err, "fsync "+part)
	}
	if err := f.Close(); err != nil {
		return res, t.classify(err, "close "+part)
	}
	want := hex.EncodeToString(sum.Sum(nil))
	got, err := t.remoteSHA256(client, part)
	if err != nil {
		return res, t.classify(err, "read back "+part)
	}
	if got != want {
		_ = client.Remove(part)
		return res, fmt.Errorf("%w: %s: read back SHA-256 %s, the segment has %s", ErrVerify, part, got, want)
	}
	if err := t.writeSidecar(client, remote, want); err != nil {
		return res, err
	}
	if err := client.PosixRename(part, remote); err != nil {
		return res, t.classify(err, "rename "+part)
	}
	res.Remote = remote
	return res, nil
}

// writeSidecar leaves NAME.sha256 in sha256sum's format beside the file.
func (t *sftpTarget) writeSidecar(client *sftp.Client, remote, sum string) error {
	f, err := client.OpenFile(remote+".sha256", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return t.classify(err, "open "+remote+".sha256")
	}
	defer f.Close()
	if _, err := f.Write([]byte(sum + "  " + path.Base(remote) + "\n")); err != nil {
		return t.classify(err, "write "+remote+".sha256")
	}
	return nil
}

func (t *sftpTarget) remoteSHA256(client *sftp.Client, name string) (string, error) {
	f, err := client.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (t *sftpTarget) remoteSHA256Prefix(client *sftp.Client, name string, n int64) ([]byte, error) {
	f, err := client.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, n)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func fileSHA256(f *os.File, size int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return "", fmt.Errorf("%w: %w", ErrSegment, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// classify names an SFTP failure: permission and quota problems need a
// person, the rest is retried.
func (t *sftpTarget) classify(err error, what string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case sftp.ErrSSHFxPermissionDenied, sftp.ErrSSHFxNoSuchFile:
			return fmt.Errorf("%w: %s: %s: %w", ErrRemote, t.name, what, err)
		}
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %s: %s: %w", ErrRemote, t.name, what, err)
	}
	return fmt.Errorf("%s: %s: %w", t.name, what, err)
}

// progressReader reports the bytes read so far to the job.
type progressReader struct {
	r    io.Reader
	j    *job
	done int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.j.progress(p.done)
	return n, err
}

func unsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}
