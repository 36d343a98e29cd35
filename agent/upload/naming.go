package upload

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// remoteSafe is what a remote name is made of: the device id, digits,
// letters, dashes, dots, underscores and the folder slashes.
var remoteSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

func validRemote(s string) bool {
	return len(s) <= 512 && remoteSafe.MatchString(s) && !strings.Contains(s, "..")
}

// RemoteName is where a segment goes under a target's folder:
// {device}/{date}/{device}-{start}-{seq}.{ext}, with the date and start in
// UTC. Where the clock was never synced the boot counter stands in for
// both ("boot42"), so names stay unique and never claim a wrong date.
func RemoteName(device string, seg Segment) (string, error) {
	ext := strings.TrimPrefix(filepath.Ext(seg.Path), ".")
	if ext == "" {
		ext = "bin"
	}
	date, start := fmt.Sprintf("boot%d", seg.Boot), fmt.Sprintf("boot%d", seg.Boot)
	if !seg.Start.IsZero() {
		utc := seg.Start.UTC()
		date, start = utc.Format(time.DateOnly), utc.Format("20060102T150405Z")
	}
	name := path.Join(device, date, fmt.Sprintf("%s-%s-%05d.%s", device, start, seg.Seq, ext))
	if !validRemote(name) {
		return "", fmt.Errorf("%w: cannot name %s remotely (device %q, extension %q)", ErrSegment, seg.Path, device, ext)
	}
	return name, nil
}
