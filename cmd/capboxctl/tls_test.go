//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"capbox/agent/fleet/broker"
)

// writeCert signs a certificate for cn with the CA (or self-signs a CA
// when ca is nil) and writes cert and key PEM files.
func writeCert(t *testing.T, dir, cn string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	switch {
	case ca == nil:
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		ca, caKey = tmpl, key
	case server:
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kd, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	_ = os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cert, key, cf, kf
}

// TestBrokerMutualTLS: `capboxctl broker` with --tls-cert/--client-ca,
// a box and capboxctl itself connecting with client certificates.
func TestBrokerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caFile, _ := writeCert(t, dir, "ca", nil, nil, false)
	_, _, srvCrt, srvKey := writeCert(t, dir, "broker", ca, caKey, true)
	_, _, fleetCrt, fleetKey := writeCert(t, dir, "fleet", ca, caKey, false)
	_, _, boxCrt, boxKey := writeCert(t, dir, "room-a", ca, caKey, false)
	db := filepath.Join(dir, "passwd")
	if err := broker.SetPassword(db, "nobody", "unused-password"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"broker", "--listen", "127.0.0.1:0", "--password-file", db,
			"--tls-cert", srvCrt, "--tls-key", srvKey, "--client-ca", caFile}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("broker printed nothing")
	}
	m := brokerLine.FindStringSubmatch(sc.Text())
	if m == nil || m[1][:8] != "mqtts://" {
		t.Fatalf("broker said %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	defer func() { cancel(); <-done }()

	l := &lab{t: t, dir: dir, url: m[1]}
	sb := newSimBox(1)
	// The box: certificate only, no password.
	stop := l.boxTLS("room-a", sb, caFile, boxCrt, boxKey)
	defer stop()
	var rows []row
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out, errw syncBuf
		code := run(context.Background(), []string{"--broker", l.url, "--ca", caFile, "--cert", fleetCrt, "--key", fleetKey, "ls", "--json"}, &out, &errw)
		if code == 0 && json.Unmarshal([]byte(out.String()), &rows) == nil && len(rows) == 1 && rows[0].Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ls over mutual TLS: %d %s %s", code, out.String(), errw.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Without a client certificate the broker refuses the TLS handshake.
	var out, errw syncBuf
	if code := run(context.Background(), []string{"--broker", l.url, "--ca", caFile, "ls"}, &out, &errw); code != exitTimeout {
		t.Errorf("ls without a client certificate exited %d: %s", code, errw.String())
	}
}
