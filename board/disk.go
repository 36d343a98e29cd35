package board

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Disk is the space on one mounted file system, in bytes.
type Disk struct {
	Path  string `json:"path"`
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`  // including blocks reserved for root
	Avail uint64 `json:"avail"` // what the agent (not root) can write
}

func readDisks(f fsys, mounts []string) ([]Disk, error) {
	var out []Disk
	var errs []error
	for _, m := range mounts {
		var st unix.Statfs_t
		if err := unix.Statfs(f.host(m), &st); err != nil {
			errs = append(errs, fmt.Errorf("statfs %s: %w", m, err))
			continue
		}
		bs := uint64(st.Bsize)
		out = append(out, Disk{Path: m, Total: uint64(st.Blocks) * bs, Free: uint64(st.Bfree) * bs, Avail: uint64(st.Bavail) * bs})
	}
	return out, joinErrs(errs)
}
