package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// liveLimit is the bound for reporting a signal change (1.5 s; t.e.live() scales it for
// the emulated aarch64 CPU), and startLimit how long the agent may take to go live under TCG.
const (
	liveLimit   = 1500 * time.Millisecond
	startLimit  = 120 * time.Second
	replugLimit = 15 * time.Second
	fleetLimit  = 30 * time.Second
)

// session is a running agent with its loopback fleet broker, SRT receiver and recording.
type session struct {
	name  string
	fleet *fleetWatch
	agent *bgProc
	rx    *bgProc
	recv  string // what the SRT receiver got
	rec   string // the recording folder
	// briefSlates: slates shorter than minSlate are expected (checkSlates).
	briefSlates bool
}

// startSRTReceiver listens for the agent's SRT output and writes what arrives to file. Its
// latency is 2 s (SRT takes the larger of both ends'): with the default 120 ms, packets
// that the starved emulated CPU delivers late are dropped as too late, and the file gets
// next to nothing.
func startSRTReceiver(ctx context.Context, t *T, name string, port int, file string) *bgProc {
	return startLogged(ctx, t, name, nil, "gst-launch-1.0", "-e", "srtsrc",
		fmt.Sprintf("uri=srt://127.0.0.1:%d?mode=listener", port), "latency=2000",
		"!", "filesink", "buffer-mode=unbuffered", "location="+file)
}

// sessionOpts say what the agent of a row runs on.
type sessionOpts struct {
	// input is a vivid preset the source is set to first ("" keeps vivid's 1280x720p60).
	input string
	// small encodes within 320x240 (else the input's own size).
	small bool
	// maxFPS is encode.max_fps (0: 15).
	maxFPS int
	// dropPct is vivid's percentage_of_dropped_buffers: the share of frames it skips.
	dropPct int
}

// rowOpts is what the rows about signal, hotplug and the fleet run on: 576p50 from vivid with
// 90 % of its frames skipped (5 a second reach the pipeline) and x264 at 5 fps within
// 320x240. The capture's conversion and x264 must stay well under the one emulated CPU: an
// encode that cannot keep up falls behind for good (videorate fills every gap with
// duplicates that must be encoded too, and the outputs' queues are unbounded), and the
// outputs then lag the agent's switches by tens of seconds.
var rowOpts = sessionOpts{input: agentInput, small: true, maxFPS: 5, dropPct: 90}

// startSession runs the agent with x264 on vivid, an SRT receiver, a recording and the
// fleet broker, and waits until the agent reports streaming.
func startSession(ctx context.Context, t *T, name string, srtPort, mqttPort int, o sessionOpts) *session {
	s := &session{name: name, recv: filepath.Join(os.TempDir(), name+"-srt.ts"), rec: filepath.Join(os.TempDir(), name+"-rec")}
	cpuReport := cpuTop(t, name)
	_ = os.RemoveAll(s.rec)
	_ = os.Remove(s.recv)
	if o.input != "" {
		inputTimings(ctx, t, o.input)
	}
	if o.dropPct > 0 {
		if err := setCtrl(ctx, t.e.vivid, fmt.Sprintf("percentage_of_dropped_buffers=%d", o.dropPct)); err != nil {
			t.Fatalf("%v", err)
		}
		t.Cleanup(func() { _ = setCtrl(context.Background(), t.e.vivid, "percentage_of_dropped_buffers=0") })
	}
	s.fleet = startFleet(ctx, t, mqttPort)
	s.rx = startSRTReceiver(ctx, t, name+"-srt-receiver", srtPort, s.recv)
	start := time.Now()
	s.agent = startAgent(ctx, t, name, agentConfig{codec: "h264", small: o.small, maxFPS: o.maxFPS, srtPort: srtPort, mqttPort: mqttPort, record: s.rec})
	if _, err := waitFor(ctx, fleetLimit, func() (bool, error) {
		if s.agent.exited() {
			t.Fatalf("capboxd run stopped: %v: %s", s.agent.err, lastLines([]byte(s.agent.buf.String()), 2))
		}
		_, ok := s.fleet.find(start, "", nil)
		return ok, errors.New("no message")
	}); err != nil {
		t.NotImplemented("fleet link: capboxd published nothing to the broker in %s (%v)", fleetLimit, err)
	}
	d, err := s.fleet.waitMsg(ctx, start, startLimit, "/state", modeIs("streaming"))
	if err != nil {
		t.Fatalf("the agent never reported mode streaming: %v", err)
	}
	t.Timing("live_after_start", d)
	t.Cleanup(cpuReport)
	return s
}

// stop ends the agent gracefully and the receiver, and checks both outputs decode.
func (s *session) stop(ctx context.Context, t *T) {
	if !s.agent.stop(sigterm, t.e.stopGrace()) {
		t.Errorf("capboxd did not stop within %s of SIGTERM", t.e.stopGrace())
	}
	s.rx.stop(sigint, 5*time.Second)
	if n, info := ffprobeFrames(ctx, t, "srt", s.recv); n == 0 {
		t.Errorf("SRT receiver got nothing decodable: %s", info)
	} else {
		t.Fact("srt_frames", "%d", n)
	}
}

// size is the total size of the recording folder and the received SRT file, in bytes.
func (s *session) size() (rec, srt int64) {
	_ = filepath.Walk(s.rec, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rec += info.Size()
		}
		return nil
	})
	if st, err := os.Stat(s.recv); err == nil {
		srt = st.Size()
	}
	return rec, srt
}

// reported waits for a state message that matches and records its timings: arrival at the
// fleet (asserted within limit) and the agent's own stamp.
func (s *session) reported(ctx context.Context, t *T, name string, at time.Time, limit time.Duration, match func(map[string]any) bool) bool {
	d, stamped, err := s.fleet.waitMsgTS(ctx, at, limit, "/state", match)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false
	}
	t.Timing(name, d)
	t.Timing(name+"_stamped", stamped)
	return true
}

// holdFor is how long each state (signal, no signal, unplugged...) is kept in the rows that
// judge the outputs afterwards: the slate must be on the outputs for a good part of it
// (starting its encoder takes a few seconds under TCG).
const holdFor = 10 * time.Second

// minGrowth is the shortest window over which the outputs must grow.
const minGrowth = 4 * time.Second

// minSlate is the shortest slate (media time) that counts as the outputs carrying it for a
// state held holdFor.
const minSlate = 3.0

// waitOutputs waits until both outputs have data, so that the first state change happens
// with the live picture on the air.
func (s *session) waitOutputs(ctx context.Context, t *T) {
	d, err := waitFor(ctx, startLimit, func() (bool, error) {
		rec, srt := s.size()
		return rec > 64<<10 && srt > 64<<10, fmt.Errorf("recording %d bytes, SRT %d bytes", rec, srt)
	})
	if err != nil {
		t.Fatalf("the outputs get nothing: %v", err)
	}
	t.Timing("outputs_flowing", d)
	time.Sleep(holdFor / 2)
}

// growing checks that both outputs keep growing over d (the slate or the picture).
func (s *session) growing(t *T, what string, d time.Duration) {
	// The rest of a hold can be short or gone when the agent took long to get there (the
	// emulated aarch64 CPU): growth is still judged over a few seconds.
	d = max(d, minGrowth)
	rec0, srt0 := s.size()
	time.Sleep(d)
	if rec1, srt1 := s.size(); rec1 <= rec0 || srt1 <= srt0 {
		t.Errorf("%s: outputs stalled (recording %d->%d bytes, SRT %d->%d bytes)", what, rec0, rec1, srt0, srt1)
	}
	if s.agent.exited() {
		t.Fatalf("capboxd stopped: %v: %s", s.agent.err, lastLines([]byte(s.agent.buf.String()), 3))
	}
}

// checkSlates judges what both outputs carried: the order of slate and picture (want, as
// slatePattern writes it) and that every slate lasted at least minSlate seconds (with
// briefSlates, only the longest one).
func (s *session) checkSlates(ctx context.Context, t *T, want *regexp.Regexp) {
	for name, runs := range s.outputRuns(ctx, t, 3) {
		if got := slatePattern(runs); !want.MatchString(got) {
			t.Errorf("%s carried %s (%s), want %s", name, got, runsText(runs), want)
			continue
		}
		longest := 0.0
		for _, r := range runs {
			if !r.slate {
				continue
			}
			longest = max(longest, r.to-r.from)
			if !s.briefSlates && r.to-r.from < minSlate {
				t.Errorf("%s carried a slate of only %.1f s (%s)", name, r.to-r.from, runsText(runs))
			}
		}
		if s.briefSlates && longest < minSlate {
			t.Errorf("%s carried no slate of %.0f s or more (%s)", name, minSlate, runsText(runs))
		}
	}
}

// agentSignalLoss: scenario 4. Each signal mode is reported (state mode no_signal, the capture
// hungry, the signal state named) within 1.5 s although vivid keeps delivering frames, and
// the signal's return is reported streaming within 1.5 s. Meanwhile both outputs keep
// growing, and decoded afterwards they carried the picture, then the slate for each loss,
// then the picture again: vivid's no-signal frames never reach them.
func agentSignalLoss(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "signal-loss", 9711, 18831, rowOpts)
	t.Cleanup(func() {
		_ = setCtrl(context.Background(), e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent))
	})
	s.waitOutputs(ctx, t)
	states := map[string]string{"no_signal": "no_signal", "no_lock": "no_lock", "out_of_range": "out_of_range"}
	for _, c := range signalCases {
		at := time.Now()
		if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", c.mode)); err != nil {
			t.Fatalf("%v", err)
		}
		s.reported(ctx, t, c.name+"_reported", at, t.e.live(), func(v map[string]any) bool {
			cs, _ := v["capture"].(map[string]any)
			ms, _ := v["moods"].(map[string]any)
			return v["mode"] == "no_signal" && cs["signal"] == states[c.name] && ms["capture"] == "hungry"
		})
		s.growing(t, c.name, holdFor-time.Since(at))
		at = time.Now()
		if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent)); err != nil {
			t.Fatalf("%v", err)
		}
		s.reported(ctx, t, c.name+"_live_again", at, t.e.live(), modeIs("streaming"))
		s.growing(t, c.name+" back", holdFor-time.Since(at))
	}
	s.stop(ctx, t)
	s.checkSlates(ctx, t, regexp.MustCompile(`^PSPSPSP$`))
}

// agentResolutionChange: scenario 5. The source goes from 1280x720p60 to 1920x1080p60: the
// agent reports the new format, and both outputs, decoded afterwards, carry 1280x720 and
// then 1920x1080 to the end. x264 at full size under TCG manages a few frames a second
// (vivid skips 90 % of its frames, the encode is capped at 5 fps), so the 1080p part is held
// long enough for some of them.
func agentResolutionChange(ctx context.Context, t *T) {
	e := t.e
	i1080, err := dvTimingsIndex(ctx, e.vivid, "1920x1080p60")
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := startSession(ctx, t, "resolution", 9712, 18832, sessionOpts{maxFPS: 5, dropPct: 90})
	s.waitOutputs(ctx, t)
	at := time.Now()
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeSelected), fmt.Sprintf("dv_timings=%d", i1080)); err != nil {
		t.Fatalf("%v", err)
	}
	s.reported(ctx, t, "streaming_1080p", at, 10*time.Second, func(v map[string]any) bool {
		c, _ := v["capture"].(map[string]any)
		return v["mode"] == "streaming" && c["format"] == "1080p60"
	})
	s.growing(t, "1080p", 3*holdFor)
	s.stop(ctx, t)
	for name, runs := range s.outputRuns(ctx, t, 2) {
		first, last := runs[0], runs[len(runs)-1]
		if first.slate || first.width != 1280 || first.height != 720 {
			t.Errorf("%s starts with %s, want the 1280x720 picture", name, first)
		}
		if last.slate || last.width != 1920 || last.height != 1080 || last.frames < 3 {
			t.Errorf("%s ends with %s, want the 1920x1080 picture (3 frames or more)", name, last)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(s.rec, "*.ts"))
	t.Fact("recording_segments", "%d", len(segs))
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// fdKinds counts a process's open descriptors by what they refer to: a path, or the kind of
// a socket, pipe or anonymous inode ("socket", "pipe", "anon_inode:[eventfd]", "dmabuf").
func fdKinds(pid int) map[string]int {
	kinds := map[string]int{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, en := range ents {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, en.Name()))
		if err != nil {
			continue
		}
		if kind, _, ok := strings.Cut(target, ":["); ok && (kind == "socket" || kind == "pipe") {
			target = kind
		}
		kinds[target]++
	}
	return kinds
}

// kindsDiff names what there is more of in now than in before ("socket +2"), for a report.
func kindsDiff(before, now map[string]int) string {
	var more []string
	for kind, n := range now {
		if n > before[kind] {
			more = append(more, fmt.Sprintf("%s +%d", kind, n-before[kind]))
		}
	}
	slices.Sort(more)
	if len(more) == 0 {
		return "nothing"
	}
	return strings.Join(more, ", ")
}

// threads is a process's thread count (/proc/PID/status): a GStreamer pipeline left behind
// keeps its streaming threads.
func threads(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// videoHolds lists what of a process still refers to a video node: open descriptors and
// mappings (a mapped V4L2 buffer keeps the device file, and so the module, in use).
func videoHolds(pid int) []string {
	var out []string
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, en := range ents {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, en.Name())); err == nil && strings.HasPrefix(target, "/dev/video") {
			out = append(out, "fd "+en.Name()+" -> "+target)
		}
	}
	maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	n := 0
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.Contains(line, "/dev/video") {
			n++
		}
	}
	if n > 0 {
		out = append(out, fmt.Sprintf("%d mappings of /dev/video*", n))
	}
	return out
}

// notStreaming matches a state that is not streaming and says why: the capture is not happy.
func notStreaming(v map[string]any) bool {
	ms, _ := v["moods"].(map[string]any)
	return v["mode"] != "streaming" && ms["capture"] != "happy"
}

// agentHotplug: scenario 6. Under the running agent: a fatal streaming error (vivid's
// inject_fatal_streaming_error: EIO), a forced disconnect (vivid's disconnect control: every
// handle answers ENODEV) and an unplug and replug (the vivid device unbound from its driver and
// bound again: the node goes away and comes back anew). Each is reported within 1.5 s (the
// state, and evt/signal_lost with gone for the last two). After the error the agent is live
// again. vivid registers a disconnected node again by itself only once its last handle is
// closed (vivid_fop_release), so the input coming back after the disconnect proves that the
// agent let go of every descriptor of the vanished node. After the replug the agent finds the
// input by its stable path and is live again. Descriptor counts are back where they were;
// the outputs keep growing throughout and, decoded afterwards, carried the slate while the
// input was away.
func agentHotplug(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "hotplug", 9713, 18833, rowOpts)
	pid := s.agent.cmd.Process.Pid
	s.waitOutputs(ctx, t)
	fds0, thr0 := openFDs(pid), threads(pid)
	holds0, kinds0 := videoHolds(pid), fdKinds(pid)
	checkFDs := func(after string) {
		// A torn-down pipeline's bus (two descriptors) is freed when the Go wrapper holding it
		// is collected, which capboxd asks for within seconds of a teardown: a leak is a count
		// that does not come back, not one that takes a moment.
		_, _ = waitFor(ctx, t.e.slow(10*time.Second), func() (bool, error) { return openFDs(pid) <= fds0, nil })
		fds, thr := openFDs(pid), threads(pid)
		t.Fact(after+"_fds_before_after", "%d/%d", fds0, fds)
		t.Fact(after+"_threads_before_after", "%d/%d", thr0, thr)
		if fds > fds0 {
			t.Errorf("capboxd holds %d descriptors after the %s, %d before (video nodes: %v, before: %v; more of: %s)", fds, after, fds0, videoHolds(pid), holds0, kindsDiff(kinds0, fdKinds(pid)))
		}
		// Go keeps the OS threads it made for a peak of blocking cgo calls (each pipeline's bus
		// reader, more of them while an old and a new front overlap) and reuses them: a few
		// more than at start is that pool, a leak grows with every cycle.
		if thr > thr0+6 {
			t.Errorf("capboxd runs %d threads after the %s, %d before", thr, after, thr0)
		}
	}

	at := time.Now()
	if err := setCtrl(ctx, e.vivid, "inject_fatal_streaming_error=1"); err != nil {
		t.Fatalf("%v", err)
	}
	s.reported(ctx, t, "eio_reported", at, t.e.live(), func(v map[string]any) bool { return v["mode"] != "streaming" })
	s.reported(ctx, t, "live_after_eio", at, replugLimit, modeIs("streaming"))
	s.growing(t, "after the streaming error", holdFor-time.Since(at))
	checkFDs("eio")

	at = time.Now()
	if err := setCtrl(ctx, e.vivid, "disconnect=1"); err != nil {
		t.Fatalf("%v", err)
	}
	s.lostGone(ctx, t, "disconnect", at)
	if !s.reported(ctx, t, "live_after_disconnect", at, replugLimit, modeIs("streaming")) {
		_ = os.WriteFile(filepath.Join(e.artifact, "hotplug-holds.txt"), []byte(strings.Join(videoHolds(pid), "\n")+"\n"), 0o644)
		t.Errorf("vivid never came back from the disconnect: capboxd holds %v (before: %v)", videoHolds(pid), holds0)
	}
	s.growing(t, "after the disconnect", holdFor-time.Since(at))
	checkFDs("disconnect")

	at = time.Now()
	if err := os.WriteFile("/sys/bus/platform/drivers/vivid/unbind", []byte("vivid.0"), 0); err != nil {
		t.Fatalf("unbind vivid.0: %v", err)
	}
	s.lostGone(ctx, t, "unplug", at)
	s.growing(t, "unplugged", holdFor-time.Since(at))

	at = time.Now()
	if err := os.WriteFile("/sys/bus/platform/drivers/vivid/bind", []byte("vivid.0"), 0); err != nil {
		t.Fatalf("bind vivid.0: %v", err)
	}
	_ = udevSettle(ctx)
	if nodes, err := findNodes(); err == nil && nodes["vivid-000-vid-cap"] != "" {
		e.vivid = nodes["vivid-000-vid-cap"]
	}
	// The device comes back with its defaults (720p60, no frames skipped): the agent follows
	// whatever the source sends; the skipping is set again to keep the CPU for the checks.
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("percentage_of_dropped_buffers=%d", rowOpts.dropPct)); err != nil {
		t.Errorf("%v", err)
	}
	s.reported(ctx, t, "live_after_replug", at, replugLimit, modeIs("streaming"))
	if d, err := s.fleet.waitMsg(ctx, at, replugLimit, "/evt/signal_locked", nil); err != nil {
		t.Errorf("replug: no evt/signal_locked: %v", err)
	} else {
		t.Timing("replug_evt_signal_locked", d)
	}
	// On a slow guest the replugged device's first seconds (720p60, every frame, until the
	// skipping is set again) starve the one emulated CPU and the SRT receiver drops what comes
	// later than its latency: the picture is held longer there, so that what follows reaches it.
	s.growing(t, "replugged", t.e.slow(holdFor)-time.Since(at))
	checkFDs("replug")
	s.stop(ctx, t)
	// The picture; slates for the error and the disconnect, both brief (the agent is back as
	// soon as the device is), which may fold into the picture; the slate while unplugged,
	// held holdFor; the picture after the replug.
	s.briefSlates = true
	s.checkSlates(ctx, t, regexp.MustCompile(`^P(SP){1,3}$`))
}

// lostGone waits for the report of an input that went away: the state within 1.5 s, and
// evt/signal_lost saying gone.
func (s *session) lostGone(ctx context.Context, t *T, name string, at time.Time) {
	s.reported(ctx, t, name+"_reported", at, t.e.live(), notStreaming)
	if d, err := s.fleet.waitMsg(ctx, at, t.e.live(), "/evt/signal_lost", func(v map[string]any) bool {
		data, _ := v["data"].(map[string]any)
		return data["gone"] == true
	}); err != nil {
		t.Errorf("%s: evt/signal_lost with gone=true: %v", name, err)
	} else {
		t.Timing(name+"_evt_signal_lost", d)
	}
}

// agentMQTTEvents: scenario 7. Through mosquitto in the guest the fleet sees the box's birth
// and its retained meta (with the detection), telemetry, every part happy while streaming,
// evt/signal_lost and the capture hungry without signal, evt/signal_locked and happy again,
// and the graceful offline status when it stops.
func agentMQTTEvents(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "mqtt", 9714, 18834, rowOpts)
	if _, ok := s.fleet.find(time.Time{}, "/status", func(v map[string]any) bool { return v["online"] == true && v["state"] == "ready" }); !ok {
		t.Errorf("no birth (status online=true, state ready) from the box")
	}
	if _, ok := s.fleet.find(time.Time{}, "/meta", func(v map[string]any) bool {
		det, _ := v["detection"].(map[string]any)
		ins, _ := det["video_inputs"].([]any)
		return len(ins) > 0
	}); !ok {
		t.Errorf("no meta with the detected video inputs")
	}
	if _, err := s.fleet.waitMsg(ctx, time.Time{}, 10*time.Second, "/telemetry", nil); err != nil {
		t.Errorf("no telemetry: %v", err)
	}
	happy := func(v map[string]any) bool {
		ms, _ := v["moods"].(map[string]any)
		return v["mood"] == "happy" && ms["capture"] == "happy" && ms["encoder"] == "happy"
	}
	if _, err := s.fleet.waitMsg(ctx, time.Time{}, fleetLimit, "/state", happy); err != nil {
		t.Errorf("never a happy state while streaming: %v", err)
	}
	t.Cleanup(func() {
		_ = setCtrl(context.Background(), e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent))
	})
	at := time.Now()
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeNoSignal)); err != nil {
		t.Fatalf("%v", err)
	}
	if d, err := s.fleet.waitMsg(ctx, at, t.e.live(), "/evt/signal_lost", func(v map[string]any) bool { return v["part"] == "capture" }); err != nil {
		t.Errorf("evt/signal_lost: %v", err)
	} else {
		t.Timing("evt_signal_lost", d)
	}
	s.reported(ctx, t, "hungry_mood", at, t.e.live(), func(v map[string]any) bool {
		ms, _ := v["moods"].(map[string]any)
		return ms["capture"] == "hungry" && v["mood"] == "hungry"
	})
	at = time.Now()
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent)); err != nil {
		t.Fatalf("%v", err)
	}
	if d, err := s.fleet.waitMsg(ctx, at, t.e.live(), "/evt/signal_locked", func(v map[string]any) bool { return v["msg"] == "576p50" }); err != nil {
		t.Errorf("evt/signal_locked (576p50): %v", err)
	} else {
		t.Timing("evt_signal_locked", d)
	}
	if d, err := s.fleet.waitMsg(ctx, at, replugLimit, "/state", happy); err != nil {
		t.Errorf("not happy again after the signal's return: %v", err)
	} else {
		t.Timing("happy_again", d)
	}
	at = time.Now()
	s.stop(ctx, t)
	if _, err := s.fleet.waitMsg(ctx, at, 5*time.Second, "/status", func(v map[string]any) bool {
		return v["online"] == false && v["state"] == "disconnected" && v["reason"] == "shutdown"
	}); err != nil {
		t.Errorf("no graceful offline status (disconnected, shutdown) after SIGTERM: %v", err)
	}
}
