package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ingest is the SRT server the contenders stream to: a GStreamer SRT
// listener on loopback writing what it receives straight to a pipe
// (fdsink: one write per SRT packet, no stdio buffering), so the
// benchmark sees the first byte the moment the ingest has it.
type ingest struct {
	port int
	cmd  *exec.Cmd
	// up is when the listening socket appeared in /proc/net/udp.
	up    time.Time
	bytes atomic.Int64
	once  sync.Once
	first chan struct{}
	mu    sync.Mutex
	at    time.Time
	done  chan struct{}
	// gaps: the longest time between two reads, and how many were over
	// 500 ms, since resetGaps.
	last        time.Time
	maxGap      time.Duration
	gapsOver500 int
}

// freeUDPPort asks the kernel for a loopback UDP port nobody uses.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// ingestAndStreams starts an ingest on a free loopback port and makes every
// contender's stream to it; the caller kills the ingest.
func (b *bench) ingestAndStreams(ctx context.Context, logPath string) (*ingest, []stream, int, error) {
	port, err := freeUDPPort()
	if err != nil {
		return nil, nil, 0, err
	}
	in, err := startIngest(port, logPath)
	if err != nil {
		return nil, nil, 0, err
	}
	st, err := b.setup.streams(ctx, port)
	if err != nil {
		in.kill()
		return nil, nil, 0, err
	}
	return in, st, port, nil
}

// startIngest starts the listener on port and waits until its socket is
// bound (at most 10 s).
func startIngest(port int, logPath string) (*ingest, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	in := &ingest{port: port, first: make(chan struct{}), done: make(chan struct{})}
	in.cmd = exec.Command("gst-launch-1.0", "-q",
		"srtsrc", fmt.Sprintf("uri=srt://127.0.0.1:%d?mode=listener", port), "latency=200",
		"!", "fdsink", "fd=3", "sync=false")
	in.cmd.ExtraFiles = []*os.File{pw}
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logf.Close()
		return nil, fmt.Errorf("ingest: %w", err)
	}
	pw.Close()
	go func() {
		_ = in.cmd.Wait()
		logf.Close()
		close(in.done)
	}()
	go in.read(pr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := udpBound(port)
		if err != nil {
			in.kill()
			return nil, err
		}
		if ok {
			in.up = time.Now()
			return in, nil
		}
		select {
		case <-in.done:
			return nil, fmt.Errorf("ingest on port %d exited before listening (see %s)", port, logPath)
		default:
		}
		if time.Now().After(deadline) {
			in.kill()
			return nil, fmt.Errorf("ingest on port %d not listening after 10 s", port)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (in *ingest) read(r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			in.once.Do(func() {
				in.mu.Lock()
				in.at = time.Now()
				in.mu.Unlock()
				close(in.first)
			})
			in.bytes.Add(int64(n))
			in.mu.Lock()
			now := time.Now()
			if !in.last.IsZero() {
				gap := now.Sub(in.last)
				in.maxGap = max(in.maxGap, gap)
				if gap > 500*time.Millisecond {
					in.gapsOver500++
				}
			}
			in.last = now
			in.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// resetGaps starts counting gaps afresh and returns the old counts.
func (in *ingest) resetGaps() (maxGap time.Duration, over500 int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	maxGap, over500 = in.maxGap, in.gapsOver500
	if !in.last.IsZero() {
		// A silence still running counts up to now.
		if gap := time.Since(in.last); gap > maxGap {
			maxGap = gap
		}
	}
	in.maxGap, in.gapsOver500 = 0, 0
	return maxGap, over500
}

// waitFirst waits for the first byte and returns when it came.
func (in *ingest) waitFirst(ctx context.Context, timeout time.Duration) (time.Time, error) {
	select {
	case <-in.first:
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.at, nil
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("no byte at the ingest within %s", timeout)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// kill ends the ingest the way a crash does: SIGKILL, no SRT shutdown
// message to the caller, which notices only when SRT's peer idle timeout
// (5 s) runs out.
func (in *ingest) kill() {
	_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	<-in.done
}

// close ends the ingest the way a server restart does: gst-launch stops
// its pipeline on SIGINT, srtsrc closes its socket and SRT tells the
// caller at once.
func (in *ingest) close() {
	_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-in.done:
	case <-time.After(5 * time.Second):
		in.kill()
	}
}

// udpBound reports whether a UDP socket is bound to 127.0.0.1:port or
// [::]:port (/proc/net/udp{,6}: local_address is hex address:port).
func udpBound(port int) (bool, error) {
	want := fmt.Sprintf(":%04X", port)
	var errs []error
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		fh, err := os.Open(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 2 && strings.HasSuffix(fields[1], want) {
				fh.Close()
				return true, nil
			}
		}
		fh.Close()
	}
	if len(errs) == 2 {
		return false, errors.Join(errs...)
	}
	return false, nil
}
