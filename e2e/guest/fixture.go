package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"capbox/board"
)

// sysfsRoots are the parts of /sys and /proc a V4L2 discovery reads on this box: the
// video4linux and media class entries, the vivid and vicodec platform devices they point at,
// their drivers, and the DMI identity an x86 board is known by.
var sysfsRoots = []string{
	"/sys/class/video4linux",
	"/sys/bus/media/devices",
	"/sys/devices/platform/vivid.0",
	"/sys/devices/platform/vicodec.0",
	"/sys/bus/platform/drivers/vivid",
	"/sys/bus/platform/drivers/vicodec",
	"/sys/class/dmi/id",
	"/sys/devices/virtual/dmi/id",
	"/proc/cpuinfo",
}

// skipSysfs are attributes not worth keeping or that act when read.
var skipSysfs = map[string]bool{"power": true, "remove": true, "bind": true, "unbind": true, "new_id": true, "remove_id": true}

// copySysfs copies a sysfs tree: regular attributes as files (at most 64 KiB), symbolic links
// as links (targets are relative, so the copy is self-consistent where both ends were copied),
// directories without following links.
func copySysfs(src, dstRoot string) error {
	var errs []error
	walk := func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if skipSysfs[d.Name()] && path != src {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(dstRoot, path)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			_ = os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.Symlink(target, dst); err != nil && !errors.Is(err, fs.ErrExist) {
				errs = append(errs, err)
			}
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		default:
			info, err := d.Info()
			if err != nil || info.Mode().Perm()&0o444 == 0 {
				return nil
			}
			b, err := readLimited(path, 64<<10)
			if err != nil {
				return nil // write-only or refusing attributes are not part of the state
			}
			_ = os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	}
	if err := filepath.WalkDir(src, walk); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func readLimited(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := f.Read(buf)
	if k == 0 && err != nil {
		return nil, err
	}
	return buf[:k], nil
}

// sysfsFixture: scenario 1's fixture before (and besides) capboxd snapshot: the raw sysfs the
// guest shows for vivid and vicodec, the device nodes and udev links, and v4l2-ctl's answers
// for each node, shipped as results/fixture-sysfs.tar; `make e2e-fixture` puts it in e2e/fixtures.
func sysfsFixture(ctx context.Context, t *T) {
	e := t.e
	// Built on tmpfs and shipped as one tar: file-by-file writes over 9p cost ~0.2 s each.
	dir := filepath.Join(os.TempDir(), "fixture-sysfs")
	_ = os.RemoveAll(dir)
	var warns []string
	for _, root := range sysfsRoots {
		if _, err := os.Lstat(root); err != nil {
			warns = append(warns, root+": absent")
			continue
		}
		if err := copySysfs(root, dir); err != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", root, err))
		}
	}
	// Class entries point into /sys/devices/...; copy every target too.
	ents, _ := os.ReadDir("/sys/class/video4linux")
	for _, en := range ents {
		if real, err := filepath.EvalSymlinks(filepath.Join("/sys/class/video4linux", en.Name())); err == nil {
			_ = copySysfs(real, dir)
		}
	}
	var manifest bytes.Buffer
	nodes, _ := filepath.Glob("/dev/video*")
	media, _ := filepath.Glob("/dev/media*")
	links, _ := filepath.Glob("/dev/v4l/by-*/*")
	sort.Strings(links)
	for _, n := range append(nodes, media...) {
		var st = new(fsStat)
		if err := st.load(n); err == nil {
			fmt.Fprintf(&manifest, "%s char %d:%d\n", n, st.major, st.minor)
		}
	}
	for _, l := range links {
		target, _ := os.Readlink(l)
		fmt.Fprintf(&manifest, "%s -> %s\n", l, target)
	}
	_ = os.MkdirAll(filepath.Join(dir, "dev"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "dev", "MANIFEST"), manifest.Bytes(), 0o644)
	probeDir := filepath.Join(dir, "probe")
	_ = os.MkdirAll(probeDir, 0o755)
	for _, n := range nodes {
		out, err := exec.CommandContext(ctx, "v4l2-ctl", "-d", n, "--all", "--list-formats-ext", "--list-ctrls-menus", "--list-dv-timings", "--query-dv-timings").CombinedOutput()
		if err != nil && len(out) == 0 {
			warns = append(warns, fmt.Sprintf("v4l2-ctl %s: %v", n, err))
		}
		_ = os.WriteFile(filepath.Join(probeDir, filepath.Base(n)+".v4l2-ctl.txt"), out, 0o644)
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	note := fmt.Sprintf("Captured by the virtual capture box (make e2e, scenario sysfs-fixture) on %s.\n"+
		"Kernel: Debian %s under QEMU TCG (q35). Modules: vivid %s; vicodec built out of tree from linux-source.\n"+
		"Files: sysfs attributes and links as the guest showed them (sys/, proc/), device nodes and udev\n"+
		"links (dev/MANIFEST), and v4l2-ctl's answers per node (probe/).\n",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(kernel)), strings.Join(vividParams, " "))
	_ = os.WriteFile(filepath.Join(dir, "SOURCE"), []byte(note), 0o644)
	for _, w := range warns {
		t.Logf("fixture: %s", w)
	}
	// The fixture must hold what detection needs, or it is not worth committing.
	for _, must := range []string{"sys/class/video4linux", "sys/devices/platform/vivid.0", "sys/devices/platform/vicodec.0"} {
		if _, err := os.Stat(filepath.Join(dir, must)); err != nil {
			t.Errorf("fixture lacks %s", must)
		}
	}
	for _, n := range nodes {
		b, _ := os.ReadFile(filepath.Join(dir, "sys/class/video4linux", filepath.Base(n), "name"))
		if len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("fixture: %s has no name attribute", n)
		}
	}
	count := 0
	_ = filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { count++; return nil })
	t.Fact("fixture_entries", "%d", count)
	out, err := exec.CommandContext(ctx, "tar", "-C", dir, "-cf", filepath.Join(e.results, "fixture-sysfs.tar"), ".").CombinedOutput()
	if err != nil {
		t.Errorf("tar the fixture: %v: %s", err, out)
	}
}

// capboxdSnapshot: scenario 1, `capboxd snapshot DIR` into results/fixture, then `capboxd
// detect --json --sysroot DIR` must find the same vivid input and vicodec encoder from it.
func capboxdSnapshot(ctx context.Context, t *T) {
	e := t.e
	dir := filepath.Join(e.results, "fixture")
	_ = os.RemoveAll(dir)
	r := runLogged(ctx, t, "capboxd-snapshot", nil, e.capboxd, "snapshot", dir)
	if notBuilt(r.out) {
		t.NotImplemented("capboxd snapshot: %s", lastLines([]byte(r.out), 1))
	}
	if r.exitCode != 0 {
		t.Fatalf("capboxd snapshot: exit %d: %s", r.exitCode, lastLines([]byte(r.out), 3))
	}
	t.Timing("snapshot", r.wall)
	r = runLogged(ctx, t, "capboxd-detect-sysroot", nil, e.capboxd, "detect", "--json", "--sysroot", dir)
	if r.exitCode != 0 {
		t.Fatalf("capboxd detect --sysroot: exit %d: %s", r.exitCode, lastLines([]byte(r.out), 3))
	}
	var d board.Detection
	if err := json.Unmarshal([]byte(jsonPart(r.out)), &d); err != nil {
		t.Fatalf("detect --sysroot output is not the Detection JSON: %v", err)
	}
	if in := findInput(d, "vivid"); in == nil {
		t.Errorf("detect --sysroot on the snapshot found no vivid input: %+v", d.VideoInputs)
	} else if in.Probed {
		t.Errorf("detect --sysroot claims it probed the device nodes (probed=true)")
	}
	if enc := findEncoder(d, "v4l2fwhtenc"); enc == nil {
		t.Errorf("detect --sysroot on the snapshot found no vicodec encoder: %+v", d.Encoders)
	}
}

// fsStat is a device node's numbers.
type fsStat struct{ major, minor uint32 }
