package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Connection problems, named for what the operator must fix.
var (
	ErrNoBroker       = errors.New("fleet: no broker configured")
	ErrInsecureBroker = errors.New("fleet: plain mqtt:// to a non-loopback broker is refused (use mqtts:// or allow_insecure)")
	ErrBrokerURL      = errors.New("fleet: bad broker url")
	ErrCredentials    = errors.New("fleet: credentials unusable")
)

// BrokerTarget is a checked broker URL.
type BrokerTarget struct {
	// URL is paho's form: tcp://host:port or ssl://host:port.
	URL    string
	Host   string
	Secure bool
}

// ParseBrokerURL checks a broker URL (PROTOCOL.md): mqtts:// (ssl://,
// tls://) anywhere; plain mqtt:// (tcp://) only to loopback unless
// allowInsecure; no credentials in the URL. Default ports 8883 and 1883.
func ParseBrokerURL(raw string, allowInsecure bool) (BrokerTarget, error) {
	if raw == "" {
		return BrokerTarget{}, ErrNoBroker
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return BrokerTarget{}, fmt.Errorf("%w: want mqtt://host:port or mqtts://host:port", ErrBrokerURL)
	}
	if u.User != nil {
		return BrokerTarget{}, fmt.Errorf("%w: credentials belong in username/password_file, not the URL", ErrBrokerURL)
	}
	t := BrokerTarget{Host: u.Hostname()}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "mqtts", "ssl", "tls":
		t.Secure = true
		if port == "" {
			port = "8883"
		}
	case "mqtt", "tcp":
		if !isLoopback(t.Host) && !allowInsecure {
			return BrokerTarget{}, ErrInsecureBroker
		}
		if port == "" {
			port = "1883"
		}
	default:
		return BrokerTarget{}, fmt.Errorf("%w: scheme %q (want mqtt or mqtts)", ErrBrokerURL, u.Scheme)
	}
	scheme := "tcp"
	if t.Secure {
		scheme = "ssl"
	}
	t.URL = scheme + "://" + net.JoinHostPort(t.Host, port)
	return t, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientTLS is a fleet client's TLS config, built at each connect so that
// renewed files are picked up: the CA file (system roots when empty) and an
// optional client certificate, whose parsed leaf is returned too.
func ClientTLS(ca, cert, key, serverName string) (*tls.Config, *x509.Certificate, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(filepath.Clean(ca))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: ca: %w", ErrCredentials, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%w: ca %s holds no PEM certificate", ErrCredentials, ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, nil, fmt.Errorf("%w: cert and key go together", ErrCredentials)
	}
	var leaf *x509.Certificate
	if cert != "" {
		// Errors from LoadX509KeyPair name the problem, never key bytes.
		pair, err := tls.LoadX509KeyPair(filepath.Clean(cert), filepath.Clean(key))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: client certificate %s: %w", ErrCredentials, cert, err)
		}
		leaf, _ = x509.ParseCertificate(pair.Certificate[0])
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, leaf, nil
}
