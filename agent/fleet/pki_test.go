package fleet_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA made for one test, a server certificate for 127.0.0.1,
// and client certificates by CN; "other" is a CA the brokers do not trust.
type testPKI struct {
	dir        string
	ca, other  *x509.Certificate
	caKey      *ecdsa.PrivateKey
	otherKey   *ecdsa.PrivateKey
	caFile     string
	serverCert string
	serverKey  string
	mu         sync.Mutex
	issued     map[string][2]string
	serial     int64
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), issued: map[string][2]string{}, serial: 10}
	p.ca, p.caKey = selfSigned(t, "capbox test CA")
	p.other, p.otherKey = selfSigned(t, "untrusted CA")
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", p.ca.Raw)
	p.serverCert, p.serverKey = p.issue(t, "broker", true, false)
	return p
}

func selfSigned(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue signs a certificate for cn (server: for 127.0.0.1) by the test CA,
// or by the untrusted one.
func (p *testPKI) issue(t testing.TB, cn string, server, untrusted bool) (string, string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	parent, parentKey := p.ca, p.caKey
	if untrusted {
		parent, parentKey = p.other, p.otherKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	suffix := cn
	if untrusted {
		suffix += "-untrusted"
	}
	cf, kf := filepath.Join(p.dir, suffix+".crt"), filepath.Join(p.dir, suffix+".key")
	writePEM(t, cf, "CERTIFICATE", der)
	writePEM(t, kf, "EC PRIVATE KEY", kd)
	return cf, kf
}

// clientFiles is the (cached) trusted client certificate for cn.
func (p *testPKI) clientFiles(t testing.TB, cn string) (string, string) {
	p.mu.Lock()
	f, ok := p.issued[cn]
	p.mu.Unlock()
	if ok {
		return f[0], f[1]
	}
	c, k := p.issue(t, cn, false, false)
	p.mu.Lock()
	p.issued[cn] = [2]string{c, k}
	p.mu.Unlock()
	return c, k
}

func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// serverConfig requires and verifies client certificates (mutual TLS).
func (p *testPKI) serverConfig() *tls.Config {
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: p.pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) clientTLS(t testing.TB, cn string) *tls.Config {
	c, k := p.clientFiles(t, cn)
	pair, err := tls.LoadX509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: p.pool(), Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}
