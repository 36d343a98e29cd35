// Package result is the record the virtual capture box's scenario runner writes, one JSON
// line per scenario into the results share, and what the host makes of it.
package result

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Status is the outcome of one scenario.
type Status string

// Statuses. Only Pass is success: a scenario whose agent feature has not landed is
// NotImplemented, which fails the suite but is listed apart so the gap is plain.
const (
	Pass           Status = "pass"
	Fail           Status = "fail"
	NotImplemented Status = "not_implemented"
)

// Record is one scenario's outcome.
type Record struct {
	Name     string `json:"name"`
	Scenario int    `json:"scenario,omitempty"` // the scenario number, 0 for harness checks
	Status   Status `json:"status"`
	// Reasons say why a scenario failed or is not implemented, one line each.
	Reasons []string `json:"reasons,omitempty"`
	// Timings are what the scenario measured, in milliseconds.
	Timings map[string]float64 `json:"timings_ms,omitempty"`
	// Facts are measured values worth reporting that are not durations (ratios, counts).
	Facts      map[string]string `json:"facts,omitempty"`
	DurationMS float64           `json:"duration_ms"`
}

// Done is the last line the runner writes; a results file without it was cut short.
const Done = "done"

// Writer appends records to a file and syncs after each, so a guest that dies mid-suite
// still leaves what it finished.
type Writer struct {
	f *os.File
}

// Create opens path for writing records, truncating it.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	return &Writer{f: f}, nil
}

// Write appends one record.
func (w *Writer) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	return w.f.Sync()
}

// Close writes the done marker and closes the file.
func (w *Writer) Close() error {
	_, err := w.f.WriteString(`{"name":"` + Done + `"}` + "\n")
	return errors.Join(err, w.f.Sync(), w.f.Close())
}

// Suite is what one run produced.
type Suite struct {
	Records []Record
	// Complete is true when the runner reached its done marker.
	Complete bool
}

// Read parses a results file. Malformed lines are errors but do not hide the good ones.
func Read(r io.Reader) (Suite, error) {
	var s Suite
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if rec.Name == Done && rec.Status == "" {
			s.Complete = true
			continue
		}
		switch rec.Status {
		case Pass, Fail, NotImplemented:
		default:
			errs = append(errs, fmt.Errorf("line %d: scenario %q has unknown status %q", n, rec.Name, rec.Status))
			continue
		}
		s.Records = append(s.Records, rec)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// Counts are the totals of a suite.
type Counts struct {
	Passed, Failed, NotImplemented int
}

// Count adds up the statuses.
func (s Suite) Count() Counts {
	var c Counts
	for _, r := range s.Records {
		switch r.Status {
		case Pass:
			c.Passed++
		case Fail:
			c.Failed++
		case NotImplemented:
			c.NotImplemented++
		}
	}
	return c
}

// Verdict is the suite's judgement: nil only when every scenario ran and passed, the runner
// finished, and something ran at all.
func (s Suite) Verdict() error {
	var errs []error
	if len(s.Records) == 0 {
		errs = append(errs, errors.New("no scenario result"))
	}
	if !s.Complete {
		errs = append(errs, errors.New("the runner did not finish (no done marker)"))
	}
	c := s.Count()
	if c.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d scenario(s) failed", c.Failed))
	}
	if c.NotImplemented > 0 {
		errs = append(errs, fmt.Errorf("%d scenario(s) not implemented in capboxd yet", c.NotImplemented))
	}
	return errors.Join(errs...)
}

// Report writes a human summary: one line per scenario with its timings, then the failures,
// then the not-implemented list, then the closing count line.
func (s Suite) Report(w io.Writer) {
	for _, r := range s.Records {
		fmt.Fprintf(w, "%-4s %-34s %8s%s\n", mark(r.Status), r.Name, fmtMS(r.DurationMS), measures(r))
	}
	for _, st := range []Status{Fail, NotImplemented} {
		var lines []string
		for _, r := range s.Records {
			if r.Status != st {
				continue
			}
			for _, why := range r.Reasons {
				lines = append(lines, fmt.Sprintf("  %s: %s", r.Name, why))
			}
			if len(r.Reasons) == 0 {
				lines = append(lines, fmt.Sprintf("  %s: (no reason given)", r.Name))
			}
		}
		if len(lines) == 0 {
			continue
		}
		if st == Fail {
			fmt.Fprintln(w, "failed:")
		} else {
			fmt.Fprintln(w, "not implemented in capboxd yet:")
		}
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	c := s.Count()
	fmt.Fprintf(w, "%d passed, %d failed\n", c.Passed, c.Failed+c.NotImplemented)
}

func mark(s Status) string {
	switch s {
	case Pass:
		return "ok"
	case NotImplemented:
		return "TODO"
	}
	return "FAIL"
}

func fmtMS(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).Round(time.Millisecond).String()
}

func measures(r Record) string {
	var parts []string
	for k, v := range r.Timings {
		parts = append(parts, fmt.Sprintf("%s=%s", k, fmtMS(v)))
	}
	for k, v := range r.Facts {
		parts = append(parts, fmt.Sprintf("%s=%s", k, v))
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return "  " + strings.Join(parts, " ")
}
