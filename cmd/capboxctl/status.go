package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

func statusMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 1, errw) || !checkID(pos[0], errw) {
		return exitUsage
	}
	id := pos[0]
	c, err := connect(ctx, g)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitTimeout
	}
	defer c.close()
	v, err := snapshot(ctx, c, g, id, snapshotMax)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	b := v.boxes[id]
	if b == nil {
		fmt.Fprintf(errw, "capboxctl: no box %q has reported to %s\n", id, g.broker)
		return exitFailed
	}
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"id": id, "stale": b.stale(time.Now()), "status": b.Status, "meta": b.Meta,
			"state": b.State, "telemetry": b.Telemetry, "config_reported": b.Reported})
		return exitOK
	}
	printStatus(out, b, time.Now())
	return exitOK
}

func printStatus(out io.Writer, b *boxView, now time.Time) {
	r := b.row(now)
	fmt.Fprintf(out, "%s  online=%s", b.ID, r.onlineCell())
	if s := b.Status; s != nil {
		fmt.Fprintf(out, " status=%s sess=%d", s.State, s.Sess)
		if s.Reason != "" {
			fmt.Fprintf(out, " reason=%s", s.Reason)
		}
		if s.Agent != "" {
			fmt.Fprintf(out, " agent=%s", s.Agent)
		}
	}
	if r.LastSeenMS > 0 {
		fmt.Fprintf(out, " last seen %s", age(now.Sub(time.UnixMilli(r.LastSeenMS))))
	}
	fmt.Fprintln(out)
	if m := b.Meta; m != nil {
		var d detection
		if len(m.Detection) > 0 && json.Unmarshal(m.Detection, &d) == nil {
			fmt.Fprintf(out, "board     %s (%s) input %s encoder %s zero-copy=%v\n", d.Board.ID, d.Board.Model,
				dash(d.Chosen.VideoInput), dash(d.Chosen.Encoder), d.Chosen.ZeroCopy)
		}
		for _, o := range m.Outputs {
			fmt.Fprintf(out, "output    %-12s %s enabled=%v\n", o.Name, o.URL, o.Enabled)
		}
		fmt.Fprintf(out, "commands  %s\n", strings.Join(m.Commands, " "))
	}
	if s := b.State; s != nil {
		fmt.Fprintf(out, "state     mode=%s mood=%s signal=%s %s recording=%v config=%d\n",
			s.Mode, s.Mood, dash(s.Capture.Signal), s.Capture.Format, s.Recording, s.ConfigVersion)
		fmt.Fprintf(out, "moods     %s\n", sortedPairs(s.Moods))
		outs := map[string]string{}
		for k, v := range s.Outputs {
			outs[k] = v
		}
		fmt.Fprintf(out, "outputs   %s\n", sortedPairs(outs))
		if len(s.Alerts) > 0 {
			fmt.Fprintf(out, "alerts    %s\n", strings.Join(s.Alerts, "; "))
		}
	}
	if t := b.Telemetry; t != nil {
		fmt.Fprintf(out, "health    cpu=%.0f%% load=%.2f mem=%d/%dMB uptime=%s clock_synced=%v\n", t.Sys.CPUPct, t.Sys.Load1,
			t.Sys.MemTotalMB-t.Sys.MemAvailMB, t.Sys.MemTotalMB, time.Duration(t.UptimeS)*time.Second, t.Sys.ClockSynced)
		temps := map[string]string{}
		for k, v := range t.Sys.TempsC {
			temps[k] = fmt.Sprintf("%.1f°C", v)
		}
		if len(temps) > 0 {
			fmt.Fprintf(out, "temps     %s\n", sortedPairs(temps))
		}
		if len(t.Sys.Throttle.Now) > 0 || len(t.Sys.Throttle.SinceBoot) > 0 {
			fmt.Fprintf(out, "throttle  now=%v since_boot=%v\n", t.Sys.Throttle.Now, t.Sys.Throttle.SinceBoot)
		}
		if c := t.Capture; c != nil {
			fmt.Fprintf(out, "capture   %s signal=%v %dx%d@%.2f frames=%d dropped=%d\n", c.Device, c.Signal, c.Width, c.Height, c.FPS, c.Frames, c.Dropped)
		}
		if e := t.Encoder; e != nil {
			fmt.Fprintf(out, "encoder   %s hardware=%v zero_copy=%v %dkbps\n", e.Element, e.Hardware, e.ZeroCopy, e.BitrateKbps)
		}
		for _, o := range t.Outputs {
			fmt.Fprintf(out, "stream    %-12s %s %s %dkbps reconnects=%d rtt=%.0fms loss=%.2f%%\n", o.Name, o.Proto, o.State, o.BitrateKbps, o.Reconnects, o.RTTMs, o.LossPct)
		}
		if rec := t.Recording; rec != nil {
			fmt.Fprintf(out, "recording %s segments=%d free=%dMB\n", rec.Path, rec.Segments, rec.FreeMB)
		}
	}
	if rep := b.Reported; rep != nil {
		fmt.Fprintf(out, "config    desired=%d applied=%d %s", rep.DesiredVersion, rep.AppliedVersion, rep.Status)
		for _, e := range rep.Errors {
			fmt.Fprintf(out, "\n          %s", e.Error())
		}
		fmt.Fprintln(out)
	}
}

func sortedPairs[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// detection is the part of `capboxd detect --json` (DESIGN.md) status shows;
// board's own types are Linux-only, capboxctl is not.
type detection struct {
	Board struct {
		ID    string `json:"id"`
		Model string `json:"model"`
	} `json:"board"`
	Chosen struct {
		VideoInput string `json:"video_input"`
		Encoder    string `json:"encoder"`
		ZeroCopy   bool   `json:"zero_copy"`
	} `json:"chosen"`
}
