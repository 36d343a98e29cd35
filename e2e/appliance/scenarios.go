package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// firstBoot: a fresh card bigger than the image, with a valid capbox.yaml
// on its CAPBOX partition. The data partition grows to the disk's end, the
// host name comes from the serial, the file is provisioned, and capboxd
// streams the test pattern to an SRT receiver on the host (through the
// loopback forward only) and records to /data.
func firstBoot(ctx context.Context, r *rig) error {
	if err := r.putOnESP(filepath.Join(r.dir, "valid.yaml"), "capbox.yaml"); err != nil {
		return err
	}
	var err error
	if r.yamlSHA, err = sha256File(filepath.Join(r.dir, "valid.yaml")); err != nil {
		return err
	}
	if err := r.boot(ctx); err != nil {
		return err
	}
	if r.slot() != "A" {
		return fmt.Errorf("a fresh card booted slot %q", r.slot())
	}
	// /data grows in the background of the boot: wait for it.
	var grow string
	err = poll(ctx, 3*time.Minute, func() bool {
		grow, err = r.m.sh(`d=$(basename $(readlink -f /dev/disk/by-label/capbox-data)); echo $(cat /sys/class/block/vda/size) $(cat /sys/class/block/$d/start) $(cat /sys/class/block/$d/size) $(df -B512 --output=size /data | tail -n 1)`)
		f := strings.Fields(grow)
		if err != nil || len(f) != 4 {
			return false
		}
		disk, start, size, fs := atoi(f[0]), atoi(f[1]), atoi(f[2]), atoi(f[3])
		// GPT keeps 33 sectors of backup at the end; ext4 itself uses some.
		return disk-(start+size) <= 2048 && fs > size*9/10
	})
	r.facts["data_sectors(disk start size fs)"] = grow
	if err != nil {
		return fmt.Errorf("/data did not grow to the disk's end: %s", grow)
	}
	host, err := r.m.sh("hostname")
	if err != nil || host != wantHostname {
		return fmt.Errorf("host name %q, want %s (%v)", host, wantHostname, err)
	}
	r.facts["hostname"] = host
	// Provisioning runs before the agent (capbox-provision.service is
	// ordered before capboxd.service): once the agent is up it has run.
	ready, err := r.waitAgent(ctx)
	if err != nil {
		return err
	}
	r.facts["power_on_to_agent_ready"] = ready.Round(time.Second).String()
	got, err := r.m.sh("sha256sum /data/capbox/capbox.yaml | cut -d' ' -f1; test -e /efi/capbox.yaml && echo yaml-still-on-card; " +
		"test -s /efi/capbox-provisioned.txt && echo receipt; cat /run/capbox-provision/capboxd.env")
	if err != nil {
		return err
	}
	lines := trimLines(got)
	if lines[0] != r.yamlSHA || !strings.Contains(got, "receipt") || strings.Contains(got, "yaml-still-on-card") ||
		!strings.Contains(got, "CAPBOXD_CONFIG=/data/capbox/capbox.yaml") {
		return fmt.Errorf("not provisioned: %s", got)
	}
	// The stream: the host is the SRT caller, through the UDP forward.
	ts := filepath.Join(r.out, "srt-first-boot.ts")
	first, frames, err := receiveSRT(ctx, r.srtPort, ts, 3*time.Minute)
	if err != nil {
		return err
	}
	r.facts["power_on_to_streaming"] = (time.Since(r.m.started) - time.Since(first)).Round(time.Second).String()
	r.facts["srt_frames"] = strconv.Itoa(frames)
	// The recording: segments of 10 s; one closed, decoded on the host.
	var segs string
	err = poll(ctx, 3*time.Minute, func() bool {
		segs, err = r.m.sh("find /data/recordings -type f -size +1k | sort | wc -l")
		return err == nil && atoi(segs) >= 2
	})
	if err != nil {
		return fmt.Errorf("no closed recording in /data/recordings (%s segments)", segs)
	}
	a, err := r.m.run(time.Minute, "f=$(find /data/recordings -type f -printf '%T@ %p\\n' | sort -n | head -n 1 | cut -d' ' -f2); base64 -w0 $f")
	if err != nil || a.Exit != 0 {
		return fmt.Errorf("reading a recording: %v %s", err, a.Out)
	}
	seg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Out))
	if err != nil {
		return err
	}
	rec := filepath.Join(r.out, "recording-first-boot.ts")
	if err := os.WriteFile(rec, seg, 0o644); err != nil {
		return err
	}
	n, err := countFrames(rec)
	if err != nil || n < 10 {
		return fmt.Errorf("the recording decodes to %d frames: %v", n, err)
	}
	r.facts["recording_frames_first_segment"] = strconv.Itoa(n)
	env, err := r.grubenv()
	if err != nil {
		return err
	}
	r.facts["grubenv"] = r.envString(env)
	if err := r.markedGood("A"); err != nil {
		return err
	}
	return nil
}

// markedGood waits for capbox-mark-good to commit the booted slot.
func (r *rig) markedGood(slot string) error {
	var env map[string]string
	err := poll(context.Background(), 4*time.Minute, func() bool {
		var err error
		env, err = r.grubenv()
		return err == nil && env[slot+"_OK"] == "1" && env[slot+"_TRY"] == "0"
	})
	if err != nil {
		return fmt.Errorf("slot %s not marked good: %s", slot, r.envString(env))
	}
	return nil
}

// foreignBundle: a bundle signed by a key the box's keyring does not
// trust is refused, and nothing changes.
func foreignBundle(ctx context.Context, r *rig) error {
	before, err := r.grubenv()
	if err != nil {
		return err
	}
	a, err := r.install("foreign")
	if err != nil {
		return err
	}
	r.facts["rauc_install"] = lastLine(a.Out)
	if a.Exit == 0 {
		return fmt.Errorf("a bundle signed by another key was installed: %s", a.Out)
	}
	if !strings.Contains(strings.ToLower(a.Out), "signature") && !strings.Contains(strings.ToLower(a.Out), "verif") {
		return fmt.Errorf("refused, but not for its signature: %s", a.Out)
	}
	after, err := r.grubenv()
	if err != nil {
		return err
	}
	if r.envString(before) != r.envString(after) {
		return fmt.Errorf("the boot order changed: %s -> %s", r.envString(before), r.envString(after))
	}
	return nil
}

// badUpdate installs a bundle into B and reboots into it; the box must come
// back to A by itself. onB watches B's boot until the machine goes off.
func badUpdate(ctx context.Context, r *rig, bundle string, onB func(m *machine) error) error {
	if r.slot() != "A" {
		return fmt.Errorf("starts on slot %s, want A", r.slot())
	}
	a, err := r.install(bundle)
	if err != nil || a.Exit != 0 {
		return fmt.Errorf("rauc install %s: %v %s", bundle, err, a.Out)
	}
	env, _ := r.grubenv()
	r.facts["grubenv_after_install"] = r.envString(env)
	if _, err := r.m.sh("mkdir -p /run/capbox && touch /run/capbox/reboot"); err != nil {
		return err
	}
	if err := r.ended(3 * time.Minute); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	r.m = nil
	r.boots++
	m, err := powerOn(ctx, bootSpec{disk: r.disk, testDisk: r.testDisk, vars: r.vars, srtPort: r.srtPort, serial: serial,
		consolePath: filepath.Join(r.out, fmt.Sprintf("console-%02d.log", r.boots))})
	if err != nil {
		return err
	}
	r.m = m
	onBStart := time.Now()
	if err := onB(m); err != nil {
		return err
	}
	if !strings.Contains(m.console.String(), "rauc.slot=B") {
		return fmt.Errorf("the box did not boot the new slot B:\n%s", m.console.Tail(20))
	}
	m.close()
	r.m = nil
	if err := r.boot(ctx); err != nil {
		return err
	}
	r.facts["time_to_fall_back"] = time.Since(onBStart).Round(time.Second).String()
	if r.slot() != "A" {
		return fmt.Errorf("after the bad slot the box booted %s, want A", r.slot())
	}
	env, err = r.grubenv()
	if err != nil {
		return err
	}
	r.facts["grubenv_back_on_A"] = r.envString(env)
	if env["B_OK"] != "0" {
		return fmt.Errorf("slot B still usable after its failed trial: %s", r.envString(env))
	}
	st, err := r.m.sh("rauc status --detailed --output-format=shell | grep -E '^RAUC_(SYSTEM_BOOTED_BOOTNAME|SLOT_(BOOTNAME|BOOT_STATUS)_)'")
	if err != nil {
		return err
	}
	r.facts["rauc_status"] = strings.Join(trimLines(st), " ")
	if _, err := r.waitAgent(ctx); err != nil {
		return fmt.Errorf("the agent on A after the fall back: %w", err)
	}
	v, err := r.m.sh("capboxd version | head -n 1")
	if err != nil {
		return err
	}
	r.facts["agent_on_A"] = v
	return r.markedGood("A")
}

// badAgent: B's agent exits at every start; capbox-mark-good gives it the
// trial window, then reboots, and GRUB leaves B.
func badAgent(ctx context.Context, r *rig) error {
	return badUpdate(ctx, r, "bad-agent", func(m *machine) error {
		if err := m.waitHello(bootTimeout); err != nil {
			return err
		}
		if m.hello.Slot != "B" {
			return fmt.Errorf("booted %s, want B", m.hello.Slot)
		}
		var log string
		err := poll(ctx, trialTimeout, func() bool {
			a, err := m.run(30*time.Second, "systemctl show -P NRestarts capboxd.service; journalctl -b -o cat -u capbox-mark-good.service")
			if err != nil {
				return true // going down
			}
			log = a.Out
			return strings.Contains(log, "was not ready within")
		})
		if err != nil || !strings.Contains(log, "rebooting to leave this slot") {
			return fmt.Errorf("capbox-mark-good did not leave B: %v\n%s", err, log)
		}
		r.facts["mark_good_on_B"] = lastLine(log)
		r.facts["capboxd_restarts_on_B"] = trimLines(log)[0]
		return m.waitOff(3 * time.Minute)
	})
}

// kernelHang: B's kernel panics once systemd drives the i6300ESB and stays
// down; the watchdog resets the box and GRUB leaves B.
func kernelHang(ctx context.Context, r *rig) error {
	return badUpdate(ctx, r, "bad-kernel", func(m *machine) error {
		if err := m.waitOff(watchdogLimit); err != nil {
			return fmt.Errorf("the hanging B was never reset: %w\n%s", err, m.console.Tail(20))
		}
		con := m.console.String()
		if !strings.Contains(con, "hanging the kernel") || !strings.Contains(con, "Kernel panic") {
			return fmt.Errorf("slot B ended without the panic the bundle makes:\n%s", m.console.Tail(20))
		}
		ev, ok := m.seen("WATCHDOG")
		if !ok {
			return fmt.Errorf("slot B ended without a watchdog reset (no QMP WATCHDOG event)")
		}
		r.facts["qmp"] = ev
		return nil
	})
}

// invalidConfig: an invalid capbox.yaml on the card stays there with
// capbox-error.txt beside it; the box keeps its previous config.
func invalidConfig(ctx context.Context, r *rig) error {
	if err := r.powerOff(); err != nil {
		return err
	}
	if err := r.putOnESP(filepath.Join(r.dir, "invalid.yaml"), "capbox.yaml"); err != nil {
		return err
	}
	bad, err := sha256File(filepath.Join(r.dir, "invalid.yaml"))
	if err != nil {
		return err
	}
	if err := r.boot(ctx); err != nil {
		return err
	}
	got, err := r.m.sh("sha256sum /efi/capbox.yaml /data/capbox/capbox.yaml | cut -d' ' -f1; cat /efi/capbox-error.txt; cat /run/capbox-provision/capboxd.env")
	if err != nil {
		return err
	}
	lines := trimLines(got)
	if lines[0] != bad || lines[1] != r.yamlSHA || !strings.Contains(got, "nosuchsection") || !strings.Contains(got, "CAPBOXD_CONFIG=/data/capbox/capbox.yaml") {
		return fmt.Errorf("want the invalid file kept, its errors beside it and the previous config running:\n%s", got)
	}
	r.facts["capbox-error.txt"] = strings.Join(trimLines(got)[2:4], " | ")
	if _, err := r.waitAgent(ctx); err != nil {
		return err
	}
	// Take the file away again, as the user would after reading the error.
	if _, err := r.m.sh("rm -f /efi/capbox.yaml /efi/capbox-error.txt && sync"); err != nil {
		return err
	}
	return nil
}

// powerCut: the power goes while RAUC writes slot B; the box boots A.
func powerCut(ctx context.Context, r *rig) error {
	if r.slot() != "A" {
		return fmt.Errorf("starts on slot %s, want A", r.slot())
	}
	// Any good bundle will do: A's own, written into the other slot, B.
	if _, err := r.m.sh("(rauc install /run/e2e/a.raucb >/run/install.log 2>&1 &)"); err != nil {
		return err
	}
	var progress string
	err := poll(ctx, installLimit, func() bool {
		a, err := r.m.run(30*time.Second, "busctl get-property de.pengutronix.rauc / de.pengutronix.rauc.Installer Progress 2>/dev/null; cat /run/install.log")
		progress = strings.TrimSpace(a.Out)
		return err == nil && strings.Contains(progress, "Copying image to rootfs")
	})
	if err != nil {
		return fmt.Errorf("never saw RAUC write slot B: %s", progress)
	}
	r.facts["cut_at"] = strings.Join(trimLines(progress)[:1], "")
	r.m.kill()
	r.m = nil
	if strings.Contains(progress, "Installing done") || strings.Contains(progress, "succeeded") {
		return fmt.Errorf("the install finished before the cut: %s", progress)
	}
	if err := r.boot(ctx); err != nil {
		return err
	}
	if r.slot() != "A" {
		return fmt.Errorf("after the cut the box booted %s, want A", r.slot())
	}
	env, err := r.grubenv()
	if err != nil {
		return err
	}
	r.facts["grubenv"] = r.envString(env)
	if env["B_OK"] == "1" {
		return fmt.Errorf("the half-written B is marked usable: %s", r.envString(env))
	}
	_, err = r.waitAgent(ctx)
	return err
}

// update: a good bundle with another version goes into B; after a reboot B
// runs, commits only once its agent is ready, and stays B after another
// reboot.
func update(ctx context.Context, r *rig) error {
	if r.slot() != "A" {
		return fmt.Errorf("starts on slot %s, want A", r.slot())
	}
	if before, err := r.dataState(); err == nil {
		r.dataBefore = before
	} else {
		return err
	}
	t0 := time.Now()
	a, err := r.install("b")
	if err != nil || a.Exit != 0 {
		return fmt.Errorf("rauc install: %v %s", err, a.Out)
	}
	r.facts["install"] = time.Since(t0).Round(time.Second).String()
	if err := r.reboot(ctx); err != nil {
		return err
	}
	if r.slot() != "B" {
		return fmt.Errorf("after the update the box booted %s, want B", r.slot())
	}
	if _, err := r.waitAgent(ctx); err != nil {
		return err
	}
	if err := r.markedGood("B"); err != nil {
		return err
	}
	r.facts["update_to_committed"] = time.Since(t0).Round(time.Second).String()
	// Committed after READY: the units' monotonic timestamps.
	ts, err := r.m.sh("systemctl show -P ActiveEnterTimestampMonotonic capboxd.service; systemctl show -P ActiveEnterTimestampMonotonic capbox-mark-good.service")
	if err != nil {
		return err
	}
	f := trimLines(ts)
	if len(f) != 2 || atoi(f[1]) < atoi(f[0]) || atoi(f[0]) == 0 {
		return fmt.Errorf("marked good before the agent was ready (capboxd, mark-good active at µs): %v", f)
	}
	v, err := r.m.sh("capboxd version | head -n 1; . /usr/lib/os-release; echo $IMAGE_VERSION")
	if err != nil {
		return err
	}
	if !strings.Contains(v, r.versionB) {
		return fmt.Errorf("slot B runs %q, want version %s", v, r.versionB)
	}
	r.facts["on_B"] = strings.Join(trimLines(v), " / ")
	if err := r.reboot(ctx); err != nil {
		return err
	}
	if r.slot() != "B" {
		return fmt.Errorf("the committed B was left at the next reboot for %s", r.slot())
	}
	_, err = r.waitAgent(ctx)
	return err
}

// dataSurvives: the provisioned config and every recording closed before
// the update are still on /data, unchanged.
func dataSurvives(ctx context.Context, r *rig) error {
	if r.dataBefore == "" {
		return fmt.Errorf("update did not run: nothing to compare")
	}
	now, err := r.dataState()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range trimLines(now) {
		have[l] = true
	}
	before := trimLines(r.dataBefore)
	if before[0] != r.yamlSHA {
		return fmt.Errorf("the config was not the provisioned one before the update")
	}
	for _, l := range before {
		if !have[l] {
			return fmt.Errorf("%q is gone or changed; /data now:\n%s", l, now)
		}
	}
	r.facts["kept"] = fmt.Sprintf("config and %d recordings", len(before)-1)
	return r.powerOff()
}

// receiveSRT calls the box's SRT listener through the forward and keeps
// what arrives until it decodes to 20 frames or more.
func receiveSRT(ctx context.Context, port int, path string, limit time.Duration) (time.Time, int, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, "gst-launch-1.0", "-q", "srtsrc",
		fmt.Sprintf("uri=srt://127.0.0.1:%d?mode=caller&latency=2000", port), "!", "filesink", "location="+path)
	if err := cmd.Start(); err != nil {
		return time.Time{}, 0, err
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	var first time.Time
	frames := 0
	err := poll(ctx, limit, func() bool {
		fi, err := os.Stat(path)
		if err != nil || fi.Size() == 0 {
			return false
		}
		if first.IsZero() {
			first = time.Now()
		}
		if fi.Size() < 100*1024 {
			return false
		}
		frames, _ = countFrames(path)
		return frames >= 20
	})
	if err != nil {
		return first, frames, fmt.Errorf("SRT from the box through 127.0.0.1:%d: %d frames decoded: %w", port, frames, err)
	}
	return first, frames, nil
}

// countFrames decodes a file's video with ffprobe.
func countFrames(path string) (int, error) {
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, err
	}
	return atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0])), nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), ","))
	return n
}

func lastLine(s string) string {
	l := trimLines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}
