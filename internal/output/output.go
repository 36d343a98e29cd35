// Package output parses the outputs a config names (srt://, rtmp://,
// rtmps://, rtsp://) into a Spec whose secrets print as ***. Both the
// config's validation (agent/config) and the planner (pipelines) use it,
// so it depends on neither: the fleet link validates configs without
// pulling in the pipeline or the hardware.
package output

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"capbox/internal/redact"
)

// Proto is an output protocol.
type Proto string

// Output protocols (DESIGN.md "Output URL schemes").
const (
	ProtoSRT   Proto = "srt"
	ProtoRTMP  Proto = "rtmp"
	ProtoRTMPS Proto = "rtmps"
	ProtoRTSP  Proto = "rtsp"
)

// Secret is a value that must never leave the box: it prints and marshals
// as "***". Use Reveal to hand it to an element property.
type Secret string

func (s Secret) String() string { return redact.Redacted }

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(redact.Redacted) }

// MarshalText keeps JSON, YAML and logs free of the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redact.Redacted), nil }

// Reveal returns the secret for an element property.
func (s Secret) Reveal() string { return string(s) }

// SecretRef is a secret given inline or as a file to read when the output
// starts (so a rotated key file is picked up on the next start).
type SecretRef struct {
	Value Secret `json:"-"`
	File  string `json:"file,omitempty"`
}

// Set reports whether any secret is configured.
func (r SecretRef) Set() bool { return r.Value != "" || r.File != "" }

// Resolve returns the secret, reading the file if one is named. Errors name
// the file, never its content.
func (r SecretRef) Resolve() (Secret, error) {
	if r.File == "" {
		return r.Value, nil
	}
	b, err := os.ReadFile(filepath.Clean(r.File))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrSecretFile, r.File)
	}
	return Secret(v), nil
}

// ErrSecretFile is a stream key or passphrase file that cannot be used.
var ErrSecretFile = errors.New("secret file unusable")

// ErrURL is an output URL that cannot be used.
var ErrURL = errors.New("bad output url")

// Spec is one destination, parsed from config. It carries no secret in
// clear outside Secret fields.
type Spec struct {
	Name  string `json:"name"`
	Proto Proto  `json:"proto"`
	// URL is the destination with every secret replaced by ***.
	URL  string `json:"url"`
	Host string `json:"host"`
	Port int    `json:"port"`

	// SRT
	Listener bool          `json:"listener,omitempty"`
	StreamID string        `json:"streamid,omitempty"`
	Latency  time.Duration `json:"latency,omitempty"`
	// Passphrase encrypts SRT (10..79 bytes, libsrt's bounds).
	Passphrase SecretRef `json:"passphrase,omitzero"`
	PBKeyLen   int       `json:"pbkeylen,omitempty"`

	// RTMP(S): application and stream key (the stream name is the secret).
	Application string    `json:"application,omitempty"`
	StreamKey   SecretRef `json:"stream_key,omitzero"`

	// RTSP: path and optional credentials.
	Path     string    `json:"path,omitempty"`
	User     string    `json:"user,omitempty"`
	Password SecretRef `json:"password,omitzero"`

	Enabled bool `json:"enabled"`
}

// Default ports when a URL names none.
const (
	defaultRTMPPort  = 1935
	defaultRTMPSPort = 443
	defaultRTSPPort  = 554
)

// Parse parses one configured output. key and keyFile are the output's
// stream key (RTMP) given outside the URL. No file is read here.
func Parse(name, rawURL, key, keyFile string) (Spec, error) {
	o := Spec{Name: name, Enabled: true}
	u, err := url.Parse(rawURL)
	if err != nil {
		return o, fmt.Errorf("%w: %s", ErrURL, redactParseError(err))
	}
	if key != "" && keyFile != "" {
		return o, fmt.Errorf("%w: key and key_file both set", ErrURL)
	}
	o.Proto = Proto(strings.ToLower(u.Scheme))
	o.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return o, fmt.Errorf("%w: port %q", ErrURL, p)
		}
		o.Port = n
	}
	switch o.Proto {
	case ProtoSRT:
		err = parseSRT(&o, u)
	case ProtoRTMP, ProtoRTMPS:
		err = parseRTMP(&o, u, key, keyFile)
	case ProtoRTSP:
		err = parseRTSP(&o, u)
	case "file":
		return o, fmt.Errorf("%w: file:// is not an output, use record", ErrURL)
	case "":
		return o, fmt.Errorf("%w: no scheme (want srt://, rtmp://, rtmps:// or rtsp://)", ErrURL)
	default:
		return o, fmt.Errorf("%w: unknown scheme %q (want srt, rtmp, rtmps or rtsp)", ErrURL, u.Scheme)
	}
	if err != nil {
		return o, err
	}
	if (key != "" || keyFile != "") && o.Proto != ProtoRTMP && o.Proto != ProtoRTMPS {
		return o, fmt.Errorf("%w: key/key_file apply to rtmp and rtmps only", ErrURL)
	}
	o.URL = redact.URL(rawURL)
	return o, nil
}

func parseSRT(o *Spec, u *url.URL) error {
	q := u.Query()
	switch mode := q.Get("mode"); mode {
	case "", "caller":
	case "listener":
		o.Listener = true
	default:
		return fmt.Errorf("%w: srt mode %q (want caller or listener)", ErrURL, mode)
	}
	if o.Port == 0 {
		return fmt.Errorf("%w: srt needs a port", ErrURL)
	}
	if !o.Listener && o.Host == "" {
		return fmt.Errorf("%w: srt caller needs a host", ErrURL)
	}
	o.StreamID = q.Get("streamid")
	if len(o.StreamID) > 512 {
		return fmt.Errorf("%w: streamid longer than 512 bytes", ErrURL)
	}
	if l := q.Get("latency"); l != "" {
		ms, err := strconv.Atoi(l)
		if err != nil || ms < 20 || ms > 60000 {
			return fmt.Errorf("%w: srt latency %q (milliseconds, 20..60000)", ErrURL, l)
		}
		o.Latency = time.Duration(ms) * time.Millisecond
	}
	if p := q.Get("passphrase"); p != "" {
		if len(p) < 10 || len(p) > 79 {
			return fmt.Errorf("%w: srt passphrase must be 10..79 bytes", ErrURL)
		}
		o.Passphrase.Value = Secret(p)
	}
	if f := q.Get("passphrase_file"); f != "" {
		if o.Passphrase.Value != "" {
			return fmt.Errorf("%w: passphrase and passphrase_file both set", ErrURL)
		}
		o.Passphrase.File = f
	}
	if k := q.Get("pbkeylen"); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil || (n != 16 && n != 24 && n != 32) {
			return fmt.Errorf("%w: pbkeylen %q (16, 24 or 32)", ErrURL, k)
		}
		o.PBKeyLen = n
	}
	for k := range q {
		switch k {
		case "mode", "streamid", "latency", "passphrase", "passphrase_file", "pbkeylen":
		default:
			return fmt.Errorf("%w: unknown srt parameter %q", ErrURL, k)
		}
	}
	return nil
}

func parseRTMP(o *Spec, u *url.URL, key, keyFile string) error {
	if o.Host == "" {
		return fmt.Errorf("%w: %s needs a host", ErrURL, o.Proto)
	}
	if o.Port == 0 {
		o.Port = defaultRTMPPort
		if o.Proto == ProtoRTMPS {
			o.Port = defaultRTMPSPort
		}
	}
	if u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%w: %s URL takes no query or credentials", ErrURL, o.Proto)
	}
	path := strings.Trim(u.Path, "/")
	if path == "" {
		return fmt.Errorf("%w: %s URL needs an application path", ErrURL, o.Proto)
	}
	if key != "" || keyFile != "" {
		o.Application = path
		o.StreamKey = SecretRef{Value: Secret(key), File: keyFile}
		return nil
	}
	app, stream, ok := strings.Cut(path, "/")
	if !ok || stream == "" {
		return fmt.Errorf("%w: %s URL has no stream key: add it to the path or set key_file", ErrURL, o.Proto)
	}
	o.Application, o.StreamKey.Value = app, Secret(stream)
	return nil
}

func parseRTSP(o *Spec, u *url.URL) error {
	if o.Host == "" {
		return fmt.Errorf("%w: rtsp needs a host", ErrURL)
	}
	if o.Port == 0 {
		o.Port = defaultRTSPPort
	}
	o.Path = strings.TrimPrefix(u.Path, "/")
	if u.User != nil {
		o.User = u.User.Username()
		if p, ok := u.User.Password(); ok {
			o.Password.Value = Secret(p)
		}
	}
	if u.RawQuery != "" {
		return fmt.Errorf("%w: rtsp URL takes no query", ErrURL)
	}
	return nil
}

// redactParseError keeps a URL parse error from echoing the URL (which may
// hold a secret).
func redactParseError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "unparsable"
}

// ListenAddr is where an SRT listener binds: the URL host, or all addresses.
func (o Spec) ListenAddr() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}
