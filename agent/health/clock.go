package health

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ClockSync is the kernel's view of time synchronisation (adjtimex(2)
// with modes 0: a read, no privileges needed).
type ClockSync struct {
	// Synced: the clock state is not TIME_ERROR, STA_UNSYNC is clear and
	// the maximum error is under NTP's 16 s phase limit.
	Synced bool `json:"synced"`
	// State is adjtimex's return value (TIME_OK 0 ... TIME_ERROR 5).
	State int `json:"state"`
	// Status is the STA_* bit set.
	Status int32 `json:"status"`
	// MaxErrorUS and EstErrorUS are microseconds; the kernel grows
	// maxerror by 500 us every second until a time daemon resets it
	// (kernel/time/ntp.c second_overflow).
	MaxErrorUS int64 `json:"maxerror_us"`
	EstErrorUS int64 `json:"esterror_us"`
}

// maxSyncedErrorUS is NTP_PHASE_LIMIT (16 s): past it the kernel itself
// sets STA_UNSYNC.
const maxSyncedErrorUS = 16_000_000

// ClockSyncFromTimex interprets an adjtimex answer. What "synced" means in
// practice: chronyd, ntpd and systemd-timesyncd clear STA_UNSYNC and set
// maxerror when they discipline the clock, so a box running any of them is
// synced once the daemon trusts its sources. Without a time daemon,
// STA_UNSYNC stays set from boot (also when an RTC set the time), so the
// box reports unsynced: its timestamps are not to be trusted across boxes.
// This is the same test timedatectl's NTPSynchronized uses.
func ClockSyncFromTimex(state int, tx *unix.Timex) ClockSync {
	cs := ClockSync{State: state, Status: tx.Status, MaxErrorUS: int64(tx.Maxerror), EstErrorUS: int64(tx.Esterror)}
	cs.Synced = state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0 && cs.MaxErrorUS < maxSyncedErrorUS
	return cs
}

// ClockSource says whether the clock is synchronised.
type ClockSource interface {
	ClockSync() (ClockSync, error)
}

// KernelClock reads adjtimex(2).
type KernelClock struct{}

// ClockSync implements ClockSource.
func (KernelClock) ClockSync() (ClockSync, error) {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockSync{}, fmt.Errorf("adjtimex: %w", err)
	}
	return ClockSyncFromTimex(state, &tx), nil
}
