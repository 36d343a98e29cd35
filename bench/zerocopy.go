package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"capbox/e2e/result"
)

// zeroCopyRows are the virtual capture box's scenarios that encode the
// same vivid input with vicodec on the dmabuf-import rung and on the mmap
// rung and report CPU per frame for both (e2e/guest).
var zeroCopyRows = []struct{ name, what string }{
	{"gst-dmabuf-zero-copy", "gst-launch-1.0 v4l2src ! v4l2fwhtenc, 60 frames per rung, 2-frame start-up subtracted"},
	{"capboxd-zero-copy-run", "capboxd itself (encoder v4l2fwhtenc; encode.zero_copy false for the mmap rung), 10 s window per rung"},
}

// ZeroCopyResult is figure 4: every run of each row found in the e2e
// harness's results files (one file per boot of the virtual box).
type ZeroCopyResult struct {
	Rows []ZeroCopyRow `json:"rows"`
	// Problems are files without a row, or rows that did not pass.
	Problems []string `json:"problems,omitempty"`
}

// ZeroCopyRow is one scenario over the boots.
type ZeroCopyRow struct {
	Name string        `json:"name"`
	What string        `json:"what"`
	Runs []ZeroCopyRun `json:"runs"`
	// Ratios mmap / dmabuf over the runs: > 1 is a gain for zero-copy.
	CPURatio    Spread `json:"cpu_ratio_mmap_over_dmabuf"`
	UserRatio   Spread `json:"user_cpu_ratio_mmap_over_dmabuf"`
	DMABufCPUms Spread `json:"dmabuf_cpu_ms_per_frame"`
	MMAPCPUms   Spread `json:"mmap_cpu_ms_per_frame"`
}

// ZeroCopyRun is a row of one results file.
type ZeroCopyRun struct {
	Source   string    `json:"source"`
	Modified time.Time `json:"modified"`
	Status   string    `json:"status"`
	// Per-frame CPU, ms.
	DMABufCPUms  float64 `json:"dmabuf_cpu_ms_per_frame"`
	MMAPCPUms    float64 `json:"mmap_cpu_ms_per_frame"`
	DMABufUserms float64 `json:"dmabuf_user_ms_per_frame"`
	MMAPUserms   float64 `json:"mmap_user_ms_per_frame"`
	// Ratios mmap / dmabuf: > 1 is a gain for zero-copy.
	CPURatio  float64 `json:"cpu_ratio_mmap_over_dmabuf"`
	UserRatio float64 `json:"user_cpu_ratio_mmap_over_dmabuf"`
	Imports   string  `json:"dmabuf_imports"`
	Exported  string  `json:"dmabuf_exported_fds"`
	// FPS is "dmabuf/mmap" frames per second in capboxd's window: on a
	// saturated guest CPU, the per-frame figures follow it.
	FPS string `json:"fps_dmabuf_mmap,omitempty"`
}

// readZeroCopy collects the rows from every results file; it fails only
// when no file has a passing row.
func readZeroCopy(paths []string) (*ZeroCopyResult, error) {
	if len(paths) == 0 {
		return nil, errors.New("no e2e results file given")
	}
	res := &ZeroCopyResult{}
	suites, mods := map[string]result.Suite{}, map[string]time.Time{}
	for _, p := range paths {
		s, mod, err := readSuite(p)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		suites[p], mods[p] = s, mod
	}
	for _, row := range zeroCopyRows {
		zr := ZeroCopyRow{Name: row.name, What: row.what}
		var cpu, user, dm, mm []float64
		for _, p := range paths {
			rec, ok := findRecord(suites[p], row.name)
			if !ok {
				continue
			}
			z, err := zeroCopyRun(p, mods[p], rec)
			if err != nil {
				res.Problems = append(res.Problems, err.Error())
			}
			if z.Status != string(result.Pass) {
				continue
			}
			zr.Runs = append(zr.Runs, z)
			// A ratio of 0 is one the row did not measure.
			cpu, user = appendMeasured(cpu, z.CPURatio), appendMeasured(user, z.UserRatio)
			dm, mm = append(dm, z.DMABufCPUms), append(mm, z.MMAPCPUms)
		}
		if len(zr.Runs) == 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("no passing %s row in %s", row.name, strings.Join(paths, ", ")))
			continue
		}
		zr.CPURatio, zr.UserRatio = spreadOf(cpu), spreadOf(user)
		zr.DMABufCPUms, zr.MMAPCPUms = spreadOf(dm), spreadOf(mm)
		res.Rows = append(res.Rows, zr)
	}
	if len(res.Rows) == 0 {
		return nil, fmt.Errorf("no passing zero-copy row: %s", strings.Join(res.Problems, "; "))
	}
	return res, nil
}

// readSuite reads one results file; a malformed line elsewhere does not
// hide the good records.
func readSuite(path string) (result.Suite, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return result.Suite{}, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return result.Suite{}, time.Time{}, err
	}
	s, err := result.Read(f)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return s, st.ModTime().UTC(), err
}

func findRecord(s result.Suite, name string) (result.Record, bool) {
	for _, r := range s.Records {
		if r.Name == name {
			return r, true
		}
	}
	return result.Record{}, false
}

// zeroCopyRun takes one record's timings and facts.
func zeroCopyRun(path string, mod time.Time, rec result.Record) (ZeroCopyRun, error) {
	z := ZeroCopyRun{Source: path, Modified: mod, Status: string(rec.Status),
		DMABufCPUms: rec.Timings["dmabuf_cpu_per_frame"], MMAPCPUms: rec.Timings["mmap_cpu_per_frame"],
		DMABufUserms: rec.Timings["dmabuf_user_per_frame"], MMAPUserms: rec.Timings["mmap_user_per_frame"],
		Imports: rec.Facts["dmabuf_imports"], Exported: rec.Facts["dmabuf_exported_fds"], FPS: rec.Facts["fps_dmabuf_mmap"]}
	if rec.Status != result.Pass {
		return z, fmt.Errorf("%s: %s did not pass (%s): %s", path, rec.Name, rec.Status, strings.Join(rec.Reasons, "; "))
	}
	var errs []error
	for _, k := range []struct {
		fact string
		dst  *float64
	}{{"cpu_ratio_mmap_over_dmabuf", &z.CPURatio}, {"user_cpu_ratio_mmap_over_dmabuf", &z.UserRatio}} {
		if rec.Facts[k.fact] == "" {
			// Not measured: the row leaves a ratio out when its divisor
			// is zero (user CPU per frame below a millisecond).
			continue
		}
		v, err := strconv.ParseFloat(rec.Facts[k.fact], 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: fact %s: %w", path, rec.Name, k.fact, err))
			continue
		}
		*k.dst = v
	}
	return z, errors.Join(errs...)
}

// appendMeasured appends v unless it is 0 (not measured).
func appendMeasured(vs []float64, v float64) []float64 {
	if v == 0 {
		return vs
	}
	return append(vs, v)
}
