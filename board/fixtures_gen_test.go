package board

import (
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The fixture trees in testdata/ are written by this builder from facts in
// kernel driver sources and HARDWARE.md; none was captured from a device.
// Each tree's NOTES file says where every fact comes from. Regenerate with
//
//	go test ./board -run TestFixtureTrees -update-fixtures
//
// (the test without the flag checks the committed trees match the builder).
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the hand-built fixture trees in testdata/")

// tree builds a sysroot in memory: files, symlinks (targets given as
// absolute system paths, stored relative like sysfs does, or verbatim when
// abs is set) and empty directories.
type tree struct {
	files map[string]string
	links map[string]string
	dirs  map[string]bool
}

func newTree() *tree {
	return &tree{files: map[string]string{}, links: map[string]string{}, dirs: map[string]bool{}}
}

func (t *tree) file(p, content string) { t.files[p] = content }
func (t *tree) dir(p string)           { t.dirs[p] = true }

// link makes p point at target (a system path) with a relative link.
func (t *tree) link(p, target string) {
	rel, err := filepath.Rel(path.Dir(p), target)
	if err != nil {
		panic(err)
	}
	t.links[p] = rel
}

func (t *tree) absLink(p, target string) { t.links[p] = target }

// dev places a device directory with its bus and driver links.
func (t *tree) dev(p, bus, driver string) {
	t.dir(p)
	t.dir("/sys/bus/" + bus)
	t.link(p+"/subsystem", "/sys/bus/"+bus)
	if driver != "" {
		drv := "/sys/bus/" + bus + "/drivers/" + driver
		t.dir(drv)
		t.link(p+"/driver", drv)
		t.link(drv+"/"+path.Base(p), p)
	}
}

// video adds /dev/videoN under a device directory (drivers/media/v4l2-core/v4l2-dev.c:
// class video4linux, attributes name, index, dev).
func (t *tree) video(devDir string, num int, label string, index int) {
	name := fmt.Sprintf("video%d", num)
	node := devDir + "/video4linux/" + name
	t.file(node+"/name", label+"\n")
	t.file(node+"/index", fmt.Sprintf("%d\n", index))
	t.file(node+"/dev", fmt.Sprintf("81:%d\n", num))
	t.link(node+"/device", devDir)
	t.link(node+"/subsystem", "/sys/class/video4linux")
	t.link("/sys/class/video4linux/"+name, node)
	t.file("/dev/"+name, "")
}

// usbDevice adds a USB device (drivers/usb/core/sysfs.c attributes).
func (t *tree) usbDevice(p, vid, pid, manufacturer, product string) {
	t.dev(p, "usb", "usb")
	t.file(p+"/idVendor", vid+"\n")
	t.file(p+"/idProduct", pid+"\n")
	if manufacturer != "" {
		t.file(p+"/manufacturer", manufacturer+"\n")
	}
	t.file(p+"/product", product+"\n")
}

// soundCard adds an ALSA card: /sys/class/sound/cardN -> device, and
// /proc/asound/cardN/{id,pcmXp,pcmXc} (sound/core/init.c, pcm.c).
type card struct {
	num       int
	id, drv   string
	short     string
	long      string
	devDir    string
	capture   bool
	playbacks int
}

func (t *tree) soundCards(cards []card) {
	var list strings.Builder
	for _, c := range cards {
		p := c.devDir + fmt.Sprintf("/sound/card%d", c.num)
		t.dir(p)
		t.link(p+"/device", c.devDir)
		t.link(p+"/subsystem", "/sys/class/sound")
		t.link(fmt.Sprintf("/sys/class/sound/card%d", c.num), p)
		d := fmt.Sprintf("/proc/asound/card%d", c.num)
		t.file(d+"/id", c.id+"\n")
		for i := 0; i < c.playbacks; i++ {
			t.file(fmt.Sprintf("%s/pcm%dp/info", d, i), fmt.Sprintf("card: %d\ndevice: %d\nstream: PLAYBACK\n", c.num, i))
		}
		if c.capture {
			t.file(d+"/pcm0c/info", fmt.Sprintf("card: %d\ndevice: 0\nstream: CAPTURE\n", c.num))
		}
		t.absLink("/proc/asound/"+c.id, fmt.Sprintf("card%d", c.num))
		fmt.Fprintf(&list, "%2d [%-15s]: %s - %s\n                      %s\n", c.num, c.id, c.drv, c.short, c.long)
	}
	t.file("/proc/asound/cards", list.String())
}

// deviceTree adds the device tree as the kernel shows it (/proc/device-tree
// is an absolute link to /sys/firmware/devicetree/base; strings end in NUL).
func (t *tree) deviceTree(compatible []string, model, serial string) {
	base := "/sys/firmware/devicetree/base"
	t.file(base+"/compatible", strings.Join(compatible, "\x00")+"\x00")
	t.file(base+"/model", model+"\x00")
	if serial != "" {
		t.file(base+"/serial-number", serial+"\x00")
	}
	t.absLink("/proc/device-tree", base)
}

func (t *tree) thermal(zones ...[2]string) {
	for i, z := range zones {
		p := fmt.Sprintf("/sys/devices/virtual/thermal/thermal_zone%d", i)
		t.file(p+"/type", z[0]+"\n")
		t.file(p+"/temp", z[1]+"\n")
		t.link(fmt.Sprintf("/sys/class/thermal/thermal_zone%d", i), p)
	}
}

// procHealth writes /proc files for ReadHealth with the given numbers.
func (t *tree) procHealth(stat, loadavg string, memTotalKB, memAvailKB int) {
	t.file("/proc/stat", stat)
	t.file("/proc/loadavg", loadavg+"\n")
	t.file("/proc/meminfo", fmt.Sprintf("MemTotal:       %8d kB\nMemFree:          123456 kB\nMemAvailable:   %8d kB\nBuffers:           23456 kB\n", memTotalKB, memAvailKB))
}

// write materialises the tree under dir (which it replaces).
func (t *tree) write(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	host := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	var dirs []string
	for d := range t.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := os.MkdirAll(host(d), 0o755); err != nil {
			return err
		}
	}
	for p, c := range t.files {
		if err := os.MkdirAll(filepath.Dir(host(p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(host(p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	for p, target := range t.links {
		if err := os.MkdirAll(filepath.Dir(host(p)), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, host(p)); err != nil {
			return err
		}
	}
	return nil
}

// read loads a tree from disk, for comparison with the builder.
func readTree(dir string) (*tree, error) {
	t := newTree()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir))
		if rel == "" {
			rel = "/"
		}
		if rel == "/" || strings.HasPrefix(rel, "/NOTES") || strings.HasPrefix(rel, probeFile) {
			return nil
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			tg, err := os.Readlink(p)
			t.links[rel] = tg
			return err
		case fi.IsDir():
			t.dirs[rel] = true
		default:
			b, err := os.ReadFile(p)
			t.files[rel] = string(b)
			return err
		}
		return nil
	})
	return t, err
}
