package fleet_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"capbox/agent/fleet/wire"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// startMosquitto runs the real broker on a free loopback port with the
// password file and PROTOCOL.md's ACL (wire.MosquittoACL); with pki, it
// serves mutual TLS with the certificate CN as the username.
func startMosquitto(t *testing.T, pki *testPKI) *env {
	t.Helper()
	if _, err := os.Stat(mosquittoBin); err != nil {
		t.Skipf("mosquitto not installed (%v): run make deps", err)
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, pwFile: writePasswords(t, dir, boxIDs...), tls: pki, secure: pki != nil}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(wire.MosquittoACL("capbox", "fleet")), 0o600); err != nil {
		t.Fatal(err)
	}
	e.addr = freePort(t)
	host, port, _ := net.SplitHostPort(e.addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, "per_listener_settings false\nallow_anonymous false\npersistence false\n")
	fmt.Fprintf(&conf, "password_file %s\nacl_file %s\n", e.pwFile, acl)
	fmt.Fprintf(&conf, "log_dest stderr\nlog_type all\nconnection_messages true\nmax_packet_size 65536\n")
	if os.Geteuid() == 0 {
		conf.WriteString("user root\n") // else it drops to "mosquitto", who cannot read the test's files
	}
	fmt.Fprintf(&conf, "listener %s %s\n", port, host)
	if pki != nil {
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
			pki.caFile, pki.serverCert, pki.serverKey)
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "mosquitto.log")
	var cmd *exec.Cmd
	var mu sync.Mutex
	start := func() {
		lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Command(mosquittoBin, "-c", confFile)
		c.Stdout, c.Stderr = lf, lf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		lf.Close()
		mu.Lock()
		cmd = c
		mu.Unlock()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if nc, err := net.DialTimeout("tcp", e.addr, 200*time.Millisecond); err == nil {
				nc.Close()
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(logFile)
				t.Fatalf("mosquitto did not start:\n%s", b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	e.stop = func() {
		mu.Lock()
		c := cmd
		cmd = nil
		mu.Unlock()
		if c != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	e.restart = func() { e.stop(); start() }
	e.mosqLog = logFile
	start()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("mosquitto log (tail):\n%s", tail(string(b), 4000))
			}
		}
	})
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// mosquittoConnects counts the connections mosquitto accepted for a
// client id.
func (e *env) mosquittoConnects(clientID string) int {
	f, err := os.Open(e.mosqLog)
	if err != nil {
		return -1
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return strings.Count(string(b), " as "+clientID+" (")
}
