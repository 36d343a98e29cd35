package gst

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"capbox/pipelines"
)

// RTSP publish: capboxd's output announces the stream to an RTSP server
// (GStreamer's own, in RECORD mode) and sends it; the server decodes both
// tracks at the encoded size, with the frames the duration implies.
func TestRTSPPublish(t *testing.T) {
	const seconds = 6
	port := freeTCPPort(t)
	srv := startProc(t, "/usr/bin/python3", "testdata/rtsp-record.py", strconv.Itoa(port), "live")
	waitFor(t, 10*time.Second, "the RTSP server listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	e, stop := runEngine(t, mustPlan(t, testRequest(mustOutput(t, "rtsp", fmt.Sprintf("rtsp://127.0.0.1:%d/live", port)))))
	waitFor(t, 10*time.Second, "output up", func() bool { return outputState(e, "rtsp") == pipelines.OutputUp })
	time.Sleep(seconds * time.Second)
	st := e.Stats()
	stop()
	time.Sleep(time.Second) // the server's next report
	srv.kill()

	if o := st.Outputs[0]; o.Reconnects != 0 || o.Bytes == 0 {
		t.Errorf("output: %+v", o)
	}
	out := srv.out.String()
	last := func(re string) []string {
		m := regexp.MustCompile(re).FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			return nil
		}
		return m[len(m)-1]
	}
	video, audio := last(`video (\d+)x(\d+) frames=(\d+)`), last(`audio frames=(\d+)`)
	if video == nil || audio == nil {
		t.Fatalf("the server decoded video %v, audio %v:\n%s", video, audio, out)
	}
	t.Logf("server decoded: %s, %s", video[0], audio[0])
	if video[1] != "640" || video[2] != "360" {
		t.Errorf("video %sx%s, want 640x360", video[1], video[2])
	}
	// 30 fps and AAC's 1024 samples at 48 kHz (47 a second) over the run,
	// less a second for the start (the first keyframe) and the server's
	// jitter buffer.
	if n, _ := strconv.Atoi(video[3]); n < (seconds-1)*30 {
		t.Errorf("%d video frames decoded, want >= %d", n, (seconds-1)*30)
	}
	if n, _ := strconv.Atoi(audio[1]); n < (seconds-1)*47 {
		t.Errorf("%d audio frames decoded, want >= %d", n, (seconds-1)*47)
	}
}
