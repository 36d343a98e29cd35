package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gstRun is one finished gst-launch-1.0 (or other program) run.
type gstRun struct {
	out      string // stdout and stderr, also saved under artifacts/<name>.log
	stdout   string // stdout alone
	wall     time.Duration
	cpu      time.Duration // user + system time of the process and its threads
	user     time.Duration // user time alone: where a frame copy in GStreamer shows
	exitCode int
	err      error
}

// runLogged runs a program to completion, keeps its output as an artifact, and measures it.
func runLogged(ctx context.Context, t *T, name string, env []string, prog string, args ...string) gstRun {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	var buf, stdout lockedBuffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&buf, &stdout), &buf
	start := time.Now()
	err := cmd.Run()
	r := gstRun{wall: time.Since(start), err: err, exitCode: -1}
	if cmd.ProcessState != nil {
		r.exitCode = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			r.user = time.Duration(ru.Utime.Nano())
		}
	}
	r.out, r.stdout = buf.String(), stdout.String()
	path := filepath.Join(t.e.artifact, name+".log")
	header := fmt.Sprintf("$ %s %s %s\n# exit %d, wall %s, cpu %s\n", strings.Join(env, " "), prog, strings.Join(args, " "), r.exitCode, r.wall, r.cpu)
	if werr := os.WriteFile(path, []byte(header+r.out), 0o644); werr != nil {
		t.Logf("cannot keep %s: %v", path, werr)
	}
	return r
}

// bgProc is a program running in the background during a scenario.
type bgProc struct {
	cmd  *exec.Cmd
	buf  *lockedBuffer
	done chan struct{}
	err  error
	path string
}

// startLogged starts a program in the background; its output is an artifact. The scenario's
// cleanup kills it if it is still running.
func startLogged(ctx context.Context, t *T, name string, env []string, prog string, args ...string) *bgProc {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	p := &bgProc{cmd: cmd, buf: &lockedBuffer{}, done: make(chan struct{}), path: filepath.Join(t.e.artifact, name+".log")}
	cmd.Stdout, cmd.Stderr = p.buf, p.buf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	go func() {
		p.err = cmd.Wait()
		_ = os.WriteFile(p.path, []byte(fmt.Sprintf("$ %s %s\n# %v\n", prog, strings.Join(args, " "), p.err)+p.buf.String()), 0o644)
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGKILL, 0) })
	return p
}

// stop signals the program and waits up to grace for it to exit.
func (p *bgProc) stop(sig syscall.Signal, grace time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		// A Go program (capboxd) prints every goroutine's stack on SIGQUIT and exits:
		// the log then says where it hung. Anything else is killed after a moment.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		return false
	}
}

func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// holdsOpen reports whether process pid has node open (a link in /proc/PID/fd).
func holdsOpen(pid int, node string) bool {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, en := range ents {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, en.Name())); err == nil && target == node {
			return true
		}
	}
	return false
}

// waitCapturing waits until a capture program holds node open and its output shows streaming
// (marker), so an injected fault hits a running stream and not a start-up under TCG.
func waitCapturing(ctx context.Context, t *T, p *bgProc, node, marker string) {
	if _, err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("it exited: %v: %s", p.err, lastLines([]byte(p.buf.String()), 3))
		}
		if !holdsOpen(p.cmd.Process.Pid, node) {
			return false, fmt.Errorf("%s not open yet", node)
		}
		return strings.Contains(p.buf.String(), marker), fmt.Errorf("no %q in its output yet", marker)
	}); err != nil {
		t.Fatalf("capture did not start: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
}
