// Command e2e-vm boots the virtual capture box and judges what it reports: QEMU (TCG, one
// vCPU, under timeout) with Debian's kernel from .cache/e2e/<arch>, the host's root shared
// read-only, a writable results share, and e2e/guest-boot.sh as the guest's init. It fails on
// any failed or unimplemented scenario, on a guest oops or panic, and on no result.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"capbox/e2e/result"
)

func main() {
	os.Exit(run())
}

// machine is how one guest architecture boots.
type machine struct {
	qemu    string
	args    []string
	console string
	kernel  string // under kernel/boot, %s = kernel release
	// ownRoot: the guest's root is .cache/e2e/<arch>/root (a debootstrap of that
	// architecture), with the checkout shared beside it; otherwise it is the host's /.
	ownRoot bool
}

var machines = map[string]machine{
	"amd64": {
		qemu:    "qemu-system-x86_64",
		args:    []string{"-accel", "tcg", "-cpu", "max", "-M", "q35"},
		console: "ttyS0",
		kernel:  "vmlinuz-%s",
	},
	"arm64": {
		qemu:    "qemu-system-aarch64",
		args:    []string{"-accel", "tcg", "-cpu", "cortex-a72", "-M", "virt"},
		console: "ttyAMA0",
		kernel:  "vmlinuz-%s",
		ownRoot: true,
	},
}

func run() int {
	var (
		arch    = flag.String("arch", "amd64", "guest architecture: amd64 or arm64")
		repo    = flag.String("repo", ".", "the capbox checkout (shared with the guest at the same path)")
		runPat  = flag.String("run", "", "only scenarios matching this regular expression (no spaces)")
		timeout = flag.Duration("timeout", 20*time.Minute, "hard limit for the whole guest")
		memMB   = flag.Int("m", 2048, "guest memory, MiB")
		out     = flag.String("out", "", "results directory (default .cache/e2e/<arch>/results)")
		verbose = flag.Bool("v", false, "guest debug logging")
		script  = flag.String("script", "", "run this shell script in the guest (devices loaded) instead of the suite")
	)
	flag.Parse()
	m, ok := machines[*arch]
	if !ok {
		fmt.Fprintf(os.Stderr, "e2e: unknown -arch %q\n", *arch)
		return 2
	}
	if strings.ContainsAny(*runPat, " \t\n") {
		fmt.Fprintln(os.Stderr, "e2e: -run must not contain white space (it goes on the kernel command line)")
		return 2
	}
	root, err := filepath.Abs(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	versions, err := readVersions(filepath.Join(root, "e2e", "versions.env"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	kver := versions["E2E_KERNEL_ABI"] + "-" + *arch
	cache := filepath.Join(root, ".cache", "e2e", *arch)
	if *out == "" {
		*out = filepath.Join(cache, "results")
	}
	for _, f := range []string{filepath.Join(cache, "kernel", "boot", fmt.Sprintf(m.kernel, kver)), filepath.Join(cache, "initrd.gz"), filepath.Join(cache, "bin", "e2e-guest")} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v (run make e2e-prepare)\n", err)
			return 2
		}
	}
	if err := os.RemoveAll(*out); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o777); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	cmdline := []string{
		"console=" + m.console, "quiet", "loglevel=4", "panic=-1", "oops=panic", "rw",
		"capbox.init=" + filepath.Join(root, "e2e", "guest-boot.sh"),
		"capbox.repo=" + root, "capbox.arch=" + *arch,
	}
	if *runPat != "" {
		cmdline = append(cmdline, "capbox.run="+*runPat)
	}
	if *script != "" {
		abs, err := filepath.Abs(*script)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		cmdline = append(cmdline, "capbox.script="+abs)
	}
	if *verbose {
		cmdline = append(cmdline, "capbox.verbose=1")
	}
	rootPath := "/"
	if m.ownRoot {
		rootPath = filepath.Join(cache, "root")
		cmdline = append(cmdline, "capbox.reposhare=1")
	}
	qargs := append([]string{fmt.Sprintf("--kill-after=%d", 10), fmt.Sprintf("%d", int(timeout.Seconds())), m.qemu}, m.args...)
	qargs = append(qargs,
		"-m", fmt.Sprint(*memMB), "-smp", "1",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", filepath.Join(cache, "kernel", "boot", fmt.Sprintf(m.kernel, kver)),
		"-initrd", filepath.Join(cache, "initrd.gz"),
		"-append", strings.Join(cmdline, " "),
		"-virtfs", "local,path="+rootPath+",mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path="+*out+",mount_tag=results,security_model=none,multidevs=remap",
	)
	if m.ownRoot {
		qargs = append(qargs, "-virtfs", "local,path="+root+",mount_tag=repo,security_model=none,readonly=on,multidevs=remap")
	}
	start := time.Now()
	console, err := boot(qargs, filepath.Join(*out, "console.log"))
	wall := time.Since(start)

	var problems []error
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 124 {
			problems = append(problems, fmt.Errorf("the guest hit the %s timeout", *timeout))
		} else {
			problems = append(problems, fmt.Errorf("qemu: %w", err))
		}
	}
	problems = append(problems, kernelTrouble(console)...)
	keepRegistry(filepath.Join(*out, "gst-registry.bin"), filepath.Join(cache, "gst-registry.bin"))

	f, err := os.Open(filepath.Join(*out, "results.jsonl"))
	var suite result.Suite
	if err != nil {
		problems = append(problems, fmt.Errorf("no result: %w", err))
	} else {
		var perr error
		suite, perr = result.Read(f)
		f.Close()
		if perr != nil {
			problems = append(problems, perr)
		}
	}
	fmt.Println()
	fmt.Printf("virtual capture box (%s), results in %s\n", *arch, *out)
	suite.Report(os.Stdout)
	if err := suite.Verdict(); err != nil {
		problems = append(problems, err)
	}
	fmt.Printf("wall time %s (boot to runner: %s)\n", wall.Round(100*time.Millisecond), bootTime(console))
	if len(problems) > 0 {
		fmt.Println("FAIL:", errors.Join(problems...))
		return 1
	}
	fmt.Println("PASS")
	return 0
}

// boot runs QEMU under timeout(1), teeing the guest console to the terminal and a log file,
// and returns the console text.
func boot(args []string, logPath string) (string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.CommandContext(context.Background(), "timeout", args...)
	cmd.Stdin = nil
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", err
	}
	var sb strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			sb.WriteString(line + "\n")
			fmt.Fprintln(logf, line)
			fmt.Println("  | " + line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Wait()
	pw.Close()
	<-done
	return sb.String(), err
}

// kernelTrouble finds the kernel's own failure reports on the console.
func kernelTrouble(console string) []error {
	var errs []error
	for _, line := range strings.Split(console, "\n") {
		for _, marker := range []string{"Kernel panic", "Oops:", "BUG:", "WARNING: CPU:", "general protection fault", "Call Trace:", "Internal error:", "Unable to handle kernel"} {
			if strings.Contains(line, marker) {
				errs = append(errs, fmt.Errorf("guest kernel: %s", strings.TrimSpace(line)))
				break
			}
		}
	}
	return errs
}

func bootTime(console string) string {
	for _, line := range strings.Split(console, "\n") {
		if _, after, ok := strings.Cut(line, "capbox-e2e: guest up at "); ok {
			return strings.Fields(after)[0]
		}
	}
	return "unknown"
}

// readVersions reads the KEY=VALUE pins shared with the shell scripts and make.
func readVersions(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = val
		}
	}
	if v["E2E_KERNEL_ABI"] == "" {
		return nil, fmt.Errorf("%s: no E2E_KERNEL_ABI", path)
	}
	return v, nil
}

// keepRegistry saves the GStreamer registry a guest built for its own root (arm64: there is
// no host-built one for it), so the next boot rescans only what changed.
func keepRegistry(from, to string) {
	if _, err := os.Stat(to); err == nil {
		return
	}
	b, err := os.ReadFile(from)
	if err != nil || len(b) == 0 {
		return
	}
	_ = os.WriteFile(to, b, 0o644)
}
