package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"

	"capbox/agent/config"
	"capbox/agent/upload"
)

// Figure 7: upload throughput, capbox's uploader against `rclone copy` of
// the same files to the same server, S3 and SFTP.

// UploadResult is figure 7.
type UploadResult struct {
	Files   int               `json:"files"`
	FileMiB int               `json:"file_mib"`
	Reps    int               `json:"reps"`
	Runs    []UploadRun       `json:"runs"`
	Ratio   map[string]Spread `json:"ratio"` // capbox throughput / rclone throughput, per protocol
	MiBps   map[string]Spread `json:"mib_per_s"`
	Rclone  map[string]Spread `json:"rclone_mib_per_s"`
	// RcloneMultipart is rclone forced to S3 multipart (8 MiB parts, as
	// capbox sends): on gofakes3 a multipart completion costs the server
	// a copy and a hash of the whole object, which a single PUT does not.
	RcloneMultipart Spread `json:"rclone_multipart_mib_per_s"`
	RatioMultipart  Spread `json:"ratio_multipart"`
}

// UploadRun is one timed copy.
type UploadRun struct {
	Rep       int     `json:"rep"`
	Proto     string  `json:"proto"`
	Contender string  `json:"contender"`
	Seconds   float64 `json:"seconds"`
	MiBps     float64 `json:"mib_per_s"`
	Err       string  `json:"err,omitempty"`
}

const targetUploadRatio = 0.9

func (b *bench) upload(ctx context.Context) (*UploadResult, error) {
	res := &UploadResult{Files: 4, FileMiB: 32, Reps: b.opt.reps, Ratio: map[string]Spread{}, MiBps: map[string]Spread{}, Rclone: map[string]Spread{}}
	if b.opt.tiny {
		res.Files, res.FileMiB = 2, 2
	}
	if _, err := exec.LookPath("rclone"); err != nil {
		return nil, fmt.Errorf("rclone (make deps): %w", err)
	}
	dir := filepath.Join(b.out, "upload")
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	var files []string
	for i := range res.Files {
		p := filepath.Join(src, fmt.Sprintf("capbox-%05d.ts", i+1))
		if err := writeRandom(p, int64(res.FileMiB)<<20); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	total := float64(res.Files * res.FileMiB)

	s3, err := startS3(filepath.Join(dir, "s3"))
	if err != nil {
		return nil, err
	}
	defer s3.stop()
	sshd, err := startSSHD(filepath.Join(dir, "sshd"))
	if err != nil {
		return nil, err
	}
	defer sshd.stop()
	remoteRoot := filepath.Join(dir, "remote")

	for rep := 1; rep <= res.Reps && ctx.Err() == nil; rep++ {
		for _, proto := range []string{"s3", "sftp"} {
			order := []string{"capbox", "rclone"}
			if rep%2 == 0 {
				order = []string{"rclone", "capbox"}
			}
			if proto == "s3" {
				order = append(order, "rclone-multipart")
			}
			for _, who := range order {
				tag := fmt.Sprintf("%s-%s-%d", proto, who, rep)
				bucket := "bench-" + strconv.Itoa(rep) + "-" + strings.ReplaceAll(who, "-", "")
				remoteDir := filepath.Join(remoteRoot, tag)
				if proto == "s3" {
					if err := s3.backend.CreateBucket(bucket); err != nil {
						return nil, err
					}
				}
				var secs float64
				var err error
				if who == "capbox" {
					var tc config.UploadTarget
					var tr http.RoundTripper
					if proto == "s3" {
						tc = config.UploadTarget{Name: "s3", URL: "s3://" + bucket, Endpoint: "https://" + s3.addr, Region: "us-east-1",
							AccessKeyFile: s3.idFile, SecretKeyFile: s3.secretFile}
						tr = s3.transport()
					} else {
						tc = config.UploadTarget{Name: "sftp", URL: fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", sshd.user, sshd.port, remoteDir),
							KeyFile: sshd.clientKey, KnownHosts: sshd.knownHosts}
					}
					secs, err = capboxUpload(ctx, filepath.Join(dir, "journal-"+tag), tc, tr, files, nil, 0)
				} else {
					var args []string
					if proto == "s3" {
						args = []string{"copy", src, ":s3:" + bucket, "--s3-provider", "Other", "--s3-endpoint", "https://" + s3.addr,
							"--s3-access-key-id", s3.access, "--s3-secret-access-key", s3.secret, "--s3-region", "us-east-1",
							"--ca-cert", s3.caFile}
						if who == "rclone-multipart" {
							args = append(args, "--s3-upload-cutoff", "0", "--s3-chunk-size", "8M")
						}
					} else {
						args = []string{"copy", src, ":sftp:" + remoteDir, "--sftp-host", "127.0.0.1", "--sftp-port", strconv.Itoa(sshd.port),
							"--sftp-user", sshd.user, "--sftp-key-file", sshd.clientKey, "--sftp-known-hosts-file", sshd.knownHosts}
					}
					secs, err = rcloneCopy(ctx, filepath.Join(dir, tag+".log"), args)
				}
				run := UploadRun{Rep: rep, Proto: proto, Contender: who, Seconds: secs}
				if err != nil {
					run.Err = err.Error()
				} else {
					run.MiBps = total / secs
				}
				b.progress("upload %s: %s %.1f MiB/s", proto, who, run.MiBps)
				res.Runs = append(res.Runs, run)
				if proto == "s3" {
					_ = deleteBucket(s3, bucket)
				}
				_ = os.RemoveAll(remoteDir)
			}
		}
	}
	for _, proto := range []string{"s3", "sftp"} {
		var cb, rc, cbm, rcm []float64
		for rep := 1; rep <= res.Reps; rep++ {
			var c, r, m float64
			for _, x := range res.Runs {
				if x.Rep == rep && x.Proto == proto && x.Err == "" {
					switch x.Contender {
					case "capbox":
						c = x.MiBps
					case "rclone":
						r = x.MiBps
					default:
						m = x.MiBps
					}
				}
			}
			if c > 0 && r > 0 {
				cb, rc = append(cb, c), append(rc, r)
			}
			if c > 0 && m > 0 {
				cbm, rcm = append(cbm, c), append(rcm, m)
			}
		}
		res.Ratio[proto] = spreadOf(ratios(cb, rc))
		res.MiBps[proto] = spreadOf(cb)
		res.Rclone[proto] = spreadOf(rc)
		if proto == "s3" {
			res.RcloneMultipart = spreadOf(rcm)
			res.RatioMultipart = spreadOf(ratios(cbm, rcm))
		}
	}
	return res, nil
}

func deleteBucket(s3 *s3Bench, bucket string) error {
	list, err := s3.backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err == nil {
		for _, o := range list.Contents {
			_, _ = s3.backend.DeleteObject(bucket, o.Key)
		}
	}
	return s3.backend.DeleteBucket(bucket)
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func rcloneCopy(ctx context.Context, logPath string, args []string) (float64, error) {
	cmd := exec.CommandContext(ctx, "rclone", append(args, "--config", "/dev/null", "-q")...)
	cmd.Env = withoutEnv(os.Environ(), "AWS_CA_BUNDLE")
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("rclone: %w (see %s)", err, logPath)
	}
	return time.Since(start).Seconds(), nil
}

// capboxUpload runs the uploader until every file is at the target, and
// returns how long that took from the first file queued.
func capboxUpload(ctx context.Context, journal string, tc config.UploadTarget, tr http.RoundTripper, files []string, uplink upload.Uplink, kbps int) (float64, error) {
	u, err := upload.New(config.Upload{BandwidthKbps: kbps, Targets: []config.UploadTarget{tc}},
		upload.Deps{Dir: journal, Device: "bench", S3Transport: tr, Uplink: uplink, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- u.Run(rctx) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	for i, f := range files {
		if err := u.Enqueue(ctx, upload.Segment{Path: f, Boot: 1, Seq: uint64(i + 1)}); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(files) {
		select {
		case ev := <-u.Events():
			switch ev.Kind {
			case upload.EventDone:
				n++
			case upload.EventFailed:
				return 0, errors.New(ev.Msg)
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Minute):
			return 0, errors.New("no upload finished in 10 minutes")
		}
	}
	return time.Since(start).Seconds(), nil
}

// Figure 8: the live stream while a backlog drains over a capped uplink.

// UplinkResult is figure 8.
type UplinkResult struct {
	LinkKbps   int           `json:"link_kbps"`
	StreamKbps int           `json:"stream_kbps"`
	Seconds    int           `json:"seconds"`
	Phases     []UplinkPhase `json:"phases"`
	// Ratio is the live bitrate at the receiver while the backlog drains
	// with the yield, over the bitrate with no upload at all.
	Ratio   float64 `json:"ratio"`
	Skipped string  `json:"skipped,omitempty"`
}

// UplinkPhase is one window at the receiver.
type UplinkPhase struct {
	Name         string  `json:"name"`
	RxKbps       float64 `json:"rx_kbps"`
	MaxGapMs     float64 `json:"max_gap_ms"`
	GapsOver500  int     `json:"gaps_over_500ms"`
	UploadKbps   float64 `json:"upload_kbps"`
	YieldingPct  float64 `json:"yielding_pct"`
	MeanRTTms    float64 `json:"mean_rtt_ms"`
	UploadErrors string  `json:"upload_errors,omitempty"`
}

const (
	targetUplinkRatio = 0.95
	uplinkLinkKbps    = 5000
)

// uplink runs the figure in a network namespace of its own: loopback with
// MTU 1500 and a tbf of uplinkLinkKbps on it, so the live stream and the
// upload share one capped link. capbench runs itself inside it.
func (b *bench) uplink(ctx context.Context) (*UplinkResult, error) {
	res := &UplinkResult{LinkKbps: uplinkLinkKbps, StreamKbps: streamKbps, Seconds: b.opt.uplinkSeconds}
	if os.Geteuid() != 0 {
		res.Skipped = "needs root for a network namespace"
		return res, nil
	}
	ns := fmt.Sprintf("capbench-%d", os.Getpid())
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "mtu", "1500", "up"},
		{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "tbf",
			"rate", fmt.Sprintf("%dkbit", uplinkLinkKbps), "burst", "16kb", "latency", "200ms"},
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	in := uplinkInner{Capboxd: b.opt.capboxd, Dir: filepath.Join(b.out, "uplink"), Seconds: b.opt.uplinkSeconds, BacklogMiB: 96}
	if b.opt.tiny {
		in.BacklogMiB = 8
	}
	js, _ := json.Marshal(in)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-uplink-inner", string(js))
	cmd.Stderr = b.logw
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("inside the namespace: %w", err)
	}
	if err := json.Unmarshal(out, res); err != nil {
		return nil, fmt.Errorf("inside the namespace: %w: %s", err, out)
	}
	res.LinkKbps, res.StreamKbps, res.Seconds = uplinkLinkKbps, streamKbps, b.opt.uplinkSeconds
	return res, nil
}

type uplinkInner struct {
	Capboxd    string `json:"capboxd"`
	Dir        string `json:"dir"`
	Seconds    int    `json:"seconds"`
	BacklogMiB int    `json:"backlog_mib"`
}

// runUplinkInner is capbench inside the namespace: the ingest, capboxd
// streaming to it, sshd as the archive, and three windows at the
// receiver: no upload, a backlog draining with the yield, and the same
// without the yield (for contrast). It prints an UplinkResult.
func runUplinkInner(ctx context.Context, arg string, stdout, stderr io.Writer) int {
	var in uplinkInner
	if err := json.Unmarshal([]byte(arg), &in); err != nil {
		fmt.Fprintln(stderr, "capbench -uplink-inner:", err)
		return 2
	}
	res, err := uplinkInside(ctx, in, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "capbench -uplink-inner:", err)
		return 1
	}
	js, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(js))
	return 0
}

func uplinkInside(ctx context.Context, in uplinkInner, logw io.Writer) (*UplinkResult, error) {
	res := &UplinkResult{}
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return nil, err
	}
	sshd, err := startSSHD(filepath.Join(in.Dir, "sshd"))
	if err != nil {
		return nil, err
	}
	defer sshd.stop()
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	ing, err := startIngest(port, filepath.Join(in.Dir, "ingest.log"))
	if err != nil {
		return nil, err
	}
	defer ing.kill()
	metricsPort, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(in.Dir, "capboxd.yaml")
	// The endpoint serves the health collector's latest sample: at 1 s,
	// the quickest the collector goes.
	cfg := capboxdConfig(port) + fmt.Sprintf("metrics: { listen: \"127.0.0.1:%d\" }\nfleet: { telemetry_interval: 1s }\n", metricsPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	live, err := startProc("capboxd", []string{in.Capboxd, "run", "-c", cfgPath}, nil, filepath.Join(in.Dir, "capboxd.log"), false)
	if err != nil {
		return nil, err
	}
	defer live.stop(syscall.SIGINT, 5*time.Second)
	if _, err := ing.waitFirst(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	link := &metricsUplink{url: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)}
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go link.poll(pollCtx)
	sleepCtx(ctx, 3*time.Second) // settle

	window := time.Duration(in.Seconds) * time.Second
	// A backlog that outlasts every window.
	src := filepath.Join(in.Dir, "backlog")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	var files []string
	for i := range 4 {
		p := filepath.Join(src, fmt.Sprintf("capbox-%05d.ts", i+1))
		if err := writeRandom(p, int64(in.BacklogMiB/4)<<20); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	tc := config.UploadTarget{Name: "archive", URL: fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", sshd.user, sshd.port, filepath.Join(in.Dir, "remote")),
		KeyFile: sshd.clientKey, KnownHosts: sshd.knownHosts}

	for _, phase := range []string{"no upload", "upload, yield", "upload, no yield"} {
		fmt.Fprintf(logw, "uplink: %s, %s\n", phase, window)
		var ph UplinkPhase
		ph.Name = phase
		var u *upload.Uploader
		var stopUpload func()
		if phase != "no upload" {
			var yield upload.Uplink
			if phase == "upload, yield" {
				yield = link
			}
			_ = os.RemoveAll(filepath.Join(in.Dir, "remote"))
			u, stopUpload, err = startDrain(ctx, filepath.Join(in.Dir, "journal-"+strings.ReplaceAll(phase, " ", "")), tc, yield, files)
			if err != nil {
				return nil, err
			}
			sleepCtx(ctx, 2*time.Second) // the upload gets going
		}
		ph.measure(ctx, ing, link, u, window)
		if stopUpload != nil {
			stopUpload()
		}
		res.Phases = append(res.Phases, ph)
		sleepCtx(ctx, 3*time.Second) // the queue empties
	}
	if base := res.Phases[0].RxKbps; base > 0 {
		res.Ratio = res.Phases[1].RxKbps / base
	}
	return res, nil
}

// startDrain starts an uploader with files queued and returns it and its stop.
func startDrain(ctx context.Context, journal string, tc config.UploadTarget, yield upload.Uplink, files []string) (*upload.Uploader, func(), error) {
	u, err := upload.New(config.Upload{Targets: []config.UploadTarget{tc}},
		upload.Deps{Dir: journal, Device: "bench", Uplink: yield, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = u.Run(rctx); close(done) }()
	go func() {
		for range u.Events() {
		}
	}()
	for i, f := range files {
		if err := u.Enqueue(ctx, upload.Segment{Path: f, Boot: 1, Seq: uint64(i + 1)}); err != nil {
			cancel()
			<-done
			return nil, nil, err
		}
	}
	return u, func() { cancel(); <-done }, nil
}

// measure watches the receiver for d: the bitrate, the longest time
// between two reads (the ingest keeps that), the uploads' progress, the
// yield and the round trip (sampled every 250 ms).
func (ph *UplinkPhase) measure(ctx context.Context, ing *ingest, link *metricsUplink, u *upload.Uploader, d time.Duration) {
	start := time.Now()
	b0 := ing.bytes.Load()
	ing.resetGaps()
	var up0 int64
	if u != nil {
		up0 = uploadedBytes(u)
	}
	var rttSum float64
	var rttN, yielding, samples int
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < d && ctx.Err() == nil {
		<-tick.C
		samples++
		if s := link.LiveLinks(); len(s) > 0 {
			rttSum += float64(s[0].RTT.Microseconds()) / 1000
			rttN++
		}
		if u != nil && u.Backlog().Yielding {
			yielding++
		}
	}
	el := time.Since(start).Seconds()
	ph.RxKbps = float64(ing.bytes.Load()-b0) * 8 / 1000 / el
	gap, over := ing.resetGaps()
	ph.MaxGapMs, ph.GapsOver500 = float64(gap.Microseconds())/1000, over
	if u != nil {
		ph.UploadKbps = float64(uploadedBytes(u)-up0) * 8 / 1000 / el
		if samples > 0 {
			ph.YieldingPct = 100 * float64(yielding) / float64(samples)
		}
		ph.UploadErrors = u.Backlog().LastError
	}
	if rttN > 0 {
		ph.MeanRTTms = rttSum / float64(rttN)
	}
}

// uploadedBytes is what the uploader has sent of its queue so far.
func uploadedBytes(u *upload.Uploader) int64 {
	var n int64
	for _, r := range u.List(upload.MaxList) {
		if r.Uploaded {
			n += r.Size
		}
	}
	return n + u.Backlog().UploadingDone
}

// metricsUplink reads capboxd's round-trip time to the ingest from its
// Prometheus endpoint every 250 ms, standing in for the agent's own feed
// of its live outputs' statistics; LiveLinks returns the latest at once.
type metricsUplink struct {
	url    string
	mu     sync.Mutex
	latest []upload.LinkSample
}

func (m *metricsUplink) LiveLinks() []upload.LinkSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest
}

func (m *metricsUplink) poll(ctx context.Context) {
	c := http.Client{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		s := m.scrape(&c)
		m.mu.Lock()
		m.latest = s
		m.mu.Unlock()
		sleepCtx(ctx, 250*time.Millisecond)
	}
}

// scrape reads the output's RTT; the endpoint leaves a zero RTT out, so
// an output that is up without an RTT line has a round trip under 1 ms.
func (m *metricsUplink) scrape(c *http.Client) []upload.LinkSample {
	resp, err := c.Get(m.url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var up bool
	var rtt time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "capbox_output_up{"):
			up = v == 1
		case strings.HasPrefix(line, "capbox_output_rtt_seconds{"):
			rtt = time.Duration(v * float64(time.Second))
		}
	}
	if !up {
		return nil
	}
	return []upload.LinkSample{{Output: "ingest", RTT: rtt}}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// atLeast says whether a median meets a ">= target" goal.
func atLeast(s Spread, target float64) string {
	switch {
	case s.N == 0:
		return "not measured"
	case s.Median >= target:
		return "met"
	default:
		return "MISSED"
	}
}

// uploadSummary is the summary's part for figures 7 and 8.
func uploadSummary(r *Results) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	judge := func(s Spread, target float64) string {
		if r.Mode == "tiny" {
			return "tiny run, no verdict"
		}
		return atLeast(s, target)
	}
	if u := r.Upload; u != nil {
		p("## 7. Upload throughput against rclone")
		p("")
		p("%d rounds, each order alternating; %d files of %d MiB to the same server on loopback: gofakes3 over TLS (S3) and OpenSSH's sshd (SFTP). capbox verifies every file end to end (S3: part MD5s and the object's ETag; SFTP: the file read back and its SHA-256). Median (min-max).", u.Reps, u.Files, u.FileMiB)
		p("")
		p("| protocol | capbox MiB/s | rclone copy MiB/s | capbox / rclone | target | |")
		p("|---|---|---|---|---|---|")
		for _, proto := range []string{"s3", "sftp"} {
			p("| %s | %s | %s | %s | >= %.2f | **%s** |", proto, u.MiBps[proto].format("%.1f"), u.Rclone[proto].format("%.1f"),
				u.Ratio[proto].format("%.3f"), targetUploadRatio, judge(u.Ratio[proto], targetUploadRatio))
		}
		p("")
		p("- S3 against rclone forced to multipart with 8 MiB parts (`--s3-upload-cutoff 0 --s3-chunk-size 8M`, as capbox sends; rclone's default sends files under 200 MiB in one PUT, which costs gofakes3 less): rclone %s MiB/s, capbox / rclone %s",
			u.RcloneMultipart.format("%.1f"), u.RatioMultipart.format("%.3f"))
		p("")
	}
	if l := r.Uplink; l != nil {
		p("## 8. The live stream while a backlog drains under a link cap")
		p("")
		if l.Skipped != "" {
			p("Not measured: %s.", l.Skipped)
			p("")
			return w.String()
		}
		p("A network namespace whose loopback (MTU 1500) is capped by tbf at %d kbit/s (200 ms of queue); capboxd streams %d kbit/s of video to an SRT ingest through it while the uploader drains a backlog to sshd through the same link, without a cap of its own. %d s per window.", l.LinkKbps, l.StreamKbps, l.Seconds)
		p("")
		p("| window | live at the receiver kbit/s | longest silence ms | silences > 500 ms | upload kbit/s | yielding | SRT RTT ms |")
		p("|---|---|---|---|---|---|---|")
		for _, ph := range l.Phases {
			p("| %s | %.0f | %.0f | %d | %.0f | %.0f %% | %.1f |", ph.Name, ph.RxKbps, ph.MaxGapMs, ph.GapsOver500, ph.UploadKbps, ph.YieldingPct, ph.MeanRTTms)
		}
		p("")
		gaps := 0
		if len(l.Phases) > 1 {
			gaps = l.Phases[1].GapsOver500
		}
		v := "tiny run, no verdict"
		if r.Mode != "tiny" {
			v = atLeast(Spread{N: 1, Median: l.Ratio}, targetUplinkRatio)
			if gaps > 0 {
				v = "MISSED"
			}
		}
		p("- live with the backlog draining / live alone: %.3f, %d silences over 500 ms; target >= %.2f and none: **%s**", l.Ratio, gaps, targetUplinkRatio, v)
		p("")
	}
	return w.String()
}
