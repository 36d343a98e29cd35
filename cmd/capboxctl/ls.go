package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"capbox/agent/fleet/wire"
)

// snapshotMax bounds the wait for retained documents (ls answers in < 2 s).
const snapshotMax = 1500 * time.Millisecond

// snapshot subscribes to the retained documents of the boxes matching id
// ("+" for all) and folds them into a view.
func snapshot(ctx context.Context, c *client, g *globals, id string, wait time.Duration) (*fleetView, error) {
	v := newFleetView(g.prefix)
	var filters []string
	for _, s := range []string{wire.TopicStatus, wire.TopicMeta, wire.TopicState, wire.TopicTelemetry, wire.TopicConfigReported} {
		filters = append(filters, g.topic(id, s))
	}
	err := c.snapshot(ctx, wait, func(m msg) { v.apply(m) }, filters...)
	return v, err
}

func lsMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	wait := fs.Duration("wait", snapshotMax, "longest time to gather the retained documents")
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 0, errw) {
		return exitUsage
	}
	c, err := connect(ctx, g)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitTimeout
	}
	defer c.close()
	v, err := snapshot(ctx, c, g, "+", *wait)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	now := time.Now()
	rows := v.rows(now)
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rows)
		return exitOK
	}
	printTable(out, rows, now)
	return exitOK
}

func printTable(out io.Writer, rows []row, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	online := 0
	for _, r := range rows {
		if r.Online && !r.Stale {
			online++
		}
		fmt.Fprintln(tw, strings.Join(r.cells(now), "\t"))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "%d boxes, %d online\n", len(rows), online)
}
