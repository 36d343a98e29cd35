// Command capboxd is the capture box agent: it finds the hardware, runs the
// pipeline, and reports to the fleet. See DESIGN.md for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Set at link time by the Makefile.
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand: it gets its arguments (without the name) and
// returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is the table of subcommands; "run" is the default.
var commands = map[string]command{
	"run":      {"run the agent (default)", runMain},
	"version":  {"print version, commit, Go and GStreamer versions", versionMain},
	"pipeline": {"print the pipeline plan the agent would run", pipelineMain},
	"detect":   {"print what the box has and what it would choose", detectMain},
	"snapshot": {"copy what detection reads into a folder (a bug-report fixture)", snapshotMain},
	"check":    {"validate a config file and list every problem", checkMain},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "capboxd: unknown command %q\n", name)
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: capboxd [command] [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}
