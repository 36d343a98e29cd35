package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
)

// maxRecent is how many events the terminal view keeps under the table.
const maxRecent = 12

func watchMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	plain := fs.Bool("plain", false, "print one line per message even on a terminal")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) > 1 {
		fs.Usage()
		return exitUsage
	}
	id := "+"
	if len(pos) == 1 {
		if !checkID(pos[0], errw) {
			return exitUsage
		}
		id = pos[0]
	}
	c, err := connect(ctx, g)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitTimeout
	}
	defer c.close()
	if err := c.subscribe(ctx, g.topic(id, "#")); err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	w := &watcher{g: g, out: out, v: newFleetView(g.prefix), one: id != "+", tty: !*plain && !g.json && isTerminal(out)}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case m := <-c.msgs:
			w.message(m)
		case now := <-tick.C:
			w.tick(now)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type watcher struct {
	g      *globals
	out    io.Writer
	v      *fleetView
	one    bool
	tty    bool
	recent []string
	dirty  bool
}

func (w *watcher) message(m msg) {
	b, suffix, changed := w.v.apply(m)
	line := ""
	switch {
	case b == nil:
		return
	case strings.HasPrefix(suffix, wire.TopicCmdReqPrefix), strings.HasPrefix(suffix, wire.TopicCmdResPrefix),
		suffix == wire.TopicConfigDesired:
		line = w.describeFleetSide(suffix, m.payload)
	case !changed:
		return
	default:
		line = describe(b, suffix, m.payload)
	}
	if line == "" || (suffix == wire.TopicTelemetry && !w.one && !w.g.json) {
		w.dirty = true
		return
	}
	w.emit(m.at, b.ID, suffix, m.payload, line)
}

func (w *watcher) emit(at time.Time, id, suffix string, payload []byte, line string) {
	switch {
	case w.g.json:
		var doc any
		if json.Unmarshal(payload, &doc) != nil {
			doc = line
		}
		b, _ := json.Marshal(map[string]any{"at": at.UTC().Format(time.RFC3339Nano), "id": id, "topic": suffix, "payload": doc})
		fmt.Fprintf(w.out, "%s\n", b)
	case w.tty:
		w.recent = append(w.recent, fmt.Sprintf("%s %-16s %s", at.Format("15:04:05"), id, line))
		if len(w.recent) > maxRecent {
			w.recent = w.recent[len(w.recent)-maxRecent:]
		}
		w.dirty = true
	default:
		fmt.Fprintf(w.out, "%s %s %s\n", at.Format("15:04:05"), id, line)
	}
}

// tick redraws the terminal view and reports boxes that went stale.
func (w *watcher) tick(now time.Time) {
	for _, b := range w.v.boxes {
		if b.stale(now) && !b.staleSaid {
			b.staleSaid = true
			w.emit(now, b.ID, "stale", nil, fmt.Sprintf("stale: online but no telemetry for %s", (staleIntervals*b.interval()).String()))
		}
	}
	if !w.tty || !w.dirty {
		return
	}
	w.dirty = false
	fmt.Fprint(w.out, "\x1b[H\x1b[2J")
	printTable(w.out, w.v.rows(now), now)
	fmt.Fprintln(w.out)
	for _, l := range w.recent {
		fmt.Fprintln(w.out, l)
	}
}

// describe is the one-line summary of a box document.
func describe(b *boxView, suffix string, payload []byte) string {
	switch {
	case suffix == wire.TopicStatus && b.Status != nil:
		s := b.Status
		if s.Online {
			return fmt.Sprintf("online %s sess=%d agent=%s", s.State, s.Sess, dash(s.Agent))
		}
		if s.Reason != "" {
			return fmt.Sprintf("offline %s (%s) sess=%d", s.State, s.Reason, s.Sess)
		}
		return fmt.Sprintf("offline %s sess=%d", s.State, s.Sess)
	case suffix == wire.TopicState && b.State != nil:
		r := b.row(time.Now())
		signal := dash(r.Signal)
		if r.Format != "" {
			signal += " " + r.Format
		}
		return fmt.Sprintf("state mode=%s mood=%s signal=%s outputs=%d/%d recording=%v", r.Mode, r.Mood, signal,
			r.OutputsUp, r.OutputsTotal, b.State.Recording)
	case suffix == wire.TopicMeta && b.Meta != nil:
		return fmt.Sprintf("meta agent=%s commands=%d", b.Meta.Agent, len(b.Meta.Commands))
	case suffix == wire.TopicTelemetry && b.Telemetry != nil:
		t := b.Telemetry
		temp, _ := t.Sys.MaxTempC()
		return fmt.Sprintf("telemetry cpu=%.0f%% temp=%.1f°C uptime=%ds", t.Sys.CPUPct, temp, t.UptimeS)
	case suffix == wire.TopicConfigReported && b.Reported != nil:
		r := b.Reported
		s := fmt.Sprintf("config desired=%d applied=%d %s", r.DesiredVersion, r.AppliedVersion, r.Status)
		for _, e := range r.Errors {
			s += "; " + e.Error()
		}
		return s
	case strings.HasPrefix(suffix, wire.TopicEvtPrefix):
		var e wire.Event
		if json.Unmarshal(payload, &e) != nil {
			return ""
		}
		s := "event " + e.Type
		if e.Output != "" {
			s += " output=" + e.Output
		}
		if e.Msg != "" {
			s += ": " + e.Msg
		}
		return s
	}
	return ""
}

func (w *watcher) describeFleetSide(suffix string, payload []byte) string {
	switch {
	case strings.HasPrefix(suffix, wire.TopicCmdReqPrefix):
		var r wire.CmdRequest
		_ = json.Unmarshal(payload, &r)
		return fmt.Sprintf("command %s id=%s", strings.TrimPrefix(suffix, wire.TopicCmdReqPrefix), r.ID)
	case strings.HasPrefix(suffix, wire.TopicCmdResPrefix):
		var r wire.CmdResponse
		if json.Unmarshal(payload, &r) != nil {
			return ""
		}
		s := fmt.Sprintf("answer %s id=%s %s", strings.TrimPrefix(suffix, wire.TopicCmdResPrefix), r.ID, r.Status)
		if r.Code != "" {
			s += " " + r.Code
		}
		if r.Msg != "" {
			s += ": " + r.Msg
		}
		return s
	case suffix == wire.TopicConfigDesired:
		var d wire.ConfigDesired
		_ = json.Unmarshal(payload, &d)
		return fmt.Sprintf("config desired version %d", d.Version)
	}
	return ""
}
