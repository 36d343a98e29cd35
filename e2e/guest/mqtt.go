package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	JSON    map[string]any // the payload, parsed once on arrival (nil if it is not JSON)
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
	broker := startLogged(ctx, t, fmt.Sprintf("mosquitto-%d", port), nil, "mosquitto", "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		if broker.exited() {
			t.Fatalf("mosquitto exited: %v: %s", broker.err, lastLines([]byte(broker.buf.String()), 3))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	}); err != nil {
		t.Fatalf("mosquitto on %s: %v", addr, err)
	}
	f := &fleetWatch{port: port}
	// The subscriber is proven by a message of our own coming back through it: under TCG a
	// mosquitto_sub that failed to connect can still look alive for a while.
	sub := exec.CommandContext(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-v", "-t", "capbox/#")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var subErr lockedBuffer
	sub.Stderr = &subErr
	if err := sub.Start(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	go f.read(out)
	probe := fmt.Sprintf(`{"probe":%d}`, time.Now().UnixNano())
	if _, err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		if exitedNow(sub) {
			t.Fatalf("mosquitto_sub exited: %s", subErr.String())
		}
		if _, ok := f.findRaw("capbox/e2e-probe", probe); ok {
			return true, nil
		}
		pub := exec.CommandContext(ctx, "mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", "capbox/e2e-probe", "-m", probe)
		if out, err := pub.CombinedOutput(); err != nil {
			return false, fmt.Errorf("mosquitto_pub: %v: %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
		return false, errors.New("the probe message did not come back")
	}); err != nil {
		t.Fatalf("fleet subscriber on %s: %v", addr, err)
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
		at := time.Now()
		topic, payload, _ := strings.Cut(sc.Text(), " ")
		var v map[string]any
		_ = json.Unmarshal([]byte(payload), &v)
		f.mu.Lock()
		f.msgs = append(f.msgs, message{Topic: topic, Payload: []byte(payload), At: at, JSON: v})
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

// findRaw returns a message by its exact topic and payload.
func (f *fleetWatch) findRaw(topic, payload string) (message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.Topic == topic && string(m.Payload) == payload {
			return m, true
		}
	}
	return message{}, false
}

// find returns the first message since 'since' whose topic ends with suffix and whose JSON
// payload satisfies match.
func (f *fleetWatch) find(since time.Time, suffix string, match func(map[string]any) bool) (message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.At.Before(since) || !strings.HasSuffix(m.Topic, suffix) || m.Topic == "capbox/e2e-probe" {
			continue
		}
		if m.JSON == nil {
			continue
		}
		if match == nil || match(m.JSON) {
			return m, true
		}
	}
	return message{}, false
}

// waitMsg waits up to limit for a matching message and returns how long after 'since' it came.
func (f *fleetWatch) waitMsg(ctx context.Context, since time.Time, limit time.Duration, suffix string, match func(map[string]any) bool) (time.Duration, error) {
	d, _, err := f.waitMsgTS(ctx, since, limit, suffix, match)
	return d, err
}

// waitMsgTS is waitMsg that also says when the agent stamped the message (its "ts", Unix
// milliseconds on the same clock): arrival minus that is the broker's and the subscriber's
// share under emulation.
func (f *fleetWatch) waitMsgTS(ctx context.Context, since time.Time, limit time.Duration, suffix string, match func(map[string]any) bool) (arrived, stamped time.Duration, err error) {
	var got message
	_, err = waitFor(ctx, limit, func() (bool, error) {
		m, ok := f.find(since, suffix, match)
		got = m
		return ok, fmt.Errorf("no matching %s message", suffix)
	})
	if err != nil {
		// A late one says by how much (waited for up to 10 s more).
		if _, lerr := waitFor(ctx, 10*time.Second, func() (bool, error) {
			m, ok := f.find(since, suffix, match)
			got = m
			return ok, nil
		}); lerr == nil {
			err = fmt.Errorf("%w (it came after %s)", err, got.At.Sub(since).Round(time.Millisecond))
		}
		return 0, 0, err
	}
	var v struct {
		TS int64 `json:"ts"`
	}
	if json.Unmarshal(got.Payload, &v) == nil && v.TS > 0 {
		stamped = time.UnixMilli(v.TS).Sub(since)
	}
	return got.At.Sub(since), stamped, nil
}

// modeIs matches a state payload by its mode (PROTOCOL.md: idle|starting|streaming|degraded|no_signal|error).
func modeIs(mode string) func(map[string]any) bool {
	return func(v map[string]any) bool { return v["mode"] == mode }
}
