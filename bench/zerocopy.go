package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"capbox/e2e/result"
)

// zeroCopyRow is the virtual capture box's scenario that encodes the same
// vivid input with vicodec twice: dmabuf-import rung and mmap rung.
const zeroCopyRow = "gst-dmabuf-zero-copy"

// ZeroCopyResult is figure 4: every run of the row found in the e2e
// harness's results files (one file per boot of the virtual box).
type ZeroCopyResult struct {
	Runs []ZeroCopyRun `json:"runs"`
	// Ratios mmap / dmabuf over the runs: > 1 is a gain for zero-copy.
	CPURatio    Spread `json:"cpu_ratio_mmap_over_dmabuf"`
	UserRatio   Spread `json:"user_cpu_ratio_mmap_over_dmabuf"`
	DMABufCPUms Spread `json:"dmabuf_cpu_ms_per_frame"`
	MMAPCPUms   Spread `json:"mmap_cpu_ms_per_frame"`
	// Problems are files without the row, or rows that did not pass.
	Problems []string `json:"problems,omitempty"`
}

// ZeroCopyRun is the row of one results file.
type ZeroCopyRun struct {
	Source   string    `json:"source"`
	Modified time.Time `json:"modified"`
	Status   string    `json:"status"`
	// Per-frame CPU (the 2-frame start-up run subtracted), ms.
	DMABufCPUms  float64 `json:"dmabuf_cpu_ms_per_frame"`
	MMAPCPUms    float64 `json:"mmap_cpu_ms_per_frame"`
	DMABufUserms float64 `json:"dmabuf_user_ms_per_frame"`
	MMAPUserms   float64 `json:"mmap_user_ms_per_frame"`
	// Ratios mmap / dmabuf: > 1 is a gain for zero-copy.
	CPURatio  float64 `json:"cpu_ratio_mmap_over_dmabuf"`
	UserRatio float64 `json:"user_cpu_ratio_mmap_over_dmabuf"`
	Imports   string  `json:"dmabuf_imports"`
	Exported  string  `json:"dmabuf_exported_fds"`
}

// readZeroCopy collects the row from every results file; it fails only
// when no file has it.
func readZeroCopy(paths []string) (*ZeroCopyResult, error) {
	res := &ZeroCopyResult{}
	var cpu, user, dm, mm []float64
	for _, p := range paths {
		z, err := readZeroCopyFile(p)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		if z == nil || z.Status != string(result.Pass) {
			continue
		}
		res.Runs = append(res.Runs, *z)
		cpu, user = append(cpu, z.CPURatio), append(user, z.UserRatio)
		dm, mm = append(dm, z.DMABufCPUms), append(mm, z.MMAPCPUms)
	}
	if len(res.Runs) == 0 {
		if len(paths) == 0 {
			return nil, errors.New("no e2e results file given")
		}
		return nil, fmt.Errorf("no passing %s row: %v", zeroCopyRow, res.Problems)
	}
	res.CPURatio, res.UserRatio = spreadOf(cpu), spreadOf(user)
	res.DMABufCPUms, res.MMAPCPUms = spreadOf(dm), spreadOf(mm)
	return res, nil
}

func readZeroCopyFile(path string) (*ZeroCopyRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// A malformed line elsewhere in the file does not hide the row.
	suite, readErr := result.Read(f)
	for _, rec := range suite.Records {
		if rec.Name != zeroCopyRow {
			continue
		}
		z := &ZeroCopyRun{Source: path, Modified: st.ModTime().UTC(), Status: string(rec.Status),
			DMABufCPUms: rec.Timings["dmabuf_cpu_per_frame"], MMAPCPUms: rec.Timings["mmap_cpu_per_frame"],
			DMABufUserms: rec.Timings["dmabuf_user_per_frame"], MMAPUserms: rec.Timings["mmap_user_per_frame"],
			Imports: rec.Facts["dmabuf_imports"], Exported: rec.Facts["dmabuf_exported_fds"]}
		var errs []error
		for _, k := range []struct {
			fact string
			dst  *float64
		}{{"cpu_ratio_mmap_over_dmabuf", &z.CPURatio}, {"user_cpu_ratio_mmap_over_dmabuf", &z.UserRatio}} {
			v, err := strconv.ParseFloat(rec.Facts[k.fact], 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: fact %s: %w", path, k.fact, err))
				continue
			}
			*k.dst = v
		}
		if rec.Status != result.Pass {
			errs = append(errs, fmt.Errorf("%s: %s did not pass (%s): %v", path, zeroCopyRow, rec.Status, rec.Reasons))
		}
		return z, errors.Join(errs...)
	}
	if readErr != nil {
		return nil, fmt.Errorf("%s: %w", path, readErr)
	}
	return nil, fmt.Errorf("%s: no %s row", path, zeroCopyRow)
}
