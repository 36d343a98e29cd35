// Package sdnotify tells systemd how the agent is (sd_notify(3) through
// github.com/coreos/go-systemd/v22/daemon): READY=1 once running,
// STATUS= the box mood in words, RELOADING=1 then READY=1 around a reload,
// STOPPING=1 on shutdown, and WATCHDOG=1 only while the supervisor loop
// makes progress (Watchdog). Without NOTIFY_SOCKET (not under systemd, or
// Type=simple) every call does nothing.
package sdnotify

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"capbox/agent/fleet/wire"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	mu         sync.Mutex
	lastStatus string
	// monotonic is CLOCK_MONOTONIC, for RELOADING's MONOTONIC_USEC.
	monotonic func() time.Duration
}

// New makes a notifier; it reads NOTIFY_SOCKET at every send, as
// daemon.SdNotify does, and leaves the variable set.
func New() *Notifier {
	return &Notifier{monotonic: monotonicNow}
}

func monotonicNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Enabled reports whether systemd listens (NOTIFY_SOCKET is set).
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

func (n *Notifier) send(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		// The socket is systemd's; its path is not a secret.
		return fmt.Errorf("sd_notify %s: %w", strings.SplitN(state, "\n", 2)[0], err)
	}
	return nil
}

// Ready says start-up is done: the agent runs, whether or not the input
// has a signal.
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// Status sets the one-line status `systemctl status` shows; a status equal
// to the last one sent is not sent again.
func (n *Notifier) Status(text string) error {
	text = oneLine(text)
	n.mu.Lock()
	if text == n.lastStatus {
		n.mu.Unlock()
		return nil
	}
	n.lastStatus = text
	n.mu.Unlock()
	return n.send("STATUS=" + text)
}

// Reloading says a config reload started; send Ready when it is done
// (applied or refused). MONOTONIC_USEC is what Type=notify-reload
// (systemd 253+) requires with it, and is ignored by older systemd.
func (n *Notifier) Reloading() error {
	usec := n.monotonic() / time.Microsecond
	return n.send(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(int64(usec), 10))
}

// Stopping says shutdown began.
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Watchdog pings the service watchdog; Watchdog.Run calls it only while
// the supervisor makes progress.
func (n *Notifier) Watchdog() error { return n.send(daemon.SdNotifyWatchdog) }

// oneLine keeps the status a single assignment: a newline would start
// another one (a part name must never be able to say READY=1).
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	const maxStatus = 200
	if len(s) > maxStatus {
		cut := maxStatus
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// moodWords says a mood the way an operator reads it.
var moodWords = map[wire.Mood]string{
	wire.MoodHappy:    "working",
	wire.MoodWaking:   "starting",
	wire.MoodHungry:   "waiting for input",
	wire.MoodSad:      "failed, retrying",
	wire.MoodLost:     "not responding",
	wire.MoodSleeping: "disabled",
}

// StatusText is the box mood in words for STATUS=: the mode, the box mood
// (the worst part's), and the parts that are not fine, worst first:
//
//	streaming; happy: all 4 parts working
//	degraded; sad: output:youtube failed, retrying; capture waiting for input
func StatusText(mode string, moods map[string]wire.Mood) string {
	box := wire.WorstMood(moods)
	head := string(box)
	if mode != "" {
		head = mode + "; " + head
	}
	var bad []string
	for part, m := range moods {
		if m != wire.MoodHappy && m != wire.MoodSleeping {
			bad = append(bad, part)
		}
	}
	if len(bad) == 0 {
		working := 0
		for _, m := range moods {
			if m == wire.MoodHappy {
				working++
			}
		}
		if working == 1 {
			return head + ": 1 part working"
		}
		return fmt.Sprintf("%s: all %d parts working", head, working)
	}
	sort.Slice(bad, func(i, j int) bool {
		ri, rj := wire.MoodRank(moods[bad[i]]), wire.MoodRank(moods[bad[j]])
		if ri != rj {
			return ri > rj
		}
		return bad[i] < bad[j]
	})
	words := make([]string, len(bad))
	for i, p := range bad {
		w := moodWords[moods[p]]
		if w == "" {
			w = string(moods[p])
		}
		words[i] = p + " " + w
	}
	return head + ": " + strings.Join(words, "; ")
}
