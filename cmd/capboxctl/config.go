package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"capbox/agent/fleet/wire"
)

func configMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	reveal := fs.Bool("reveal", false, "get: print stream keys and passwords instead of ***")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) < 2 {
		fs.Usage()
		return exitUsage
	}
	switch pos[0] {
	case "get":
		if !wantArgs(fs, pos, 2, errw) || !checkID(pos[1], errw) {
			return exitUsage
		}
		return configGet(ctx, g, pos[1], *reveal, out, errw)
	case "set":
		if !wantArgs(fs, pos, 3, errw) || !checkID(pos[1], errw) {
			return exitUsage
		}
		return configSet(ctx, g, pos[1], pos[2], out, errw)
	}
	fs.Usage()
	return exitUsage
}

// openConfig connects and reads a box's configuration documents; a code
// other than exitOK says the call failed (and why, on errw).
func openConfig(ctx context.Context, g *globals, id string, errw io.Writer) (*client, *wire.ConfigDesired, *wire.ConfigReported, int) {
	c, err := connect(ctx, g)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return nil, nil, nil, exitTimeout
	}
	d, r, err := configDocs(ctx, c, g, id)
	if err != nil {
		c.close()
		fmt.Fprintln(errw, "capboxctl:", err)
		return nil, nil, nil, exitFailed
	}
	return c, d, r, exitOK
}

// configDocs reads the retained desired and reported documents of a box.
func configDocs(ctx context.Context, c *client, g *globals, id string) (*wire.ConfigDesired, *wire.ConfigReported, error) {
	var d *wire.ConfigDesired
	var r *wire.ConfigReported
	err := c.snapshot(ctx, snapshotMax, func(m msg) {
		switch m.topic {
		case g.topic(id, wire.TopicConfigDesired):
			if x, err := wire.DecodeDesired(m.payload); err == nil {
				d = &x
			}
		case g.topic(id, wire.TopicConfigReported):
			var x wire.ConfigReported
			if json.Unmarshal(m.payload, &x) == nil && (r == nil || r.Before(x.Header)) {
				r = &x
			}
		}
	}, g.topic(id, wire.TopicConfigDesired), g.topic(id, wire.TopicConfigReported))
	return d, r, err
}

func configGet(ctx context.Context, g *globals, id string, reveal bool, out, errw io.Writer) int {
	c, d, r, code := openConfig(ctx, g, id, errw)
	if code != exitOK {
		return code
	}
	defer c.close()
	if d == nil && r == nil {
		fmt.Fprintf(errw, "capboxctl: %s has no desired config and reported none (it runs its file)\n", id)
		return exitFailed
	}
	var doc json.RawMessage
	if d != nil {
		doc = d.Config
		if !reveal {
			if red, err := wire.RedactDoc(d.Config); err == nil {
				doc = red
			}
		}
	}
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		v := map[string]any{"id": id, "reported": r}
		if d != nil {
			v["desired"] = map[string]any{"version": d.Version, "config": doc}
		}
		_ = enc.Encode(v)
		return exitOK
	}
	if r != nil {
		fmt.Fprintf(out, "reported: desired %d, applied %d, %s", r.DesiredVersion, r.AppliedVersion, r.Status)
		if r.EffectiveSHA256 != "" {
			fmt.Fprintf(out, ", effective sha256 %s", r.EffectiveSHA256)
		}
		fmt.Fprintln(out)
		for _, e := range r.Errors {
			fmt.Fprintf(out, "  %s\n", e.Error())
		}
	}
	if d != nil {
		var v any
		_ = json.Unmarshal(doc, &v)
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(out, "desired version %d:\n%s\n", d.Version, b)
	}
	return exitOK
}

// maxConfigFile bounds the file read (the agent's own limit).
const maxConfigFile = 64 << 10

// configSet publishes the file as the next version (above both the desired
// and the applied one) and waits for the box's report: the box validates
// with its own parser and lists every problem by path.
func configSet(ctx context.Context, g *globals, id, file string, out, errw io.Writer) int {
	data, err := os.ReadFile(filepath.Clean(file))
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitUsage
	}
	if len(data) > maxConfigFile {
		fmt.Fprintf(errw, "capboxctl: %s is larger than %d bytes\n", file, maxConfigFile)
		return exitUsage
	}
	doc, err := wire.DocFromYAML(data)
	if err != nil {
		fmt.Fprintf(errw, "capboxctl: %s: %v\n", file, err)
		return exitUsage
	}
	c, d, r, code := openConfig(ctx, g, id, errw)
	if code != exitOK {
		return code
	}
	defer c.close()
	version, err := nextVersion(d, r)
	if err != nil {
		fmt.Fprintf(errw, "capboxctl: %s: %v\n", id, err)
		return exitFailed
	}
	payload, _ := json.Marshal(wire.ConfigDesired{V: wire.SchemaVersion, Version: version, Config: doc})
	if len(payload) > wire.MaxPayload {
		fmt.Fprintf(errw, "capboxctl: the document is %d bytes, over the %d byte limit\n", len(payload), wire.MaxPayload)
		return exitFailed
	}
	if err := c.publish(ctx, g.topic(id, wire.TopicConfigDesired), true, payload); err != nil {
		fmt.Fprintln(errw, "capboxctl: publish:", err)
		return exitTimeout
	}
	if !g.json {
		fmt.Fprintf(out, "%s: desired version %d sent, waiting for the box...\n", id, version)
	}
	var rep *wire.ConfigReported
	wctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	_ = c.until(wctx, func(m msg) bool {
		var x wire.ConfigReported
		if m.topic != g.topic(id, wire.TopicConfigReported) || json.Unmarshal(m.payload, &x) != nil || x.DesiredVersion != version {
			return false
		}
		rep = &x
		return true
	})
	if rep == nil {
		fmt.Fprintf(errw, "capboxctl: %s did not report version %d within %s; it stays retained and applies when the box connects\n",
			id, version, g.timeout.Round(time.Second))
		return exitTimeout
	}
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(out, "%s: version %d %s (applied %d)\n", id, version, rep.Status, rep.AppliedVersion)
		for _, e := range rep.Errors {
			fmt.Fprintf(out, "  %s\n", e.Error())
		}
	}
	if rep.Status != wire.ConfigApplied {
		return exitFailed
	}
	return exitOK
}

// nextVersion is the version after every one the box was sent or applied.
// A retained desired version out of the protocol's range (the box refused
// it) does not count.
func nextVersion(d *wire.ConfigDesired, r *wire.ConfigReported) (int64, error) {
	var last int64
	if d != nil && d.Version <= wire.MaxConfigVersion {
		last = max(last, d.Version)
	}
	if r != nil {
		last = max(last, r.AppliedVersion, r.DesiredVersion)
	}
	if last >= wire.MaxConfigVersion {
		return 0, fmt.Errorf("every config version is used (the last is %d); clear its retained config/desired and state to start again", last)
	}
	return last + 1, nil
}
