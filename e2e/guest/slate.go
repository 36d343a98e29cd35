package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// What the outputs carried is judged after a row from every decoded frame of each (one
// ffmpeg process per output: under TCG starting one costs 3-5 s of CPU, more than the
// decoding). The slate is a solid 0x202830 background with centred text and a clock at the
// bottom right (pipelines.slateSource), so the top-left eighth of a slate frame is that
// colour; vivid's picture there is its colour bars with the OSD text, or noise while it has
// no signal.
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

// frameInfo is one decoded frame: its time, size and the mean colour of its top-left eighth.
type frameInfo struct {
	pts           float64 // seconds
	width, height int
	corner        [3]int
}

// reShowinfo is ffmpeg's showinfo line for a frame: its time and size.
var reShowinfo = regexp.MustCompile(`Parsed_showinfo_0 .* pts_time:(\S+) .* s:(\d+)x(\d+) `)

// decodeFrames decodes MPEG-TS files one after the other (the recording's segments are
// whole TS files: ffmpeg's concat protocol joins them byte for byte).
func decodeFrames(ctx context.Context, t *T, name string, files ...string) ([]frameInfo, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: nothing to decode", name)
	}
	rgb := filepath.Join(os.TempDir(), "decode-"+name+".rgb")
	defer os.Remove(rgb)
	in := files[0]
	if len(files) > 1 {
		in = "concat:" + strings.Join(files, "|")
	}
	r := runLogged(ctx, t, "ffmpeg-decode-"+name, nil, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info", "-y",
		"-i", in, "-map", "0:v:0", "-fps_mode", "passthrough",
		"-vf", "showinfo,crop=iw/8:ih/8:0:0,scale=1:1:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", rgb)
	out, _ := os.ReadFile(rgb)
	lines := reShowinfo.FindAllStringSubmatch(r.out, -1)
	if r.exitCode != 0 || len(lines) == 0 {
		return nil, fmt.Errorf("%s: no frame decoded (ffmpeg exit %d, see artifacts/ffmpeg-decode-%s.log)", name, r.exitCode, name)
	}
	if len(out) != 3*len(lines) {
		return nil, fmt.Errorf("%s: %d frames logged but %d bytes of colour", name, len(lines), len(out))
	}
	frames := make([]frameInfo, len(lines))
	for i, m := range lines {
		f := &frames[i]
		f.pts, _ = strconv.ParseFloat(m[1], 64)
		f.width, _ = strconv.Atoi(m[2])
		f.height, _ = strconv.Atoi(m[3])
		f.corner = [3]int{int(out[3*i]), int(out[3*i+1]), int(out[3*i+2])}
	}
	return frames, nil
}

// picRun is a stretch of consecutive frames that are all slate or all picture, of one size.
type picRun struct {
	slate         bool
	width, height int
	frames        int
	from, to      float64 // first and last frame's time, seconds
}

func (r picRun) String() string {
	what := "picture"
	if r.slate {
		what = "slate"
	}
	return fmt.Sprintf("%s %dx%d x%d (%.1fs)", what, r.width, r.height, r.frames, r.to-r.from)
}

// runsOf groups frames into runs; a run of fewer than minFrames frames (a frame or two at a
// switch) joins the run before it.
func runsOf(frames []frameInfo, minFrames int) []picRun {
	var runs []picRun
	for _, f := range frames {
		s := isSlate(f.corner)
		if n := len(runs); n > 0 && runs[n-1].slate == s && runs[n-1].width == f.width && runs[n-1].height == f.height {
			runs[n-1].frames++
			runs[n-1].to = f.pts
			continue
		}
		runs = append(runs, picRun{slate: s, width: f.width, height: f.height, frames: 1, from: f.pts, to: f.pts})
	}
	var out []picRun
	for _, r := range runs {
		n := len(out)
		switch {
		case n > 0 && r.frames < minFrames:
			out[n-1].frames += r.frames
			out[n-1].to = r.to
		case n > 0 && out[n-1].slate == r.slate && out[n-1].width == r.width && out[n-1].height == r.height:
			out[n-1].frames += r.frames // the two sides of a short run that was folded in
			out[n-1].to = r.to
		default:
			out = append(out, r)
		}
	}
	return out
}

// slatePattern is the runs' slate/picture order as text ("PSPSP"; runs that differ only in
// size count once).
func slatePattern(runs []picRun) string {
	var b strings.Builder
	for _, r := range runs {
		c := byte('P')
		if r.slate {
			c = 'S'
		}
		if b.Len() == 0 || b.String()[b.Len()-1] != c {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func runsText(runs []picRun) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// outputRuns decodes both outputs of a session (the SRT receiver's file and every recording
// segment) and returns their runs, keyed "srt" and "recording".
func (s *session) outputRuns(ctx context.Context, t *T, minFrames int) map[string][]picRun {
	segs, _ := filepath.Glob(filepath.Join(s.rec, "*.ts"))
	sort.Strings(segs)
	out := map[string][]picRun{}
	for _, o := range []struct {
		name  string
		files []string
	}{{"srt", []string{s.recv}}, {"recording", segs}} {
		frames, err := decodeFrames(ctx, t, s.name+"-"+o.name, o.files...)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		runs := runsOf(frames, minFrames)
		t.Fact(o.name+"_runs", "%s", runsText(runs))
		out[o.name] = runs
	}
	return out
}
