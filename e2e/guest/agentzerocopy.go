package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Scenario 2 in the running agent: capboxd with the fwht test configuration (vicodec's
// v4l2fwhtenc standing in for a hardware encoder) on the dmabuf-import rung, proven from
// GStreamer's own allocator log inside capboxd, and the same input on the mmap rung
// (encode.zero_copy: false) for the CPU comparison.

// In capboxd the capture element keeps GStreamer's default name (v4l2srcN) and the encoder
// is named by the plan ("encoder"); both logs come from gstv4l2allocator.c at LOG level.
var (
	reAgentExported = regexp.MustCompile(`<(v4l2src\d+):pool\d+:src:allocator> exported DMABUF as fd (\d+)`)
	reAgentImported = regexp.MustCompile(`<([\w-]+):pool\d+:sink:allocator> \[\d+\] imported DMABUF as fd (\d+)`)
)

// zeroCopyWindow is how long each rung's CPU time is measured once frames flow.
const zeroCopyWindow = 10 * time.Second

// fwhtMagic starts every FWHT frame: magic1 0x4f4f4f4f, magic2 0xffffffff
// (struct fwht_cframe_hdr, drivers/media/test-drivers/vicodec/codec-fwht.h, 6.1).
var fwhtMagic = []byte{0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff}

// fwhtHeaderSize is sizeof(struct fwht_cframe_hdr): eleven 32-bit fields; the compressed
// size is the last one (big-endian) and that many bytes follow the header.
const fwhtHeaderSize = 44

// fwhtFrames walks a raw FWHT stream frame by frame and returns how many whole frames it
// holds and the size of the first. A stream that does not parse is an error: the recording
// is the encoder's output as it came.
func fwhtFrames(b []byte) (n, width, height int, err error) {
	for off := 0; off+fwhtHeaderSize <= len(b); n++ {
		h := b[off : off+fwhtHeaderSize]
		if string(h[:8]) != string(fwhtMagic) {
			return n, width, height, fmt.Errorf("no FWHT header at byte %d (frame %d)", off, n)
		}
		if n == 0 {
			width, height = int(binary.BigEndian.Uint32(h[12:])), int(binary.BigEndian.Uint32(h[16:]))
		}
		size := int(binary.BigEndian.Uint32(h[40:]))
		if off+fwhtHeaderSize+size > len(b) {
			break // the frame being written
		}
		off += fwhtHeaderSize + size
	}
	return n, width, height, nil
}

// procCPU is a process's user and system time so far (/proc/PID/stat fields 14 and 15,
// in clock ticks of 10 ms: USER_HZ is 100 on x86 and arm64). It includes the work vicodec
// does in the kernel for the thread that queues a buffer (v4l2-mem2mem runs the job there).
func procCPU(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return time.Duration(u) * 10 * time.Millisecond, time.Duration(k) * 10 * time.Millisecond, nil
}

// fwhtRun is what one rung of the running agent did.
type fwhtRun struct {
	rung            string // the plan's encoder rung, from capboxd's log
	frames          int    // FWHT frames written in the measuring window
	totalFrames     int    // in the whole recording
	width, height   int
	cpu, user       time.Duration // in the window
	exported        map[string]bool
	imports, others int // dmabuf imports by the encoder; of them, fds v4l2src did not export
}

// runFWHT runs capboxd on one rung until frames flow, measures its CPU time over
// zeroCopyWindow, stops it, and reads its log and recording.
func runFWHT(ctx context.Context, t *T, rung string, copying bool) fwhtRun {
	rec := filepath.Join(os.TempDir(), "fwht-agent-"+rung)
	_ = os.RemoveAll(rec)
	t.Cleanup(func() { os.RemoveAll(rec) })
	file := filepath.Join(rec, "capbox-fwht.fwht")
	agent := startAgent(ctx, t, "fwht-"+rung, agentConfig{codec: "fwht", maxFPS: 60, copying: copying, record: rec},
		"GST_DEBUG=v4l2allocator:6", "GST_DEBUG_NO_COLOR=1")
	pid := agent.cmd.Process.Pid
	count := func() (int, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return 0, err
		}
		n, _, _, err := fwhtFrames(b)
		return n, err
	}
	d, err := waitFor(ctx, startLimit, func() (bool, error) {
		if agent.exited() {
			t.Fatalf("%s rung: capboxd run stopped: %v: %s", rung, agent.err, lastLines([]byte(agent.buf.String()), 3))
		}
		n, err := count()
		return n >= 3, err
	})
	if err != nil {
		t.Fatalf("%s rung: no FWHT frames recorded: %v", rung, err)
	}
	t.Timing(rung+"_first_frames", d)
	n0, _ := count()
	u0, s0, err0 := procCPU(pid)
	time.Sleep(zeroCopyWindow)
	n1, _ := count()
	u1, s1, err1 := procCPU(pid)
	if err := errors.Join(err0, err1); err != nil {
		t.Fatalf("%s rung: capboxd's CPU time: %v", rung, err)
	}
	if !agent.stop(sigterm, t.e.stopGrace()) {
		t.Errorf("%s rung: capboxd did not stop within %s of SIGTERM", rung, t.e.stopGrace())
	}
	r := fwhtRun{frames: n1 - n0, cpu: u1 + s1 - u0 - s0, user: u1 - u0, exported: map[string]bool{}}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s rung: %v", rung, err)
	}
	if r.totalFrames, r.width, r.height, err = fwhtFrames(b); err != nil {
		t.Errorf("%s rung: the recording is not a clean FWHT stream: %v", rung, err)
	}

	// Only the running pipeline counts: the encoder trial before it also imports.
	log := agent.buf.String()
	if i := strings.LastIndex(log, `msg="pipeline planned"`); i >= 0 {
		if m := regexp.MustCompile(`rung=(\S+)`).FindStringSubmatch(log[i:]); m != nil {
			r.rung = m[1]
		}
		log = log[i:]
	}
	for _, m := range reAgentExported.FindAllStringSubmatch(log, -1) {
		r.exported[m[2]] = true
	}
	for _, m := range reAgentImported.FindAllStringSubmatch(log, -1) {
		r.imports++
		if !r.exported[m[2]] {
			r.others++
		}
	}
	return r
}

// agentZeroCopyRun: scenario 2 proven in the running agent. On the dmabuf-import rung every
// frame the encoder took was a dmabuf that capboxd's own v4l2src exported (fd matching in
// GStreamer's allocator log), and the recording is a clean FWHT stream; on the mmap rung there
// is no import. The CPU time per frame of both is reported with their ratio.
func agentZeroCopyRun(ctx context.Context, t *T) {
	dm := runFWHT(ctx, t, "dmabuf", false)
	t.Fact("dmabuf_rung", "%s", dm.rung)
	t.Fact("dmabuf_exported_fds", "%d", len(dm.exported))
	t.Fact("dmabuf_imports", "%d", dm.imports)
	t.Fact("dmabuf_frames", "%d in the window, %d recorded at %dx%d", dm.frames, dm.totalFrames, dm.width, dm.height)
	switch {
	case dm.rung != "dmabuf-import":
		t.Errorf("capboxd ran the %q rung, want dmabuf-import", dm.rung)
	case len(dm.exported) == 0:
		t.Errorf("capboxd's v4l2src exported no dmabuf (see artifacts/fwht-dmabuf-capboxd.log)")
	case dm.imports < dm.totalFrames:
		t.Errorf("the encoder imported %d dmabufs for %d recorded frames: some frames were copied", dm.imports, dm.totalFrames)
	case dm.others > 0:
		t.Errorf("%d imported fds were not exported by capboxd's v4l2src", dm.others)
	}
	if dm.width != 1280 || dm.height != 720 {
		t.Errorf("FWHT frames are %dx%d, want the input's 1280x720", dm.width, dm.height)
	}

	mm := runFWHT(ctx, t, "mmap", true)
	t.Fact("mmap_rung", "%s", mm.rung)
	t.Fact("mmap_frames", "%d in the window, %d recorded", mm.frames, mm.totalFrames)
	if mm.rung != "mmap-copy" {
		t.Errorf("with encode.zero_copy false capboxd ran the %q rung, want mmap-copy", mm.rung)
	}
	if mm.imports > 0 || len(mm.exported) > 0 {
		t.Errorf("the mmap rung exported %d and imported %d dmabufs: the comparison is void", len(mm.exported), mm.imports)
	}
	if dm.frames == 0 || mm.frames == 0 {
		t.Fatalf("no frames in a measuring window (dmabuf %d, mmap %d)", dm.frames, mm.frames)
	}
	dmf, mmf := dm.cpu/time.Duration(dm.frames), mm.cpu/time.Duration(mm.frames)
	dmu, mmu := dm.user/time.Duration(dm.frames), mm.user/time.Duration(mm.frames)
	t.Timing("dmabuf_cpu_per_frame", dmf)
	t.Timing("mmap_cpu_per_frame", mmf)
	t.Timing("dmabuf_user_per_frame", dmu)
	t.Timing("mmap_user_per_frame", mmu)
	t.Fact("fps_dmabuf_mmap", "%.1f/%.1f", float64(dm.frames)/zeroCopyWindow.Seconds(), float64(mm.frames)/zeroCopyWindow.Seconds())
	if dmf > 0 {
		t.Fact("cpu_ratio_mmap_over_dmabuf", "%.2f", float64(mmf)/float64(dmf))
	}
	if dmu > 0 {
		t.Fact("user_cpu_ratio_mmap_over_dmabuf", "%.2f", float64(mmu)/float64(dmu))
	}
}
