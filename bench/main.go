// Command capbench measures what capbox costs and how fast it recovers,
// side by side with gst-launch-1.0 and ffmpeg sending the same stream, and
// what the fleet link costs a broker (docs/BENCHMARKS.md). Every figure is
// a ratio or a comparison taken in one run; the machine, the date and the
// method go into the results.
//
//	capbench [flags] [figure...]    figures: overhead ttfb recovery zerocopy fleet footprint upload uplink (default all)
//	capbench -tiny                  each figure once at a tiny size (make test-bench): keeps them working
//
// It writes results.json and summary.md into -out and prints the summary.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"capbox/agent/config"
)

var figureNames = []string{"overhead", "ttfb", "recovery", "zerocopy", "fleet", "footprint", "upload", "uplink", "dashboard"}

type options struct {
	tiny                bool
	out                 string
	figures             []string
	reps, seconds       int
	apart               bool
	warmup              time.Duration
	ttfbReps            int
	recoveryReps        int
	down                time.Duration
	streamBefore        time.Duration
	recoverTimeout      time.Duration
	crash               bool
	boxes               []int
	fleetWindow         time.Duration
	fleetSettle         time.Duration
	fleetConnectTimeout time.Duration
	telemetryInterval   time.Duration
	footprintSeconds    int
	dashBoxes           int
	dashWindow          time.Duration
	capboxd, capboxctl  string
	arm64               string
	e2eResults          []string
	healthFixture       string
	uplinkSeconds       int
}

// Results is everything one run measured.
type Results struct {
	Mode      string            `json:"mode"`
	Machine   Machine           `json:"machine"`
	DurationS float64           `json:"duration_s"`
	Overhead  *OverheadResult   `json:"overhead,omitempty"`
	TTFB      *TTFBResult       `json:"ttfb,omitempty"`
	Recovery  *RecoveryResult   `json:"recovery,omitempty"`
	ZeroCopy  *ZeroCopyResult   `json:"zerocopy,omitempty"`
	Fleet     *FleetResult      `json:"fleet,omitempty"`
	Footprint *FootprintResult  `json:"footprint,omitempty"`
	Upload    *UploadResult     `json:"upload,omitempty"`
	Uplink    *UplinkResult     `json:"uplink,omitempty"`
	Dashboard *DashboardResult  `json:"dashboard,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

type bench struct {
	opt   options
	out   string
	setup setup
	logw  io.Writer
	t0    time.Time
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.logw, "[%6.1fs] %s\n", time.Since(b.t0).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Figure 8 runs capbench again inside its network namespace.
	if len(args) == 2 && args[0] == "-uplink-inner" {
		return runUplinkInner(ctx, args[1], stdout, stderr)
	}
	opt, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	abs, err := filepath.Abs(opt.out)
	if err != nil {
		fmt.Fprintln(stderr, "capbench:", err)
		return 1
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		fmt.Fprintln(stderr, "capbench:", err)
		return 1
	}
	// The binaries are copied first: bin/ is shared with whoever runs
	// `make build` meanwhile, and every run must measure the same build.
	if opt.capboxd, err = snapshotBinary(opt.capboxd, filepath.Join(abs, "bin")); err != nil {
		fmt.Fprintln(stderr, "capbench: capboxd (make build):", err)
		return 1
	}
	for _, p := range []*string{&opt.capboxctl, &opt.arm64} {
		// Missing ones are reported by the figures that need them.
		if c, err := snapshotBinary(*p, filepath.Join(abs, "bin")); err == nil {
			*p = c
		}
	}
	b := &bench{opt: opt, out: abs, setup: setup{capboxd: opt.capboxd, dir: abs}, logw: stderr, t0: time.Now()}
	mode := "full"
	if opt.tiny {
		mode = "tiny"
	}
	res := &Results{Mode: mode, Machine: describeMachine(opt.capboxd), Errors: map[string]string{}}
	b.progress("capbench %s: %s into %s", mode, strings.Join(opt.figures, " "), abs)
	for _, fig := range opt.figures {
		if ctx.Err() != nil {
			break
		}
		var err error
		figStart := time.Now()
		switch fig {
		case "overhead":
			res.Overhead, err = b.overhead(ctx)
		case "ttfb":
			res.TTFB, err = b.ttfb(ctx)
		case "recovery":
			res.Recovery, err = b.recovery(ctx)
		case "zerocopy":
			res.ZeroCopy, err = readZeroCopy(opt.e2eResults)
		case "fleet":
			res.Fleet, err = b.fleet(ctx)
		case "footprint":
			res.Footprint, err = b.footprint(ctx)
		case "upload":
			res.Upload, err = b.upload(ctx)
		case "uplink":
			res.Uplink, err = b.uplink(ctx)
		case "dashboard":
			res.Dashboard, err = b.dashboard(ctx)
		}
		if err != nil {
			res.Errors[fig] = err.Error()
			b.progress("%s: %v", fig, err)
		}
		b.progress("%s: done in %.1f s", fig, time.Since(figStart).Seconds())
	}
	res.Machine.LoadEnd = loadavg()
	res.DurationS = time.Since(b.t0).Seconds()
	for fig, msg := range runErrors(res) {
		res.Errors[fig] = msg
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "capbench:", err)
		return 1
	}
	summary := renderSummary(res)
	werr := os.WriteFile(filepath.Join(abs, "results.json"), append(js, '\n'), 0o644)
	if werr == nil {
		werr = os.WriteFile(filepath.Join(abs, "summary.md"), []byte(summary), 0o644)
	}
	if werr != nil {
		fmt.Fprintln(stderr, "capbench:", werr)
		return 1
	}
	fmt.Fprint(stdout, summary)
	if len(res.Errors) > 0 || ctx.Err() != nil {
		fmt.Fprintf(stderr, "capbench: %d figure(s) with errors: see %s\n", len(res.Errors), filepath.Join(abs, "results.json"))
		return 1
	}
	return 0
}

// runErrors collects per-run failures: a benchmark that keeps running but
// measures nothing must fail `make test-bench`.
func runErrors(res *Results) map[string]string {
	out := map[string]string{}
	add := func(fig, msg string) {
		if out[fig] == "" {
			out[fig] = msg
		}
	}
	if r := res.Overhead; r != nil {
		for _, x := range r.Runs {
			if x.Err != "" {
				add("overhead", fmt.Sprintf("round %d %s: %s", x.Rep, x.Contender, x.Err))
			}
		}
	}
	if r := res.TTFB; r != nil {
		for _, x := range r.Runs {
			if x.Err != "" {
				add("ttfb", fmt.Sprintf("round %d %s: %s", x.Rep, x.Contender, x.Err))
			}
		}
	}
	if r := res.Recovery; r != nil {
		for _, x := range r.Runs {
			if x.Err != "" {
				add("recovery", fmt.Sprintf("round %d %s: %s", x.Rep, x.Contender, x.Err))
			}
		}
	}
	if r := res.Fleet; r != nil {
		for _, x := range r.Runs {
			if x.Err != "" {
				add("fleet", fmt.Sprintf("%d boxes: %s", x.Boxes, x.Err))
			}
		}
	}
	if r := res.Footprint; r != nil {
		if r.Err != "" {
			add("footprint", r.Err)
		}
		for _, x := range r.Binaries {
			if x.Err != "" {
				add("footprint", x.Name+": "+x.Err)
			}
		}
	}
	if r := res.Upload; r != nil {
		for _, x := range r.Runs {
			if x.Err != "" {
				add("upload", fmt.Sprintf("round %d %s %s: %s", x.Rep, x.Proto, x.Contender, x.Err))
			}
		}
	}
	if r := res.Uplink; r != nil {
		for _, ph := range r.Phases {
			if ph.RxKbps == 0 {
				add("uplink", ph.Name+": nothing reached the receiver")
			}
		}
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("capbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.tiny, "tiny", false, "each figure once at a tiny size (seconds, not minutes): keeps the benchmarks working")
	fs.StringVar(&o.out, "out", "", "results directory (default .cache/bench/run-DATE)")
	fs.IntVar(&o.reps, "reps", 0, "overhead and upload: interleaved rounds (default 3; tiny 1)")
	fs.BoolVar(&o.apart, "apart", false, "overhead: capboxd and gst-launch one after the other instead of at the same time")
	fs.IntVar(&o.seconds, "seconds", 0, "overhead: seconds of stream per run (default 60; tiny 2)")
	fs.DurationVar(&o.warmup, "warmup", -1, "overhead: untimed run of each contender first (default 5s; tiny 0)")
	fs.IntVar(&o.ttfbReps, "ttfb-reps", 0, "time to first byte: rounds (default 5; tiny 1)")
	fs.IntVar(&o.recoveryReps, "recovery-reps", 0, "recovery: rounds (default 3; tiny 1)")
	fs.DurationVar(&o.down, "down", 0, "recovery: how long the ingest stays down (default 10s; tiny 0.5s)")
	fs.DurationVar(&o.streamBefore, "stream-before", 0, "recovery: streaming before the outage (default 5s; tiny 0.5s)")
	fs.DurationVar(&o.recoverTimeout, "recover-timeout", 0, "recovery: longest wait for the first byte after the ingest is back (default 30s; tiny 20s)")
	stopHow := fs.String("ingest-stop", "", "recovery: how the ingest goes down, kill (a crash: SIGKILL) or clean (SIGINT: SRT tells the sender) (default kill; tiny clean)")
	boxes := fs.String("boxes", "", "fleet: comma-separated fleet sizes (default 500,2000; tiny 10)")
	fs.DurationVar(&o.fleetWindow, "fleet-window", 0, "fleet: steady-state window (default 60s; tiny 2s)")
	fs.DurationVar(&o.fleetSettle, "fleet-settle", 0, "fleet: wait between all online and the window (default 5s; tiny 1s)")
	fs.DurationVar(&o.fleetConnectTimeout, "fleet-connect-timeout", 0, "fleet: longest wait for every box to be online (default 3m; tiny 30s)")
	fs.DurationVar(&o.telemetryInterval, "telemetry-interval", 0, "fleet: the boxes' telemetry_interval (default the config default, 10s; tiny 1s)")
	fs.IntVar(&o.uplinkSeconds, "uplink-seconds", 0, "uplink: seconds of each window at the receiver (default 40; tiny 3)")
	fs.IntVar(&o.footprintSeconds, "footprint-seconds", 0, "footprint: seconds of stream while sampling RSS (default 30; tiny 2)")
	fs.IntVar(&o.dashBoxes, "dashboard-boxes", 0, "dashboard: simulated boxes (default 2000; tiny 20)")
	fs.DurationVar(&o.dashWindow, "dashboard-window", 0, "dashboard: each steady window, without and with the browser (default 30s; tiny 2s)")
	fs.StringVar(&o.capboxd, "capboxd", "bin/capboxd", "the capboxd binary (make build)")
	fs.StringVar(&o.capboxctl, "capboxctl", "bin/capboxctl", "the capboxctl binary (make build)")
	fs.StringVar(&o.arm64, "arm64", "bin/capboxd-arm64", "the arm64 capboxd (make cross-arm64)")
	e2e := fs.String("e2e-results", "", "zerocopy: comma-separated results.jsonl files of the virtual capture box (default .cache/e2e/amd64/results/results.jsonl; tiny bench/testdata/e2e-results.jsonl)")
	fs.StringVar(&o.healthFixture, "health-fixture", "agent/health/testdata/rpi4", "fleet: the /sys and /proc tree the simulated boxes' telemetry is sampled from")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.figures = figureNames
	if fs.NArg() > 0 {
		o.figures = nil
		for _, f := range fs.Args() {
			if !slices.Contains(figureNames, f) {
				fmt.Fprintf(stderr, "capbench: unknown figure %q (want %s)\n", f, strings.Join(figureNames, " "))
				return o, flag.ErrHelp
			}
			o.figures = append(o.figures, f)
		}
	}
	pickInt := func(v *int, full, tiny int) {
		if *v == 0 {
			*v = full
			if o.tiny {
				*v = tiny
			}
		}
	}
	pickDur := func(v *time.Duration, unset, full, tiny time.Duration) {
		if *v == unset {
			*v = full
			if o.tiny {
				*v = tiny
			}
		}
	}
	pickInt(&o.reps, 3, 1)
	pickInt(&o.seconds, 60, 2)
	pickDur(&o.warmup, -1, 5*time.Second, 0)
	pickInt(&o.ttfbReps, 5, 1)
	pickInt(&o.recoveryReps, 3, 1)
	pickDur(&o.down, 0, 10*time.Second, 500*time.Millisecond)
	pickDur(&o.streamBefore, 0, 5*time.Second, 500*time.Millisecond)
	pickDur(&o.recoverTimeout, 0, 30*time.Second, 20*time.Second)
	pickDur(&o.fleetWindow, 0, 60*time.Second, 2*time.Second)
	pickInt(&o.dashBoxes, 2000, 20)
	pickDur(&o.dashWindow, 0, 30*time.Second, 2*time.Second)
	pickDur(&o.fleetSettle, 0, 5*time.Second, time.Second)
	pickDur(&o.fleetConnectTimeout, 0, 3*time.Minute, 30*time.Second)
	pickDur(&o.telemetryInterval, 0, config.Default().Fleet.TelemetryInterval.D(), time.Second)
	pickInt(&o.footprintSeconds, 30, 2)
	pickInt(&o.uplinkSeconds, 40, 3)
	switch *stopHow {
	case "":
		o.crash = !o.tiny
	case "kill", "clean":
		o.crash = *stopHow == "kill"
	default:
		fmt.Fprintf(stderr, "capbench: -ingest-stop: %q is neither kill nor clean\n", *stopHow)
		return o, flag.ErrHelp
	}
	if *boxes == "" {
		*boxes = "500,2000"
		if o.tiny {
			*boxes = "10"
		}
	}
	for _, s := range strings.Split(*boxes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "capbench: -boxes: %q is not a fleet size\n", s)
			return o, flag.ErrHelp
		}
		o.boxes = append(o.boxes, n)
	}
	if *e2e == "" {
		*e2e = ".cache/e2e/amd64/results/results.jsonl"
		if o.tiny {
			*e2e = "bench/testdata/e2e-results.jsonl"
		}
	}
	o.e2eResults = strings.Split(*e2e, ",")
	if o.out == "" {
		o.out = filepath.Join(".cache", "bench", "run-"+time.Now().UTC().Format("20060102-150405"))
	}
	if o.seconds < 2 {
		fmt.Fprintln(stderr, "capbench: -seconds must be at least 2")
		return o, flag.ErrHelp
	}
	return o, nil
}

// snapshotBinary copies an executable into dir and returns the copy's path.
func snapshotBinary(path, dir string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(path))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// Keep the build time: the footprint figure reports it.
	if st, err := src.Stat(); err == nil {
		_ = os.Chtimes(dst, st.ModTime(), st.ModTime())
	}
	return dst, nil
}
