package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	sigterm = syscall.SIGTERM
	sigint  = syscall.SIGINT
)

// message is one MQTT publish the fleet side saw.
type message struct {
	Topic   string
	Payload []byte
	At      time.Time
}

// fleetWatch is a real mosquitto on the guest's loopback and a subscriber on capbox/#
// (mosquitto_sub, one line per message, stamped on arrival), in the place of the fleet.
type fleetWatch struct {
	port int
	mu   sync.Mutex
	msgs []message
}

// startFleet starts mosquitto on 127.0.0.1:port (anonymous: a test broker that exists only
// inside the guest) and subscribes to everything under capbox/.
func startFleet(ctx context.Context, t *T, port int) *fleetWatch {
	conf := filepath.Join(os.TempDir(), fmt.Sprintf("mosquitto-%d.conf", port))
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	startLogged(ctx, t, fmt.Sprintf("mosquitto-%d", port), nil, "mosquitto", "-c", conf)
	f := &fleetWatch{port: port}
	var sub *exec.Cmd
	if _, err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		c := exec.CommandContext(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-v", "-t", "capbox/#")
		out, err := c.StdoutPipe()
		if err != nil {
			return false, err
		}
		if err := c.Start(); err != nil {
			return false, err
		}
		// mosquitto_sub exits at once when the broker is not up yet.
		time.Sleep(300 * time.Millisecond)
		if c.ProcessState == nil && !exitedNow(c) {
			sub = c
			go f.read(out)
			return true, nil
		}
		_ = c.Wait()
		return false, errors.New("mosquitto_sub cannot connect")
	}); err != nil {
		t.Fatalf("fleet subscriber on 127.0.0.1:%d: %v", port, err)
	}
	t.Cleanup(func() {
		_ = sub.Process.Kill()
		_ = sub.Wait()
		f.dump(filepath.Join(t.e.artifact, fmt.Sprintf("mqtt-%d.log", port)))
	})
	return f
}

// exitedNow reports whether a started child has already exited, without reaping it.
func exitedNow(c *exec.Cmd) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

func (f *fleetWatch) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		topic, payload, _ := strings.Cut(sc.Text(), " ")
		f.mu.Lock()
		f.msgs = append(f.msgs, message{Topic: topic, Payload: []byte(payload), At: time.Now()})
		f.mu.Unlock()
	}
}

func (f *fleetWatch) dump(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, m := range f.msgs {
		fmt.Fprintf(&b, "%s %s %s\n", m.At.Format("15:04:05.000"), m.Topic, m.Payload)
	}
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
}

// find returns the first message since 'since' whose topic ends with suffix and whose JSON
// payload satisfies match.
func (f *fleetWatch) find(since time.Time, suffix string, match func(map[string]any) bool) (message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.At.Before(since) || !strings.HasSuffix(m.Topic, suffix) {
			continue
		}
		var v map[string]any
		if json.Unmarshal(m.Payload, &v) != nil {
			continue
		}
		if match == nil || match(v) {
			return m, true
		}
	}
	return message{}, false
}

// waitMsg waits up to limit for a matching message and returns how long after 'since' it came.
func (f *fleetWatch) waitMsg(ctx context.Context, since time.Time, limit time.Duration, suffix string, match func(map[string]any) bool) (time.Duration, error) {
	var got message
	_, err := waitFor(ctx, limit, func() (bool, error) {
		m, ok := f.find(since, suffix, match)
		got = m
		return ok, fmt.Errorf("no matching %s message", suffix)
	})
	if err != nil {
		return 0, err
	}
	return got.At.Sub(since), nil
}

// modeIs matches a state payload by its mode (PROTOCOL.md: idle|starting|streaming|degraded|no_signal|error).
func modeIs(mode string) func(map[string]any) bool {
	return func(v map[string]any) bool { return v["mode"] == mode }
}
