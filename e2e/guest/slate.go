package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// What an output carries is judged from its last decoded frame: the slate is a solid
// 0x202830 background with centred text and a clock at the bottom right
// (pipelines.slateSource), so the top-left eighth of a slate frame is that colour; vivid's
// picture there is the white bar of its colour bars, or noise while it has no signal.
var slateRGB = [3]int{0x20, 0x28, 0x30}

// slateTolerance allows for I420 subsampling and H.264 at 1 Mbit/s.
const slateTolerance = 16

func isSlate(c [3]int) bool {
	for i := range c {
		if d := c[i] - slateRGB[i]; d > slateTolerance || d < -slateTolerance {
			return false
		}
	}
	return true
}

// tsTailBytes is how much of a growing MPEG-TS file is decoded: about 4 s at the rows'
// 1 Mbit/s, so at least two keyframes (keyframe_interval 1s).
const tsTailBytes = 512 << 10

// tsTail copies the end of a growing MPEG-TS file, cut at a 188-byte packet boundary (the
// SRT receiver and the recorder both write whole packets from the start of the file).
func tsTail(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	start := max(st.Size()-tsTailBytes, 0) / 188 * 188
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lastFrame is the last decodable frame at the end of an MPEG-TS file.
type lastFrame struct {
	corner        [3]int // mean RGB of the top-left eighth
	width, height int
}

func (l lastFrame) String() string {
	return fmt.Sprintf("%dx%d, corner #%02x%02x%02x", l.width, l.height, l.corner[0], l.corner[1], l.corner[2])
}

// tailFrame decodes the end of a growing MPEG-TS file with ffmpeg.
func tailFrame(ctx context.Context, t *T, name, path string) (lastFrame, error) {
	tail := filepath.Join(os.TempDir(), "tail-"+name+".ts")
	defer os.Remove(tail)
	if err := tsTail(path, tail); err != nil {
		return lastFrame{}, err
	}
	r := runLogged(ctx, t, "ffmpeg-tail-"+name, nil, "ffmpeg", "-nostdin", "-v", "error", "-i", tail,
		"-vf", "crop=iw/8:ih/8:0:0,scale=1:1:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	out := []byte(r.stdout)
	if r.exitCode != 0 || len(out) < 3 {
		return lastFrame{}, fmt.Errorf("no frame decoded from the last %d KiB of %s (ffmpeg exit %d)", tsTailBytes>>10, filepath.Base(path), r.exitCode)
	}
	c := out[len(out)/3*3-3:]
	lf := lastFrame{corner: [3]int{int(c[0]), int(c[1]), int(c[2])}}
	p := runLogged(ctx, t, "ffprobe-tail-"+name, nil, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=p=0", tail)
	fmt.Sscanf(strings.TrimSpace(p.stdout), "%d,%d", &lf.width, &lf.height)
	return lf, nil
}

// newestSegment is the recording segment being written (names sort by time and sequence).
func newestSegment(dir string) (string, error) {
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ts"))
	if len(segs) == 0 {
		return "", fmt.Errorf("no recording segment in %s", dir)
	}
	sort.Strings(segs)
	return segs[len(segs)-1], nil
}

// waitOnAir waits until both outputs (the SRT receiver's file and the recording) end in
// frames that are (slate true) or are not (false) the slate, and returns how long that took.
func (s *session) waitOnAir(ctx context.Context, t *T, name string, slate bool, limit time.Duration) (time.Duration, error) {
	i := 0
	return waitFor(ctx, limit, func() (bool, error) {
		i++
		seg, err := newestSegment(s.rec)
		if err != nil {
			return false, err
		}
		var errs []error
		for _, o := range []struct{ name, path string }{{"srt", s.recv}, {"recording", seg}} {
			f, err := tailFrame(ctx, t, fmt.Sprintf("%s-%s-%d", name, o.name, i), o.path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.name, err))
				continue
			}
			if isSlate(f.corner) != slate {
				errs = append(errs, fmt.Errorf("%s ends in %s", o.name, f))
			}
		}
		if len(errs) == 0 {
			return true, nil
		}
		time.Sleep(time.Second)
		return false, errors.Join(errs...)
	})
}
