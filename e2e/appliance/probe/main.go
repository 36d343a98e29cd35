// Command appliance-probe runs in the virtual appliance's guest (never in the
// image) and executes the commands the harness sends over a virtio-serial
// port: one JSON request per line ({"id", "cmd", "timeout_s"}, run with
// sh -c), one JSON answer per line ({"id", "exit", "out"}). On every
// connection it first sends a hello with the boot id and the slot the box
// booted, so the harness knows which boot it talks to.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

type request struct {
	ID       int     `json:"id"`
	Cmd      string  `json:"cmd"`
	TimeoutS float64 `json:"timeout_s"`
}

type answer struct {
	ID     int    `json:"id"`
	Exit   int    `json:"exit"`
	Out    string `json:"out"`
	Hello  bool   `json:"hello,omitempty"`
	BootID string `json:"boot_id,omitempty"`
	Slot   string `json:"slot,omitempty"`
	Uptime string `json:"uptime,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: appliance-probe PORT")
		os.Exit(2)
	}
	for {
		f, err := os.OpenFile(os.Args[1], os.O_RDWR, 0)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		serve(f)
		f.Close()
		time.Sleep(200 * time.Millisecond)
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func serve(f *os.File) {
	enc := json.NewEncoder(f)
	slot := ""
	for _, a := range strings.Fields(readTrim("/proc/cmdline")) {
		if v, ok := strings.CutPrefix(a, "rauc.slot="); ok {
			slot = v
		}
	}
	up, _, _ := strings.Cut(readTrim("/proc/uptime"), " ")
	if err := enc.Encode(answer{Hello: true, BootID: readTrim("/proc/sys/kernel/random/boot_id"), Slot: slot, Uptime: up}); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = enc.Encode(answer{ID: -1, Exit: 2, Out: "bad request: " + err.Error()})
			continue
		}
		timeout := time.Duration(req.TimeoutS * float64(time.Second))
		if timeout <= 0 {
			timeout = time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		out, err := exec.CommandContext(ctx, "sh", "-c", req.Cmd).CombinedOutput()
		cancel()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
				code = ee.ExitCode()
			}
			if ctx.Err() != nil {
				out = append(out, []byte("\n(probe: timed out after "+timeout.String()+")")...)
			}
		}
		if err := enc.Encode(answer{ID: req.ID, Exit: code, Out: string(out)}); err != nil {
			return
		}
	}
}
