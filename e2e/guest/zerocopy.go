package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// zeroCopyFrames is how many frames each rung encodes: enough that per-frame work outweighs
// GStreamer's start-up in the CPU comparison, few enough for TCG (about 5 s per run).
const zeroCopyFrames = 60

var (
	reExported = regexp.MustCompile(`<v4l2src\d+:pool\d+:src:allocator> exported DMABUF as fd (\d+)`)
	reImported = regexp.MustCompile(`<v4l2fwhtenc\d+:pool\d+:sink:allocator> \[\d+\] imported DMABUF as fd (\d+)`)
)

// encodeRun encodes zeroCopyFrames frames from vivid with vicodec (v4l2fwhtenc) in one of the
// two rungs and counts the encoded frames that came out (one file per frame).
func encodeRun(ctx context.Context, t *T, rung, srcIO, encIO string, frames int) (gstRun, int) {
	dir := filepath.Join(os.TempDir(), "fwht-"+rung)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := runLogged(ctx, t, fmt.Sprintf("zero-copy-%s-%d", rung, frames),
		[]string{"GST_DEBUG=v4l2allocator:6", "GST_DEBUG_NO_COLOR=1"},
		"gst-launch-1.0", "v4l2src", "device="+t.e.vivid, "io-mode="+srcIO, fmt.Sprintf("num-buffers=%d", frames),
		"!", "v4l2fwhtenc", "output-io-mode="+encIO,
		"!", "multifilesink", "location="+filepath.Join(dir, "%05d.fwht"))
	if r.exitCode != 0 {
		t.Fatalf("%s rung: gst-launch exit %d: %s", rung, r.exitCode, lastLines([]byte(r.out), 4))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.fwht"))
	return r, len(files)
}

// gstZeroCopy: scenario 2 at the GStreamer level. With v4l2src exporting its buffers as dmabuf
// and v4l2fwhtenc importing them, the encoder must queue exactly the fds the capture exported
// (GStreamer's own allocator log), once per frame; the mmap rung must not. The CPU time of
// both runs on the same input is compared.
func gstZeroCopy(ctx context.Context, t *T) {
	dm, n := encodeRun(ctx, t, "dmabuf", "dmabuf", "dmabuf-import", zeroCopyFrames)
	if n != zeroCopyFrames {
		t.Errorf("dmabuf rung: %d encoded frames, want %d", n, zeroCopyFrames)
	}
	exported := map[string]bool{}
	for _, m := range reExported.FindAllStringSubmatch(dm.out, -1) {
		exported[m[1]] = true
	}
	imports, foreign := 0, 0
	for _, m := range reImported.FindAllStringSubmatch(dm.out, -1) {
		imports++
		if !exported[m[1]] {
			foreign++
		}
	}
	t.Fact("dmabuf_exported_fds", "%d", len(exported))
	t.Fact("dmabuf_imports", "%d", imports)
	switch {
	case len(exported) == 0:
		t.Errorf("v4l2src exported no dmabuf (see artifacts/zero-copy-dmabuf.log)")
	case imports < zeroCopyFrames:
		t.Errorf("v4l2fwhtenc imported %d dmabufs for %d frames: some frames were copied", imports, zeroCopyFrames)
	case foreign > 0:
		t.Errorf("%d imported fds were not exported by v4l2src", foreign)
	}

	mm, n := encodeRun(ctx, t, "mmap", "mmap", "mmap", zeroCopyFrames)
	if n != zeroCopyFrames {
		t.Errorf("mmap rung: %d encoded frames, want %d", n, zeroCopyFrames)
	}
	if reImported.MatchString(mm.out) {
		t.Errorf("the mmap rung imported dmabuf: the comparison is void")
	}
	// Start-up (registry, plugins, negotiation) costs both rungs the same: a 2-frame run of
	// each is subtracted so the ratios compare the per-frame work. System time includes
	// vicodec's encode, which v4l2-mem2mem runs in the context of the process queueing the
	// buffer; user time is where the mmap rung's copy of each frame shows.
	dm0, _ := encodeRun(ctx, t, "dmabuf", "dmabuf", "dmabuf-import", 2)
	mm0, _ := encodeRun(ctx, t, "mmap", "mmap", "mmap", 2)
	per := func(full, base time.Duration) time.Duration {
		return (full - base) / time.Duration(zeroCopyFrames-2)
	}
	t.Timing("dmabuf_cpu", dm.cpu)
	t.Timing("mmap_cpu", mm.cpu)
	t.Timing("dmabuf_wall", dm.wall)
	t.Timing("mmap_wall", mm.wall)
	dmf, mmf := per(dm.cpu, dm0.cpu), per(mm.cpu, mm0.cpu)
	dmu, mmu := per(dm.user, dm0.user), per(mm.user, mm0.user)
	t.Timing("dmabuf_cpu_per_frame", dmf)
	t.Timing("mmap_cpu_per_frame", mmf)
	t.Timing("dmabuf_user_per_frame", dmu)
	t.Timing("mmap_user_per_frame", mmu)
	if dmf > 0 {
		t.Fact("cpu_ratio_mmap_over_dmabuf", "%.2f", float64(mmf)/float64(dmf))
	}
	if dmu > 0 {
		t.Fact("user_cpu_ratio_mmap_over_dmabuf", "%.2f", float64(mmu)/float64(dmu))
	}
}
