package simbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"capbox/agent/fleet/broker"
	"capbox/agent/fleet/wire"
)

// MosquittoBin is Debian's broker (scripts/debian-packages.d/fleet.txt).
const MosquittoBin = "/usr/sbin/mosquitto"

// ErrNoMosquitto: the broker is not installed (make deps installs it).
var ErrNoMosquitto = errors.New("mosquitto is not installed (make deps)")

// Mosquitto is a mosquitto serving on loopback with a password per user
// and the fleet ACL that `capboxctl acl` prints, like a venue's.
type Mosquitto struct {
	// URL is mqtt://127.0.0.1:PORT.
	URL string
	cmd *exec.Cmd
}

// StartMosquitto writes the password file (users: name -> password; the
// fleet accounts among them named in fleet) and the ACL into dir, starts
// mosquitto on an ephemeral loopback port and waits until it listens.
func StartMosquitto(dir string, users map[string]string, fleet ...string) (*Mosquitto, error) {
	if _, err := os.Stat(MosquittoBin); err != nil {
		return nil, ErrNoMosquitto
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var pw strings.Builder
	for _, u := range names {
		h, err := broker.HashPassword(users[u])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&pw, "%s:%s\n", u, h)
	}
	db, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if err := os.WriteFile(db, []byte(pw.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(acl, []byte(wire.MosquittoACL(wire.DefaultPrefix, fleet...)), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	// max_queued_messages: a dashboard subscribes to every box's retained
	// documents at once (docs/FLEET.md).
	conf := fmt.Sprintf("per_listener_settings false\nallow_anonymous false\npersistence false\npassword_file %s\nacl_file %s\n"+
		"max_queued_messages 20000\nlog_dest stderr\nlog_type error\nlistener %s 127.0.0.1\n", db, acl, port)
	if os.Geteuid() == 0 {
		conf += "user root\n" // mosquitto otherwise drops to its own user, which cannot read these files
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	m := &Mosquitto{URL: "mqtt://" + addr, cmd: exec.Command(MosquittoBin, "-c", confFile)}
	m.cmd.Stderr = os.Stderr
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return m, nil
		}
		if i > 200 {
			m.Stop()
			return nil, errors.New("mosquitto did not start listening")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// PID is the broker's process id.
func (m *Mosquitto) PID() int { return m.cmd.Process.Pid }

// Stop ends the broker and waits for it.
func (m *Mosquitto) Stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
}
