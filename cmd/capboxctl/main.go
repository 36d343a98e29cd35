// Command capboxctl is the fleet operator's tool: it lists the boxes, shows
// one, watches them live, sends commands, sets their config over MQTT
// (PROTOCOL.md), and can run a small embedded broker for a lab or a
// one-room venue. Pure Go: it runs on Linux, macOS and Windows laptops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"time"

	"capbox/agent/fleet/wire"
)

// Set at link time by the Makefile.
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the box answered with an error, or a check failed
	exitUsage   = 2
	exitTimeout = 3 // no answer in time, or no broker
)

// globals are the flags every subcommand takes.
type globals struct {
	broker       string
	prefix       string
	ca           string
	cert         string
	key          string
	username     string
	passwordFile string
	insecure     bool
	json         bool
	timeout      time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.broker, "broker", envOr("CAPBOX_BROKER", "mqtt://127.0.0.1:1883"), "broker `URL` (mqtt:// or mqtts://; $CAPBOX_BROKER)")
	fs.StringVar(&g.prefix, "prefix", envOr("CAPBOX_PREFIX", wire.DefaultPrefix), "topic prefix")
	fs.StringVar(&g.ca, "ca", os.Getenv("CAPBOX_CA"), "CA certificate `file` for mqtts:// (system roots when empty)")
	fs.StringVar(&g.cert, "cert", os.Getenv("CAPBOX_CERT"), "client certificate `file` (mutual TLS)")
	fs.StringVar(&g.key, "key", os.Getenv("CAPBOX_KEY"), "client key `file` (mutual TLS)")
	fs.StringVar(&g.username, "username", envOr("CAPBOX_USERNAME", "fleet"), "fleet account")
	fs.StringVar(&g.passwordFile, "password-file", os.Getenv("CAPBOX_PASSWORD_FILE"), "`file` holding the account's password")
	fs.BoolVar(&g.insecure, "insecure", false, "allow plain mqtt:// to a non-loopback broker (the password travels in clear)")
	fs.BoolVar(&g.json, "json", false, "print JSON")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long to wait for an answer")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// command is one subcommand: it parses its own flags (the globals are
// registered on its FlagSet too) and returns the exit code.
type command struct {
	usage   string
	summary string
	run     func(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int
}

// commands is the table of subcommands.
var commands = map[string]command{
	"ls":      {"ls", "list every box seen: online, mood, signal, outputs, temperature, last seen", lsMain},
	"status":  {"status ID", "everything one box reports", statusMain},
	"watch":   {"watch [ID]", "live view (plain lines when not a terminal)", watchMain},
	"cmd":     {"cmd ID NAME [key=value ...]", "send a command and wait for the answer", cmdMain},
	"config":  {"config get ID | config set ID FILE", "show or set a box's desired config", configMain},
	"broker":  {"broker --password-file FILE [--listen ADDR] [--tls-cert F --tls-key F [--client-ca F]]", "run an embedded broker with the fleet ACL", brokerMain},
	"passwd":  {"passwd FILE USER", "add or change a user in a (mosquitto-format) password file; password on stdin", passwdMain},
	"acl":     {"acl [--fleet-user NAME]", "print the mosquitto ACL file for the fleet", aclMain},
	"web":     {"web [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F --users F [--read-only U,...]]", "serve the fleet dashboard: every room's preview, meters and health in a browser", webMain},
	"version": {"version", "print the version", versionMain},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses the global flags, then the command and its flags.
func run(ctx context.Context, args []string, out, errw io.Writer) int {
	var g globals
	top := flag.NewFlagSet("capboxctl", flag.ContinueOnError)
	top.SetOutput(errw)
	g.register(top)
	top.Usage = func() { usage(errw, top) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := top.Args()
	if len(rest) == 0 || rest[0] == "help" {
		usage(out, top)
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(errw, "capboxctl: unknown command %q\n", rest[0])
		usage(errw, top)
		return exitUsage
	}
	fs := flag.NewFlagSet("capboxctl "+rest[0], flag.ContinueOnError)
	fs.SetOutput(errw)
	g2 := g // the command's flags start from the globals given before it
	g2.register(fs)
	copyGlobals(top, fs)
	fs.Usage = func() {
		fmt.Fprintf(errw, "usage: capboxctl %s\n  %s\n", cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	return cmd.run(ctx, &g2, fs, rest[1:], out, errw)
}

// copyGlobals carries values set before the command into its FlagSet, so
// both `capboxctl --json ls` and `capboxctl ls --json` work.
func copyGlobals(from, to *flag.FlagSet) {
	from.Visit(func(f *flag.Flag) { _ = to.Set(f.Name, f.Value.String()) })
}

// parseInterspersed parses flags that may come before or after positional
// arguments (`cmd box-a ping --json`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: capboxctl [global flags] COMMAND [args]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "global flags (also accepted after the command):")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func versionMain(_ context.Context, _ *globals, fs *flag.FlagSet, args []string, out, _ io.Writer) int {
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	fmt.Fprintf(out, "capboxctl %s (%s), fleet protocol v%d\n", version, commit, wire.SchemaVersion)
	return exitOK
}

// checkID refuses ids that cannot be device ids (and so could put
// wildcards or extra levels in a topic).
func checkID(id string, errw io.Writer) bool {
	if !wire.DeviceIDPattern.MatchString(id) {
		fmt.Fprintf(errw, "capboxctl: %q is not a device id (%s)\n", id, wire.DeviceIDSyntax)
		return false
	}
	return true
}

func wantArgs(fs *flag.FlagSet, pos []string, n int, errw io.Writer) bool {
	if len(pos) != n {
		fs.Usage()
		return false
	}
	return true
}
