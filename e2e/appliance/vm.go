package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// machine is one power-on of the appliance: QEMU (q35, OVMF, TCG, one
// vCPU) with the disk, the test disk, an i6300ESB watchdog, user-mode
// networking restricted to the loopback forwards, the probe's virtio-serial
// port and QMP. The guest's reboot or the watchdog's reset ends QEMU
// (-no-reboot): the harness powers the box on again.
type machine struct {
	cmd     *exec.Cmd
	dir     string
	console *consoleLog
	ctl     net.Conn
	ctlRd   *bufio.Reader
	nextID  int
	qmp     net.Conn
	events  chan string
	exited  chan struct{}
	exitErr error
	hello   answer
	started time.Time
}

// answer is the probe's reply (e2e/appliance/probe).
type answer struct {
	ID     int    `json:"id"`
	Exit   int    `json:"exit"`
	Out    string `json:"out"`
	Hello  bool   `json:"hello,omitempty"`
	BootID string `json:"boot_id,omitempty"`
	Slot   string `json:"slot,omitempty"`
	Uptime string `json:"uptime,omitempty"`
}

// consoleLog keeps the serial console in a file and in memory.
type consoleLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	f   *os.File
}

func (c *consoleLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	return c.f.Write(p)
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Tail is the console's last n lines.
func (c *consoleLog) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(c.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type bootSpec struct {
	disk, testDisk, vars string
	srtPort              int
	serial               string
	consolePath          string
}

func powerOn(ctx context.Context, b bootSpec) (*machine, error) {
	dir, err := os.MkdirTemp("", "capbox-appliance-")
	if err != nil {
		return nil, err
	}
	f, err := os.Create(b.consolePath)
	if err != nil {
		return nil, err
	}
	m := &machine{dir: dir, console: &consoleLog{f: f}, events: make(chan string, 64), exited: make(chan struct{}), started: time.Now()}
	ctlSock, qmpSock := filepath.Join(dir, "ctl"), filepath.Join(dir, "qmp")
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1",
		"-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
		"-smbios", "type=1,serial=" + b.serial,
		"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
		"-drive", "if=pflash,format=raw,file=" + b.vars,
		"-drive", "file=" + b.disk + ",if=virtio,format=raw",
		"-drive", "file=" + b.testDisk + ",if=virtio,format=raw,readonly=on",
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=udp:127.0.0.1:%d-:8890", b.srtPort),
		"-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=ctl,path=" + ctlSock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=ctl,name=capbox.e2e",
		"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
	}
	m.cmd = exec.Command("qemu-system-x86_64", args...)
	m.cmd.Stdout, m.cmd.Stderr = m.console, m.console
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		m.exitErr = m.cmd.Wait()
		close(m.exited)
	}()
	if err := poll(ctx, 30*time.Second, func() bool {
		m.ctl, err = net.Dial("unix", ctlSock)
		return err == nil
	}); err != nil {
		m.kill()
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	m.ctlRd = bufio.NewReaderSize(m.ctl, 1<<20)
	if err := poll(ctx, 30*time.Second, func() bool {
		m.qmp, err = net.Dial("unix", qmpSock)
		return err == nil
	}); err != nil {
		m.kill()
		return nil, fmt.Errorf("qmp socket: %w", err)
	}
	go m.readQMP()
	return m, nil
}

// readQMP collects QMP's events (WATCHDOG, SHUTDOWN with its reason).
func (m *machine) readQMP() {
	_, _ = m.qmp.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n"))
	sc := bufio.NewScanner(m.qmp)
	for sc.Scan() {
		var ev struct {
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event != "" {
			select {
			case m.events <- ev.Event + " " + string(ev.Data):
			default:
			}
		}
	}
}

// waitHello waits for the probe's hello: systemd has started the probe.
func (m *machine) waitHello(timeout time.Duration) error {
	type res struct {
		a   answer
		err error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := m.ctlRd.ReadBytes('\n')
		var a answer
		if err == nil {
			err = json.Unmarshal(line, &a)
		}
		ch <- res{a, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("probe: %w", r.err)
		}
		if !r.a.Hello {
			return fmt.Errorf("probe: no hello: %+v", r.a)
		}
		m.hello = r.a
		return nil
	case <-m.exited:
		return fmt.Errorf("the machine went off before its probe answered (%v)", m.exitErr)
	case <-time.After(timeout):
		return fmt.Errorf("no probe after %s", timeout)
	}
}

// run executes a shell command in the guest.
func (m *machine) run(timeout time.Duration, cmd string) (answer, error) {
	m.nextID++
	req, _ := json.Marshal(map[string]any{"id": m.nextID, "cmd": cmd, "timeout_s": timeout.Seconds()})
	if _, err := m.ctl.Write(append(req, '\n')); err != nil {
		return answer{}, err
	}
	type res struct {
		a   answer
		err error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := m.ctlRd.ReadBytes('\n')
		var a answer
		if err == nil {
			err = json.Unmarshal(line, &a)
		}
		ch <- res{a, err}
	}()
	select {
	case r := <-ch:
		if r.err == nil && r.a.ID != m.nextID {
			r.err = fmt.Errorf("probe answered %d, asked %d", r.a.ID, m.nextID)
		}
		return r.a, r.err
	case <-m.exited:
		return answer{}, errors.New("the machine went off")
	case <-time.After(timeout + 30*time.Second):
		return answer{}, fmt.Errorf("no answer to %q", cmd)
	}
}

// sh runs a command that must succeed and returns its output, trimmed.
func (m *machine) sh(cmd string) (string, error) {
	a, err := m.run(4*time.Minute, cmd)
	if err != nil {
		return "", err
	}
	if a.Exit != 0 {
		return "", fmt.Errorf("%q exited %d: %s", cmd, a.Exit, strings.TrimSpace(a.Out))
	}
	return strings.TrimSpace(a.Out), nil
}

// waitOff waits for QEMU to end by itself (reboot, power-off, reset).
func (m *machine) waitOff(timeout time.Duration) error {
	select {
	case <-m.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// seen reports whether QMP sent an event starting with prefix.
func (m *machine) seen(prefix string) (string, bool) {
	for {
		select {
		case ev := <-m.events:
			if strings.HasPrefix(ev, prefix) {
				return ev, true
			}
		default:
			return "", false
		}
	}
}

// kill is the power cut.
func (m *machine) kill() {
	if m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
	}
	<-m.exited
	m.close()
}

func (m *machine) close() {
	if m.ctl != nil {
		m.ctl.Close()
	}
	if m.qmp != nil {
		m.qmp.Close()
	}
	m.console.f.Close()
	os.RemoveAll(m.dir)
}

// poll calls cond every 200 ms until it holds or the timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
