package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Usage is what GNU time -v reports for one process and its waited-for
// children (wait4's rusage): CPU split in user and system time, the peak
// resident set, the wall time and how it ended.
type Usage struct {
	User      time.Duration `json:"user_ns"`
	Sys       time.Duration `json:"sys_ns"`
	MaxRSSKiB int64         `json:"max_rss_kib"`
	Wall      time.Duration `json:"wall_ns"`
	// Exit is the exit status; Signal the signal that ended it (0: none).
	Exit   int `json:"exit"`
	Signal int `json:"signal,omitempty"`
}

// CPU is user plus system time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// parseTimeV reads GNU time's -v report (time 1.9; the RSS figure is in
// KiB, the 4x error of time 1.7 is gone). Each line is parsed on its own;
// a report missing the CPU or RSS lines is an error.
func parseTimeV(r io.Reader) (Usage, error) {
	var u Usage
	var errs []error
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "User time (seconds)":
			u.User, err = seconds(val)
		case "System time (seconds)":
			u.Sys, err = seconds(val)
		case "Maximum resident set size (kbytes)":
			u.MaxRSSKiB, err = strconv.ParseInt(val, 10, 64)
		case "Elapsed (wall clock) time (h:mm:ss or m:ss)":
			u.Wall, err = clock(val)
		case "Exit status":
			u.Exit, err = strconv.Atoi(val)
		default:
			// "Command terminated by signal 9" has no ": " before the number.
			continue
		}
		seen[key] = true
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	for _, k := range []string{"User time (seconds)", "System time (seconds)", "Maximum resident set size (kbytes)"} {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("time -v report has no %q line", k))
		}
	}
	return u, errors.Join(errs...)
}

// parseTimeVSignal finds "Command terminated by signal N".
func parseTimeVSignal(text string) int {
	const p = "Command terminated by signal "
	i := strings.Index(text, p)
	if i < 0 {
		return 0
	}
	f := strings.Fields(text[i+len(p):])
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func seconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(f * float64(time.Second)), nil
}

// clock parses time's "m:ss.cc" or "h:mm:ss".
func clock(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("not m:ss or h:mm:ss: %q", s)
	}
	var total float64
	for _, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return 0, fmt.Errorf("not m:ss or h:mm:ss: %q", s)
		}
		total = total*60 + f
	}
	return time.Duration(total * float64(time.Second)), nil
}
