package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
)

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "ctl-" + hex.EncodeToString(b)
}

// parseArgs turns key=value words into the args object. Values are strings
// (every version 1 argument is); known commands are checked here so a typo
// fails before it is sent.
func parseArgs(name string, kv []string) (json.RawMessage, error) {
	m := map[string]string{}
	for _, w := range kv {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want key=value", w)
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	if spec, ok := wire.LookupCommand(name); ok {
		if _, err := wire.DecodeArgs(spec, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func cmdMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	outFile := fs.String("o", "", "snapshot: write the JPEG to this `file` (default ID-snapshot.jpg)")
	id := fs.String("id", "", "request `id` (default random); resend with the same id to be answered once")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) < 2 {
		fs.Usage()
		fmt.Fprintln(errw, "commands:")
		for _, c := range wire.Commands {
			var keys []string
			for _, a := range c.Args {
				keys = append(keys, a.Key+"=")
			}
			fmt.Fprintf(errw, "  %-17s %-8s %s\n", c.Name, strings.Join(keys, " "), c.Help)
		}
		return exitUsage
	}
	box, name := pos[0], pos[1]
	if !checkID(box, errw) {
		return exitUsage
	}
	if !wire.ValidName(name) {
		fmt.Fprintf(errw, "capboxctl: %q is not a command name\n", name)
		return exitUsage
	}
	argv, err := parseArgs(name, pos[2:])
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitUsage
	}
	reqID := *id
	if reqID == "" {
		reqID = newRequestID()
	}
	req := wire.CmdRequest{V: wire.SchemaVersion, ID: reqID, Args: argv, Exp: time.Now().Add(g.timeout).UnixMilli()}
	payload, _ := json.Marshal(req)

	c, err := connect(ctx, g)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitTimeout
	}
	defer c.close()
	if err := c.subscribeQoS(ctx, 1, g.topic(box, wire.TopicCmdResPrefix+name)); err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	if err := c.publish(ctx, g.topic(box, wire.TopicCmdReqPrefix+name), false, payload); err != nil {
		fmt.Fprintln(errw, "capboxctl: publish:", err)
		return exitTimeout
	}
	var res *wire.CmdResponse
	wctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	_ = c.until(wctx, func(m msg) bool {
		var r wire.CmdResponse
		if json.Unmarshal(m.payload, &r) != nil || r.ID != reqID {
			return false
		}
		if !r.Final() {
			if !g.json {
				fmt.Fprintf(errw, "%s: accepted, running...\n", box)
			}
			return false
		}
		res = &r
		return true
	})
	if res == nil {
		fmt.Fprintf(errw, "capboxctl: no answer from %s in %s (offline? see capboxctl status %s)\n", box, g.timeout, box)
		return exitTimeout
	}
	return printResponse(out, errw, g, box, name, *res, *outFile)
}

func printResponse(out, errw io.Writer, g *globals, box, name string, r wire.CmdResponse, outFile string) int {
	code := exitOK
	if !r.Succeeded() {
		code = exitFailed
	}
	if name == wire.CmdSnapshot && r.Succeeded() && len(r.Result) > 0 {
		var s wire.SnapshotResult
		if err := json.Unmarshal(r.Result, &s); err == nil && len(s.JPEG) > 0 {
			if outFile == "" {
				outFile = box + "-snapshot.jpg"
			}
			if err := os.WriteFile(outFile, s.JPEG, 0o644); err != nil {
				fmt.Fprintln(errw, "capboxctl:", err)
				return exitFailed
			}
			if !g.json {
				fmt.Fprintf(out, "%s: ok, %d byte JPEG written to %s\n", box, len(s.JPEG), outFile)
				return code
			}
		}
	}
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return code
	}
	line := fmt.Sprintf("%s: %s", box, r.Status)
	if r.Status == wire.ResDuplicate && r.FirstStatus != "" {
		line += " (first answer: " + r.FirstStatus + ")"
	}
	if r.Code != "" {
		line += " " + r.Code
	}
	if r.Msg != "" {
		line += ": " + r.Msg
	}
	w := out
	if code != exitOK {
		w = errw
	}
	fmt.Fprintln(w, line)
	if len(r.Result) > 0 {
		var v any
		if json.Unmarshal(r.Result, &v) == nil {
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintf(out, "%s\n", b)
		}
	}
	return code
}
