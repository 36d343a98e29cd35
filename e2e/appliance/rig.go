package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Timeouts for an emulated CPU shared with other work: generous, and each
// one a bound on a poll, never a sleep.
const (
	bootTimeout   = 8 * time.Minute  // power-on to the probe's hello
	agentTimeout  = 6 * time.Minute  // hello to capboxd.service active
	trialTimeout  = 12 * time.Minute // a bad slot's boot, the 180 s window and the reboot
	watchdogLimit = 10 * time.Minute // a hanging kernel's boot and the watchdog's reset
	installLimit  = 6 * time.Minute  // rauc install of a bundle
)

// serial is the box's DMI serial: capbox-hostname makes capbox-cafe1234.
const (
	serial       = "E2ESERIALCAFE1234"
	wantHostname = "capbox-cafe1234"
)

// rig is the box under test: its disk, the built images, the one machine
// that is powered on.
type rig struct {
	dir, out string
	disk     string
	testDisk string
	vars     string
	m        *machine
	boots    int
	srtPort  int
	versionA string
	versionB string
	facts    map[string]string
	// dataBefore is /data as first-boot left it (config hash, recordings).
	dataBefore string
	yamlSHA    string
}

func newRig(images, out string) (*rig, error) {
	r := &rig{dir: images, out: out}
	for _, f := range []string{"img-a/disk.img", "valid.yaml", "invalid.yaml"} {
		if _, err := os.Stat(filepath.Join(images, f)); err != nil {
			return nil, fmt.Errorf("%v (make e2e-image builds the images)", err)
		}
	}
	var err error
	if r.versionA, err = readVersion(filepath.Join(images, "img-a/version")); err != nil {
		return nil, err
	}
	r.versionB, _ = readVersion(filepath.Join(images, "img-b/version"))
	r.disk = filepath.Join(out, "disk.img")
	r.vars = filepath.Join(out, "OVMF_VARS.fd")
	// The card is bigger than the image: first boot grows /data to its end.
	for _, c := range [][]string{
		{"cp", "--sparse=always", filepath.Join(images, "img-a/disk.img"), r.disk},
		{"truncate", "-s", "3G", r.disk},
		{"cp", "/usr/share/OVMF/OVMF_VARS_4M.fd", r.vars},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%v: %v: %s", c, err, out)
		}
	}
	// The test disk hands the guest the bundles (FAT, label E2E).
	r.testDisk = filepath.Join(out, "bundles.img")
	// Every bundle that was built: a scenario whose bundle is missing fails.
	var size int64
	var bundles []string
	for _, b := range []string{"a", "b", "bad-agent", "bad-kernel", "foreign"} {
		if fi, err := os.Stat(filepath.Join(images, "img-"+b, "capbox-x86_64.raucb")); err == nil {
			size += fi.Size()
			bundles = append(bundles, b)
		}
	}
	kib := size/1024 + 64*1024
	if o, err := exec.Command("mkfs.vfat", "-C", "-n", "E2E", r.testDisk, strconv.FormatInt(kib, 10)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.vfat: %v: %s", err, o)
	}
	for _, b := range bundles {
		if o, err := exec.Command("mcopy", "-i", r.testDisk, filepath.Join(images, "img-"+b, "capbox-x86_64.raucb"), "::"+b+".raucb").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("mcopy: %v: %s", err, o)
		}
	}
	return r, nil
}

func readVersion(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// espOffset is where the ESP (partition 1) starts in the disk image.
func (r *rig) espOffset() (string, error) {
	out, err := exec.Command("sfdisk", "--dump", r.disk).Output()
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "1 : start=") {
			f := strings.Fields(strings.SplitN(l, "start=", 2)[1])
			n, err := strconv.Atoi(strings.TrimSuffix(f[0], ","))
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s@@%d", r.disk, n*512), nil
		}
	}
	return "", fmt.Errorf("no partition 1 in %s", r.disk)
}

// putOnESP copies a file onto the CAPBOX partition while the box is off,
// as a user with a card reader would.
func (r *rig) putOnESP(src, name string) error {
	if r.m != nil {
		return fmt.Errorf("the box is on")
	}
	img, err := r.espOffset()
	if err != nil {
		return err
	}
	if o, err := exec.Command("mcopy", "-o", "-i", img, src, "::"+name).CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy: %v: %s", err, o)
	}
	return nil
}

// boot powers the box on and waits for its probe.
func (r *rig) boot(ctx context.Context) error {
	if r.m != nil {
		return fmt.Errorf("already on")
	}
	r.boots++
	if r.srtPort == 0 {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		r.srtPort = l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
	}
	m, err := powerOn(ctx, bootSpec{disk: r.disk, testDisk: r.testDisk, vars: r.vars, srtPort: r.srtPort, serial: serial,
		consolePath: filepath.Join(r.out, fmt.Sprintf("console-%02d.log", r.boots))})
	if err != nil {
		return err
	}
	r.m = m
	if err := m.waitHello(bootTimeout); err != nil {
		return err
	}
	fmt.Printf("         boot %d: slot %s, probe after %s\n", r.boots, m.hello.Slot, time.Since(m.started).Round(time.Second))
	_, err = m.sh("mkdir -p /run/e2e && (mountpoint -q /run/e2e || mount -o ro /dev/disk/by-label/E2E /run/e2e)")
	return err
}

// ended waits for the box to go off by itself and forgets the machine.
func (r *rig) ended(timeout time.Duration) error {
	if r.m == nil {
		return nil
	}
	err := r.m.waitOff(timeout)
	if err != nil {
		return err
	}
	r.m.close()
	return nil
}

// reboot asks for a reboot the way the agent does (the flag file that
// capbox-reboot.path watches), then powers the box on again (QEMU ends on
// a reboot).
func (r *rig) reboot(ctx context.Context) error {
	if _, err := r.m.sh("mkdir -p /run/capbox && touch /run/capbox/reboot"); err != nil {
		return err
	}
	if err := r.ended(3 * time.Minute); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	r.m = nil
	return r.boot(ctx)
}

// powerOff shuts the box down cleanly.
func (r *rig) powerOff() error {
	_, _ = r.m.run(10*time.Second, "systemctl --no-block poweroff")
	if err := r.ended(3 * time.Minute); err != nil {
		return err
	}
	r.m = nil
	return nil
}

func (r *rig) off() {
	if r.m != nil {
		r.m.kill()
		r.m = nil
	}
}

// slot is the slot the running box booted.
func (r *rig) slot() string { return r.m.hello.Slot }

// grubenv is RAUC's GRUB environment on the ESP, as grub-editenv lists it.
func (r *rig) grubenv() (map[string]string, error) {
	out, err := r.m.sh("grub-editenv /efi/EFI/BOOT/grubenv list")
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, l := range trimLines(out) {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

func (r *rig) envString(env map[string]string) string {
	return fmt.Sprintf("ORDER=%q A_OK=%s A_TRY=%s B_OK=%s B_TRY=%s", env["ORDER"], env["A_OK"], env["A_TRY"], env["B_OK"], env["B_TRY"])
}

// waitAgent waits for capboxd.service to be active (the agent sent READY).
func (r *rig) waitAgent(ctx context.Context) (time.Duration, error) {
	var last string
	err := poll(ctx, agentTimeout, func() bool {
		a, err := r.m.run(30*time.Second, "systemctl is-active capboxd.service")
		last = strings.TrimSpace(a.Out)
		return err == nil && a.Exit == 0
	})
	if err != nil {
		st, _ := r.m.run(30*time.Second, "systemctl status --no-pager capboxd.service | tail -n 20")
		return 0, fmt.Errorf("capboxd.service %s: %w\n%s", last, err, st.Out)
	}
	return time.Since(r.m.started), nil
}

// install runs rauc install of a bundle on the test disk.
func (r *rig) install(name string) (answer, error) {
	if _, err := os.Stat(filepath.Join(r.dir, "img-"+name, "capbox-x86_64.raucb")); err != nil {
		return answer{}, fmt.Errorf("bundle %s not built: %w", name, err)
	}
	return r.m.run(installLimit, "rauc install /run/e2e/"+name+".raucb 2>&1")
}

// dataState is what must survive: the provisioned config and every closed
// recording with its size.
func (r *rig) dataState() (string, error) {
	return r.m.sh("sha256sum /data/capbox/capbox.yaml | cut -d' ' -f1; find /data/recordings -type f -printf '%T@ %s %p\\n' | sort -n | head -n -1 | cut -d' ' -f2- | sort -k2")
}

func sha256File(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}
