package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// MaxUploadTargets bounds the archives one box sends to.
const MaxUploadTargets = 4

// MaxUploadKbps bounds upload.bandwidth_kbps (10 Gbit/s).
const MaxUploadKbps = 10_000_000

// ErrUploadURL is an upload target that cannot be used.
var ErrUploadURL = errors.New("bad upload target")

var (
	uploadTargetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// s3Bucket is S3's bucket naming rule (lower case, digits, dots, dashes).
	s3Bucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	s3Region = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// uploadFieldError is a problem with one key of a target; Error reads as
// the plain message, and validation files it under the key's path.
type uploadFieldError struct {
	field string
	err   error
}

func (e *uploadFieldError) Error() string { return e.err.Error() }
func (e *uploadFieldError) Unwrap() error { return e.err }

func fieldErr(field, format string, args ...any) error {
	return &uploadFieldError{field: field, err: fmt.Errorf("%w: "+format, append([]any{ErrUploadURL}, args...)...)}
}

// UploadDest is an upload target's URL taken apart. It holds no secret:
// those stay in the files the target names.
type UploadDest struct {
	Scheme string // "sftp" or "s3"
	// SFTP
	User string
	Host string
	Port int
	// Dir is the remote folder (SFTP: absolute path; S3: key prefix
	// without leading or trailing slash, maybe empty).
	Dir string
	// S3
	Bucket string
	// EndpointHost is host[:port] of the S3 endpoint; Secure is https.
	EndpointHost string
	Secure       bool
}

// Parse checks the target and takes its URL apart. It reads no file.
func (t UploadTarget) Parse() (UploadDest, error) {
	var d UploadDest
	u, err := url.Parse(t.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // never echo the URL back
		}
		return d, fieldErr("url", "%v", err)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return d, fieldErr("url", "no password in the URL (sftp: key_file; s3: access_key_file, secret_key_file)")
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return d, fieldErr("url", "the URL takes no query or fragment")
	}
	d.Scheme = strings.ToLower(u.Scheme)
	switch d.Scheme {
	case "sftp":
		return t.parseSFTP(d, u)
	case "s3":
		return t.parseS3(d, u)
	case "":
		return d, fieldErr("url", "no scheme (want sftp:// or s3://)")
	default:
		return d, fieldErr("url", "unknown scheme %q (want sftp or s3)", u.Scheme)
	}
}

func (t UploadTarget) parseSFTP(d UploadDest, u *url.URL) (UploadDest, error) {
	if t.Endpoint != "" || t.Region != "" || t.AccessKeyFile != "" || t.SecretKeyFile != "" {
		return d, fieldErr("endpoint", "endpoint, region, access_key_file and secret_key_file are for s3")
	}
	d.Host = u.Hostname()
	if d.Host == "" {
		return d, fieldErr("url", "sftp needs a host")
	}
	if u.User == nil || u.User.Username() == "" {
		return d, fieldErr("url", "sftp needs a user (sftp://user@host/path)")
	}
	d.User = u.User.Username()
	d.Port = 22
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return d, fieldErr("url", "port %q", p)
		}
		d.Port = n
	}
	d.Dir = path.Clean("/" + u.Path)
	if t.KeyFile == "" {
		return d, fieldErr("key_file", "sftp needs key_file (the client's private key)")
	}
	if t.KnownHosts == "" {
		return d, fieldErr("known_hosts", "sftp needs known_hosts: host keys are always checked")
	}
	return d, nil
}

func (t UploadTarget) parseS3(d UploadDest, u *url.URL) (UploadDest, error) {
	if t.KeyFile != "" || t.KnownHosts != "" {
		return d, fieldErr("url", "key_file and known_hosts are for sftp")
	}
	if u.User != nil || u.Port() != "" {
		return d, fieldErr("url", "s3://bucket/prefix takes no user or port (the endpoint has the host)")
	}
	d.Bucket = u.Hostname()
	if !s3Bucket.MatchString(d.Bucket) || strings.Contains(d.Bucket, "..") {
		return d, fieldErr("url", "bucket %q is not an S3 bucket name", d.Bucket)
	}
	d.Dir = strings.Trim(path.Clean("/"+u.Path), "/")
	if t.Region != "" && !s3Region.MatchString(t.Region) {
		return d, fieldErr("region", "region %q", t.Region)
	}
	if t.AccessKeyFile == "" || t.SecretKeyFile == "" {
		return d, fieldErr("access_key_file", "s3 needs access_key_file and secret_key_file")
	}
	if t.Endpoint == "" {
		d.EndpointHost, d.Secure = "s3.amazonaws.com", true
		return d, nil
	}
	e, err := url.Parse(t.Endpoint)
	if err != nil || e.Host == "" {
		return d, fieldErr("endpoint", "endpoint: want https://host[:port]")
	}
	if e.User != nil || strings.Trim(e.Path, "/") != "" || e.RawQuery != "" {
		return d, fieldErr("endpoint", "endpoint: want https://host[:port], no user, path or query")
	}
	if p := e.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return d, fieldErr("endpoint", "endpoint port %q", p)
		}
	}
	switch strings.ToLower(e.Scheme) {
	case "https":
		d.Secure = true
	case "http":
		if !isLoopbackHost(e.Hostname()) {
			return d, fieldErr("endpoint", "endpoint: http:// only for loopback; use https://")
		}
	default:
		return d, fieldErr("endpoint", "endpoint scheme %q (want https)", e.Scheme)
	}
	d.EndpointHost = e.Host
	return d, nil
}

func (u Upload) validate() Errors {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if u.BandwidthKbps < 0 || u.BandwidthKbps > MaxUploadKbps {
		add("upload.bandwidth_kbps", "want 0 (no cap) to %d, got %d", MaxUploadKbps, u.BandwidthKbps)
	}
	if len(u.Targets) > MaxUploadTargets {
		add("upload.targets", "at most %d targets, got %d", MaxUploadTargets, len(u.Targets))
	}
	seen := map[string]bool{}
	for i, t := range u.Targets {
		p := fmt.Sprintf("upload.targets[%d]", i)
		if !uploadTargetName.MatchString(t.Name) {
			add(p+".name", "want [a-z0-9][a-z0-9_-]{0,31}, got %q", t.Name)
		} else if seen[t.Name] {
			add(p+".name", "duplicate target name %q", t.Name)
		}
		seen[t.Name] = true
		if _, err := t.Parse(); err != nil {
			field := "url"
			var fe *uploadFieldError
			if errors.As(err, &fe) {
				field = fe.field
			}
			add(p+"."+field, "%v", err)
		}
	}
	return es
}

// SFTPAddr is host:port of an SFTP target.
func (d UploadDest) SFTPAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }
