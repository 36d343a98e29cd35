package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// uevent is one kernel hotplug message from NETLINK_KOBJECT_UEVENT.
type uevent struct {
	Action, DevPath string
	Env             map[string]string
	At              time.Time
}

// ueventListener collects kernel uevents from the moment it is created.
type ueventListener struct {
	fd     int
	mu     sync.Mutex
	events []uevent
	stop   chan struct{}
	done   chan struct{}
}

func listenUevents() (*ueventListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// Group 1 is the kernel's own broadcast (udevd re-sends on group 2).
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent bind: %w", err)
	}
	tv := unix.Timeval{Usec: 100000}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	l := &ueventListener{fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l, nil
}

func (l *ueventListener) loop() {
	defer close(l.done)
	buf := make([]byte, 16<<10)
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		if err != nil || n <= 0 {
			continue
		}
		if ev, ok := parseUevent(buf[:n]); ok {
			ev.At = time.Now()
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}
}

// parseUevent reads "ACTION@DEVPATH\0KEY=VALUE\0...".
func parseUevent(b []byte) (uevent, bool) {
	parts := bytes.Split(b, []byte{0})
	head := string(parts[0])
	at := strings.IndexByte(head, '@')
	if at < 0 {
		return uevent{}, false
	}
	ev := uevent{Action: head[:at], DevPath: head[at+1:], Env: map[string]string{}}
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(string(p), "="); ok {
			ev.Env[k] = v
		}
	}
	return ev, true
}

// find returns the first event since 'since' that matches.
func (l *ueventListener) find(since time.Time, match func(uevent) bool) (uevent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if !ev.At.Before(since) && match(ev) {
			return ev, true
		}
	}
	return uevent{}, false
}

func (l *ueventListener) Close() {
	close(l.stop)
	<-l.done
	unix.Close(l.fd)
}
