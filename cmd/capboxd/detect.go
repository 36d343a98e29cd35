package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"capbox/agent/config"
	"capbox/board"
	"capbox/pipelines/gst"
)

// detectMain: capboxd detect [--json] [--sysroot DIR] [-c FILE]
func detectMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the detection as JSON")
	sysroot := fs.String("sysroot", "", "read /proc, /sys and /dev under `DIR` (a fixture or snapshot) instead of /")
	cfgPath := fs.String("c", "", "config `FILE` whose capture.video and encode.encoder pins apply")
	verbose := fs.Bool("v", false, "log what detection does to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "capboxd detect: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	opts := board.Options{Root: *sysroot, PinVideo: board.PinAuto, PinEncoder: board.PinAuto}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath, true, os.Environ())
		if err != nil {
			fmt.Fprintf(stderr, "capboxd detect: %v\n", err)
			return 1
		}
		opts.PinVideo, opts.PinEncoder = cfg.Capture.Video, cfg.Encode.Encoder
	}
	if *sysroot == "" || *sysroot == "/" {
		// Only this machine's GStreamer registry knows this machine's
		// elements; for another board's tree the board's evidence decides.
		opts.Elements = gst.Registry{}
	} else if _, err := os.Stat(*sysroot); err != nil {
		fmt.Fprintf(stderr, "capboxd detect: %v\n", err)
		return 1
	}
	d, err := board.Detect(ctx, opts)
	if err != nil {
		for _, e := range d.Errors {
			fmt.Fprintf(stderr, "capboxd detect: %s\n", e)
		}
	}
	if *asJSON {
		b, err := board.MarshalDetection(d)
		if err != nil {
			fmt.Fprintf(stderr, "capboxd detect: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	}
	printDetection(stdout, d)
	return 0
}

func printDetection(w io.Writer, d board.Detection) {
	b := d.Board
	fmt.Fprintf(w, "board     %s (%s) %s\n", b.ID, b.Family, b.Model)
	for _, l := range b.Limits {
		fmt.Fprintf(w, "          limit: %s\n", l)
	}
	if len(d.VideoInputs) == 0 {
		fmt.Fprintln(w, "video     none found")
	}
	for _, v := range d.VideoInputs {
		sig := string(v.Signal.State)
		if v.Signal.State == board.SignalLocked {
			sig = fmt.Sprintf("%s %dx%d@%g", sig, v.Signal.Width, v.Signal.Height, v.Signal.FPSExact)
		}
		how := "probed"
		switch {
		case v.Recorded:
			how = "recorded"
		case !v.Probed:
			how = "sysfs only"
		}
		fmt.Fprintf(w, "video     %-12s %-8s %-12s %-24s %s [%s]\n", v.Device, v.Kind, v.Driver, v.Card, sig, how)
		if v.StablePath != "" {
			fmt.Fprintf(w, "          %s\n", v.StablePath)
		}
	}
	for _, a := range d.AudioInputs {
		with := ""
		if a.VideoDevice != "" {
			with = " (with " + a.VideoDevice + ")"
		}
		fmt.Fprintf(w, "audio     %s %s%s\n", a.Device, a.Card, with)
	}
	for _, e := range d.Encoders {
		avail := "available"
		if !e.Available {
			avail = "element missing"
		}
		fmt.Fprintf(w, "encoder   %-20s %-5s %-9s %-14s %s %s\n", e.Element, e.Codec, e.Family, e.Driver, e.Device, avail)
	}
	c := d.Chosen
	fmt.Fprintf(w, "chosen    video %s, audio %s, encoder %s, zero-copy %v\n", orNone(c.VideoInput), orNone(c.AudioInput), orNone(c.Encoder), c.ZeroCopy)
	for _, r := range strings.Split(c.Reason, "; ") {
		fmt.Fprintf(w, "          %s\n", r)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// snapshotMain: capboxd snapshot DIR
func snapshotMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sysroot := fs.String("sysroot", "", "snapshot the tree under `DIR` instead of the live system")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: capboxd snapshot [--sysroot DIR] DIR")
		return 2
	}
	dir := fs.Arg(0)
	// No GStreamer registry here: a snapshot records files and V4L2
	// answers, and must stay quick on a slow box.
	d, err := board.Snapshot(ctx, dir, board.Options{Root: *sysroot})
	if errors.Is(err, board.ErrSnapshotDirNotEmpty) {
		fmt.Fprintf(stderr, "capboxd snapshot: %v\n", err)
		return 1
	}
	if err != nil {
		// Partial: what could not be read is reported and left out.
		for _, e := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "capboxd snapshot: %s\n", e)
		}
	}
	if _, serr := os.Stat(dir); serr != nil {
		return 1
	}
	fmt.Fprintf(stdout, "snapshot of %d video inputs, %d encoders written to %s\n", len(d.VideoInputs), len(d.Encoders), dir)
	fmt.Fprintf(stdout, "read it back with: capboxd detect --sysroot %s\n", dir)
	return 0
}
