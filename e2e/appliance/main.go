// Command e2e-appliance boots the x86_64 image's logic in QEMU (OVMF, GRUB
// from the image's grub.cfg, RAUC with the image's system.conf, its overlay
// and units, Debian's kernel and userland standing in for Buildroot's: see
// docs/IMAGE.md) and proves the A/B behaviour by booting it. The scenarios
// run in order on one disk, each starting and ending with the box up:
//
//	first-boot            data grows, host name, capbox.yaml provisioned, SRT and recording
//	foreign-bundle        a bundle signed by another key is refused
//	bad-agent             an update whose agent never becomes ready is left by a reboot
//	kernel-hang           an update whose kernel hangs is left after the watchdog's reset
//	invalid-config        an invalid capbox.yaml stays with capbox-error.txt, the config is kept
//	power-cut             an install cut by a power loss: the box boots A
//	update                a good update: B runs, commits after its agent is ready, stays B
//	data-survives         /data (config, recordings) is what it was after first-boot
//
// -run selects scenarios by a regular expression (first-boot always runs).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

func main() {
	os.Exit(run())
}

type scenario struct {
	name  string
	issue string // the issue's scenario number
	fn    func(ctx context.Context, r *rig) error
}

var scenarios = []scenario{
	{"first-boot", "1", firstBoot},
	{"foreign-bundle", "5", foreignBundle},
	{"bad-agent", "3", badAgent},
	{"kernel-hang", "3", kernelHang},
	{"invalid-config", "1", invalidConfig},
	{"power-cut", "4", powerCut},
	{"update", "2", update},
	{"data-survives", "5", dataSurvives},
}

type result struct {
	Name    string            `json:"name"`
	Issue   string            `json:"issue"`
	Pass    bool              `json:"pass"`
	Error   string            `json:"error,omitempty"`
	Seconds float64           `json:"seconds"`
	Facts   map[string]string `json:"facts,omitempty"`
}

func run() int {
	var (
		images  = flag.String("images", ".cache/appliance", "the appliance cache (make e2e-image builds it)")
		out     = flag.String("out", "", "results directory (default IMAGES/results)")
		runPat  = flag.String("run", "", "only scenarios matching this regular expression (first-boot always runs)")
		timeout = flag.Duration("timeout", 60*time.Minute, "limit for the whole run")
		list    = flag.Bool("list", false, "list the scenarios")
	)
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-16s issue scenario %s\n", s.name, s.issue)
		}
		return 0
	}
	sel, err := regexp.Compile(*runPat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-appliance:", err)
		return 2
	}
	if *out == "" {
		*out = filepath.Join(*images, "results")
	}
	_ = os.RemoveAll(*out)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-appliance:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r, err := newRig(*images, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-appliance:", err)
		return 1
	}
	defer r.off()
	start := time.Now()
	var results []result
	failed := 0
	for _, s := range scenarios {
		if s.name != "first-boot" && !sel.MatchString(s.name) {
			continue
		}
		fmt.Printf("=== %s (issue scenario %s)\n", s.name, s.issue)
		r.facts = map[string]string{}
		t0 := time.Now()
		err := s.fn(ctx, r)
		res := result{Name: s.name, Issue: s.issue, Pass: err == nil, Seconds: time.Since(t0).Seconds(), Facts: r.facts}
		if err != nil {
			res.Error = err.Error()
			failed++
			fmt.Printf("--- FAIL %s (%.0fs): %v\n", s.name, res.Seconds, err)
			if r.m != nil {
				fmt.Printf("console tail:\n%s\n", r.m.console.Tail(40))
				if a, err := r.m.run(time.Minute, "systemctl --failed --no-pager; journalctl -b -o short-monotonic --no-pager -n 80 "+
					"-u capbox-growdata -u capbox-provision -u capbox-hostname -u capboxd -u capbox-mark-good -u rauc"); err == nil {
					fmt.Printf("the box's journal:\n%s\n", a.Out)
				}
			}
		} else {
			fmt.Printf("--- ok   %s (%.0fs)\n", s.name, res.Seconds)
		}
		for k, v := range r.facts {
			fmt.Printf("         %s: %s\n", k, v)
		}
		results = append(results, res)
		if err != nil && (s.name == "first-boot" || r.m == nil) {
			break // the box is not up: the rest would only time out
		}
	}
	if f, err := os.Create(filepath.Join(*out, "results.jsonl")); err == nil {
		enc := json.NewEncoder(f)
		for _, res := range results {
			_ = enc.Encode(res)
		}
		f.Close()
	}
	fmt.Printf("\nvirtual appliance: %d passed, %d failed, %s, results and consoles in %s\n",
		len(results)-failed, failed, time.Since(start).Round(time.Second), *out)
	if failed > 0 || len(results) == 0 {
		fmt.Println("FAIL")
		return 1
	}
	fmt.Println("PASS")
	return 0
}

func trimLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
