package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// liveLimit is the bound for reporting a signal change (1.5 s), and startLimit how
// long the agent may take to go live under TCG.
const (
	liveLimit   = 1500 * time.Millisecond
	startLimit  = 120 * time.Second
	replugLimit = 15 * time.Second
	fleetLimit  = 30 * time.Second
)

// session is a running agent with its loopback fleet broker, SRT receiver and recording.
type session struct {
	fleet *fleetWatch
	agent *bgProc
	rx    *bgProc
	recv  string // what the SRT receiver got
	rec   string // the recording folder
}

// startSession runs the agent with x264 on vivid at agentInput, an SRT receiver, a recording
// and the fleet broker. small encodes within 320x240: the rows about signal, hotplug and the
// fleet do not need the full picture, and x264 at 576p takes all of the one emulated CPU,
// which delays everything else in the box by seconds.
func startSession(ctx context.Context, t *T, name string, srtPort, mqttPort int, small bool) *session {
	s := &session{recv: filepath.Join(os.TempDir(), name+"-srt.ts"), rec: filepath.Join(os.TempDir(), name+"-rec")}
	_ = os.RemoveAll(s.rec)
	_ = os.Remove(s.recv)
	lowResInput(ctx, t)
	s.fleet = startFleet(ctx, t, mqttPort)
	s.rx = startLogged(ctx, t, name+"-srt-receiver", nil, "gst-launch-1.0", "-e", "srtsrc",
		fmt.Sprintf("uri=srt://127.0.0.1:%d?mode=listener", srtPort), "!", "filesink", "buffer-mode=unbuffered", "location="+s.recv)
	start := time.Now()
	s.agent = startAgent(ctx, t, name, agentConfig{codec: "h264", small: small, srtPort: srtPort, mqttPort: mqttPort, record: s.rec})
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
	return s
}

// stop ends the agent gracefully and the receiver, and checks both outputs decode.
func (s *session) stop(ctx context.Context, t *T) {
	if !s.agent.stop(sigterm, 15*time.Second) {
		t.Errorf("capboxd did not stop within 15 s of SIGTERM")
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

// onAirLimit bounds how long the outputs may take to show the slate or the live picture
// after the agent reported the change: a new front under TCG takes seconds to build and
// reach its first keyframe.
const onAirLimit = 30 * time.Second

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

// agentSignalLoss: scenario 4. Each signal mode is reported (state mode no_signal, the capture
// hungry, the signal state named) within 1.5 s although vivid keeps delivering frames; both
// outputs then carry the slate (decoded) and keep growing; the signal back is reported
// streaming within 1.5 s and the live picture returns to both outputs.
func agentSignalLoss(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "signal-loss", 9711, 18831, true)
	t.Cleanup(func() {
		_ = setCtrl(context.Background(), e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent))
	})
	if d, err := s.waitOnAir(ctx, t, "start", false, onAirLimit); err != nil {
		t.Fatalf("the outputs do not carry the live picture at start: %v", err)
	} else {
		t.Timing("live_on_air_at_start", d)
	}
	states := map[string]string{"no_signal": "no_signal", "no_lock": "no_lock", "out_of_range": "out_of_range"}
	for _, c := range signalCases {
		at := time.Now()
		if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", c.mode)); err != nil {
			t.Fatalf("%v", err)
		}
		s.reported(ctx, t, c.name+"_reported", at, liveLimit, func(v map[string]any) bool {
			cs, _ := v["capture"].(map[string]any)
			ms, _ := v["moods"].(map[string]any)
			return v["mode"] == "no_signal" && cs["signal"] == states[c.name] && ms["capture"] == "hungry"
		})
		if d, err := s.waitOnAir(ctx, t, c.name, true, onAirLimit); err != nil {
			t.Errorf("%s: the outputs do not carry the slate: %v", c.name, err)
		} else {
			t.Timing(c.name+"_slate_on_air", d)
		}
		rec0, srt0 := s.size()
		time.Sleep(3 * time.Second)
		rec1, srt1 := s.size()
		if rec1 <= rec0 || srt1 <= srt0 {
			t.Errorf("%s: outputs stalled during the slate (recording %d->%d bytes, SRT %d->%d bytes)", c.name, rec0, rec1, srt0, srt1)
		}
		if s.agent.exited() {
			t.Fatalf("capboxd stopped: %v", s.agent.err)
		}
		at = time.Now()
		if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent)); err != nil {
			t.Fatalf("%v", err)
		}
		s.reported(ctx, t, c.name+"_live_again", at, liveLimit, modeIs("streaming"))
		if d, err := s.waitOnAir(ctx, t, c.name+"-back", false, onAirLimit); err != nil {
			t.Errorf("%s: the live picture does not return to the outputs: %v", c.name, err)
		} else {
			t.Timing(c.name+"_live_on_air", d)
		}
	}
	s.stop(ctx, t)
}

// agentResolutionChange: scenario 5. A resolution change on the input (576p50 -> 720p60
// here: x264 under TCG cannot keep up with 1080p60; the kernel-level row proves 720p -> 1080p):
// the agent reports the new format, and the SRT stream and the recording carry 1280x720.
func agentResolutionChange(ctx context.Context, t *T) {
	e := t.e
	i720, err := dvTimingsIndex(ctx, e.vivid, "1280x720p60")
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := startSession(ctx, t, "resolution", 9712, 18832, false)
	if d, err := s.waitOnAir(ctx, t, "start", false, onAirLimit); err != nil {
		t.Fatalf("the outputs do not carry the live picture at start: %v", err)
	} else {
		t.Timing("live_on_air_at_start", d)
	}
	at := time.Now()
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeSelected), fmt.Sprintf("dv_timings=%d", i720)); err != nil {
		t.Fatalf("%v", err)
	}
	s.reported(ctx, t, "streaming_720p", at, 10*time.Second, func(v map[string]any) bool {
		c, _ := v["capture"].(map[string]any)
		f, _ := c["format"].(string)
		return v["mode"] == "streaming" && f == "720p60"
	})
	d, err := waitFor(ctx, onAirLimit, func() (bool, error) {
		seg, err := newestSegment(s.rec)
		if err != nil {
			return false, err
		}
		var errs []error
		for _, o := range []struct{ name, path string }{{"srt", s.recv}, {"recording", seg}} {
			f, err := tailFrame(ctx, t, "res-"+o.name, o.path)
			if err == nil && (f.width != 1280 || f.height != 720 || isSlate(f.corner)) {
				err = fmt.Errorf("ends in %s", f)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.name, err))
			}
		}
		if len(errs) > 0 {
			time.Sleep(time.Second)
		}
		return len(errs) == 0, errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("the outputs do not carry the live 1280x720 picture: %v", err)
	} else {
		t.Timing("outputs_720p", d)
	}
	s.stop(ctx, t)
	// Every segment still decodes across the change.
	segs, _ := filepath.Glob(filepath.Join(s.rec, "*.ts"))
	for i, seg := range segs {
		if n, info := ffprobeFrames(ctx, t, fmt.Sprintf("res-%d", i), seg); n == 0 {
			t.Errorf("recording segment %s does not decode: %s", filepath.Base(seg), info)
		}
	}
	t.Fact("recording_segments", "%d", len(segs))
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
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

// agentHotplug: scenario 6. Unplug under the running agent (vivid's disconnect: ENODEV), and a
// fatal streaming error (EIO): each is reported within 1.5 s (state and evt/signal_lost for
// the unplug) and the outputs carry the slate; after the unplug the agent lets go of the node
// (rmmod succeeds); after the replug (modprobe: a new node) and after the error it is live
// again. Its descriptor and thread counts return to where they were.
func agentHotplug(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "hotplug", 9713, 18833, true)
	pid := s.agent.cmd.Process.Pid
	if d, err := s.waitOnAir(ctx, t, "start", false, onAirLimit); err != nil {
		t.Fatalf("the outputs do not carry the live picture at start: %v", err)
	} else {
		t.Timing("live_on_air_at_start", d)
	}
	fds0, thr0 := openFDs(pid), threads(pid)

	at := time.Now()
	if err := setCtrl(ctx, e.vivid, "disconnect=1"); err != nil {
		t.Fatalf("%v", err)
	}
	s.reported(ctx, t, "unplug_reported", at, liveLimit, notStreaming)
	if d, err := s.fleet.waitMsg(ctx, at, liveLimit, "/evt/signal_lost", func(v map[string]any) bool {
		data, _ := v["data"].(map[string]any)
		return data["gone"] == true
	}); err != nil {
		t.Errorf("unplug: evt/signal_lost with gone=true: %v", err)
	} else {
		t.Timing("unplug_evt_signal_lost", d)
	}
	if _, err := waitFor(ctx, 15*time.Second, func() (bool, error) {
		err := e.rmmod(ctx, "vivid")
		return err == nil, err
	}); err != nil {
		holds := videoHolds(pid)
		_ = os.WriteFile(filepath.Join(e.artifact, "hotplug-holds.txt"), []byte(strings.Join(holds, "\n")+"\n"), 0o644)
		t.Fatalf("the agent keeps the vanished node: %v; capboxd holds %v", err, holds)
	}
	t.Timing("node_released", time.Since(at))
	if d, err := s.waitOnAir(ctx, t, "unplugged", true, onAirLimit); err != nil {
		t.Errorf("the outputs do not carry the slate while unplugged: %v", err)
	} else {
		t.Timing("slate_on_air", d)
	}
	rec0, srt0 := s.size()
	time.Sleep(2 * time.Second)
	if rec1, srt1 := s.size(); rec1 <= rec0 || srt1 <= srt0 {
		t.Errorf("outputs stalled while the input was unplugged (recording %d->%d, SRT %d->%d bytes)", rec0, rec1, srt0, srt1)
	}

	at = time.Now()
	if err := e.modprobe(ctx, "vivid", vividParams...); err != nil {
		t.Fatalf("%v", err)
	}
	_ = udevSettle(ctx)
	if nodes, err := findNodes(); err == nil && nodes["vivid-000-vid-cap"] != "" {
		e.vivid = nodes["vivid-000-vid-cap"]
	}
	// The module comes back at its default 720p60: the agent follows whatever the source sends.
	s.reported(ctx, t, "live_after_replug", at, replugLimit, modeIs("streaming"))
	if d, err := s.fleet.waitMsg(ctx, at, replugLimit, "/evt/signal_locked", nil); err != nil {
		t.Errorf("replug: no evt/signal_locked: %v", err)
	} else {
		t.Timing("replug_evt_signal_locked", d)
	}
	if d, err := s.waitOnAir(ctx, t, "replugged", false, onAirLimit); err != nil {
		t.Errorf("the live picture does not return to the outputs after the replug: %v", err)
	} else {
		t.Timing("replug_live_on_air", d)
	}

	at = time.Now()
	if err := setCtrl(ctx, e.vivid, "inject_fatal_streaming_error=1"); err != nil {
		t.Fatalf("%v", err)
	}
	s.reported(ctx, t, "eio_reported", at, liveLimit, func(v map[string]any) bool { return v["mode"] != "streaming" })
	s.reported(ctx, t, "live_after_eio", at, replugLimit, modeIs("streaming"))
	if d, err := s.waitOnAir(ctx, t, "after-eio", false, onAirLimit); err != nil {
		t.Errorf("the live picture does not return to the outputs after the streaming error: %v", err)
	} else {
		t.Timing("eio_live_on_air", d)
	}
	time.Sleep(2 * time.Second)
	fds1, thr1 := openFDs(pid), threads(pid)
	t.Fact("fds_before_after", "%d/%d", fds0, fds1)
	t.Fact("threads_before_after", "%d/%d", thr0, thr1)
	if fds1 > fds0 {
		t.Errorf("capboxd holds %d descriptors after unplug/replug/EIO, %d before", fds1, fds0)
	}
	if thr1 > thr0+2 {
		t.Errorf("capboxd runs %d threads after unplug/replug/EIO, %d before", thr1, thr0)
	}
	s.stop(ctx, t)
}

// agentMQTTEvents: scenario 7. Through mosquitto in the guest the fleet sees the box's birth
// and its retained meta (with the detection), telemetry, every part happy while streaming,
// evt/signal_lost and the capture hungry without signal, evt/signal_locked and happy again,
// and the graceful offline status when it stops.
func agentMQTTEvents(ctx context.Context, t *T) {
	e := t.e
	s := startSession(ctx, t, "mqtt", 9714, 18834, true)
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
	if d, err := s.fleet.waitMsg(ctx, at, liveLimit, "/evt/signal_lost", func(v map[string]any) bool { return v["part"] == "capture" }); err != nil {
		t.Errorf("evt/signal_lost: %v", err)
	} else {
		t.Timing("evt_signal_lost", d)
	}
	s.reported(ctx, t, "hungry_mood", at, liveLimit, func(v map[string]any) bool {
		ms, _ := v["moods"].(map[string]any)
		return ms["capture"] == "hungry" && v["mood"] == "hungry"
	})
	at = time.Now()
	if err := setCtrl(ctx, e.vivid, fmt.Sprintf("dv_timings_signal_mode=%d", modeCurrent)); err != nil {
		t.Fatalf("%v", err)
	}
	if d, err := s.fleet.waitMsg(ctx, at, liveLimit, "/evt/signal_locked", func(v map[string]any) bool { return v["msg"] == "576p50" }); err != nil {
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
