package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"capbox/agent"
	"capbox/agent/config"
	"capbox/board"
	"capbox/pipelines"
	"capbox/pipelines/gst"
)

// defaultConfigPath is read when -c is not given; its absence means the
// embedded default.
const defaultConfigPath = "/etc/capbox/capbox.yaml"

// loadConfig reads -c FILE (which must exist) or the default path (which
// may not).
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Load(defaultConfigPath, false, os.Environ())
	}
	return config.Load(path, true, os.Environ())
}

func newLogger(w io.Writer, level string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), lv
}

// rebootFlag is the file a root path unit watches to reboot the box
// (overlay/usr/lib/systemd/system/capbox-reboot.path).
const rebootFlag = "/run/capbox/reboot"

// deps wires the agent to the GStreamer runtime and to discovery.
func deps(log *slog.Logger, lv *slog.LevelVar, cfgPath string, reload <-chan struct{}) agent.Deps {
	return agent.Deps{
		Logger:   log,
		LogLevel: lv,
		Detect:   detectForConfig,
		Elements: gst.Registry{},
		NewRuntime: func(plan pipelines.Plan, l *slog.Logger) agent.Runtime {
			return gst.New(plan, gst.Options{Logger: l})
		},
		Trial: gst.Trial,
		NewSignalWatcher: func(device, stable string, l *slog.Logger) agent.SignalWatcher {
			return board.NewSignalWatcher(device, l, board.WithStablePath(stable))
		},
		NewHotplug: func(l *slog.Logger) agent.Hotplug { return board.NewHotplug(l) },
		ApplyEDID: func(det board.Detection, setting string) ([]string, error) {
			edid, err := board.EDIDFromConfig(setting, det.Board)
			if err != nil {
				return nil, err
			}
			return board.ApplyEDID(det, edid)
		},
		Reload:     reload,
		ConfigPath: cfgPath,
		Environ:    os.Environ(),
		RebootFlag: rebootFlag,
		Version:    version,
		Versions:   map[string]string{"gstreamer": gst.Version(), "go": runtime.Version(), "commit": commit},
	}
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file (default "+defaultConfigPath+" if it exists, else the embedded default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "capboxd: %v\n", err)
		return 1
	}
	log, lv := newLogger(stderr, cfg.Log.Level)
	log.Info("capboxd starting", "version", version, "commit", commit, "gstreamer", gst.Version())
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	path := *cfgPath
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			path = defaultConfigPath
		}
	}
	if err := agent.New(cfg, deps(log, lv, path, reload)).Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("capboxd stopped", "err", err)
		return 1
	}
	log.Info("capboxd stopped")
	return 0
}

func pipelineMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	reveal := fs.Bool("reveal-secrets", false, "put real stream keys and passphrases in the launch line (for running it by hand on this box)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "capboxd: %v\n", err)
		return 1
	}
	det, err := detectForConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "capboxd: detection incomplete: %v\n", err)
	}
	plan, err := agent.Plan(cfg, det, gst.Registry{})
	if err != nil {
		fmt.Fprintf(stderr, "capboxd: %v\n", err)
		return 1
	}
	if *reveal {
		if plan.Launch, err = pipelines.LaunchWith(plan, pipelines.LaunchOptions{RevealSecrets: true}); err != nil {
			fmt.Fprintf(stderr, "capboxd: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "video:    %s %s %dx%d@%d\n", plan.Video.Kind, plan.Video.Device, plan.Video.Width, plan.Video.Height, plan.Video.FPS)
	fmt.Fprintf(stdout, "encoder:  %s (%s, rung %s) - %s\n", plan.Encoder.Element, plan.Encoder.Family, plan.Encoder.Rung, plan.Encoder.Reason)
	fmt.Fprintf(stdout, "audio:    %s %s\n", plan.Audio.Kind, plan.Audio.Device)
	for _, o := range plan.Outputs {
		fmt.Fprintf(stdout, "output:   %s %s\n", o.Spec.Name, o.Spec.URL)
	}
	if plan.Recorder != nil {
		fmt.Fprintf(stdout, "record:   %s (%s, %s segments)\n", plan.Recorder.Dir, plan.Recorder.Format, plan.Recorder.Segment)
	}
	fmt.Fprintf(stdout, "\n%s\n", plan.Launch)
	return 0
}

// checkMain validates a config file and lists every problem.
func checkMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", defaultConfigPath, "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := config.Load(*cfgPath, true, nil); err != nil {
		for _, e := range config.AsErrors(err) {
			fmt.Fprintf(stderr, "%s: %s\n", *cfgPath, e.Error())
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid\n", *cfgPath)
	return 0
}

// detectForConfig runs discovery with the config's pins, bounded in time.
func detectForConfig(ctx context.Context, cfg config.Config) (board.Detection, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return detect(ctx, cfg)
}

func detect(ctx context.Context, cfg config.Config) (board.Detection, error) {
	return board.Detect(ctx, board.Options{
		Elements:   gst.Registry{},
		PinVideo:   cfg.Capture.Video,
		PinEncoder: cfg.Encode.Encoder,
	})
}
