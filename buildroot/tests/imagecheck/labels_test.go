package imagecheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const repo = "../../.."

func layoutOf(t *testing.T, fam string) Layout {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "buildroot/board", fam, "genimage.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseGenimage(string(b))
	if err != nil {
		t.Fatalf("%s: %v", fam, err)
	}
	l, err := DiskLayout(cfg)
	if err != nil {
		t.Fatalf("%s: %v", fam, err)
	}
	return l
}

// filesOf lists the files a family's image carries or boots with: its board
// folder (boot configuration, RAUC's system.conf, its overlay) and the
// common overlay.
func filesOf(t *testing.T, fam string) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{filepath.Join(repo, "buildroot/board", fam), filepath.Join(repo, "overlay")} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && d.Name() != "genimage.cfg" {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestBootConfigsNameTheirLayout(t *testing.T) {
	// Files that must name partitions: a check that found nothing in them
	// would pass whatever they said.
	mustName := map[string][]string{
		"x86_64": {"grub.cfg", "rauc-system.conf", "efi.mount", "data.mount"},
		"imx8mp": {"boot.cmd", "rauc-system.conf", "fw_env.config", "data.mount"},
		"rpi":    {"cmdline.txt", "autoboot.txt", "rauc-system.conf", "rauc-tryboot", "data.mount"},
	}
	for _, fam := range []string{"x86_64", "imx8mp", "rpi"} {
		t.Run(fam, func(t *testing.T) {
			l := layoutOf(t, fam)
			found := map[string]int{}
			for _, f := range filesOf(t, fam) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				refs := References(string(b))
				found[filepath.Base(f)] += len(refs)
				for _, p := range l.Check(refs) {
					t.Errorf("%s: %s", strings.TrimPrefix(f, repo+"/"), p)
				}
			}
			for _, f := range mustName[fam] {
				if fam == "imx8mp" && f == "fw_env.config" {
					continue // raw offsets, no names
				}
				if found[f] == 0 {
					t.Errorf("%s names no partition: the check reads it wrong", f)
				}
			}
		})
	}
}

// The boot configurations as they were before their PARTLABELs were fixed:
// rootfs-$slot with slots A and B asks for rootfs-A, which the layouts
// (rootfs-a) do not have.
func TestCaseMismatchIsCaught(t *testing.T) {
	for _, c := range []struct{ fam, file string }{{"x86_64", "grub.cfg.before-fix"}, {"imx8mp", "boot.cmd.before-fix"}} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		problems := layoutOf(t, c.fam).Check(References(string(b)))
		if !strings.Contains(strings.Join(problems, "\n"), `no partition named "rootfs-A"`) {
			t.Errorf("%s: want rootfs-A reported, got %q", c.file, problems)
		}
	}
}

func TestLayouts(t *testing.T) {
	rpi := layoutOf(t, "rpi")
	if rpi.Table != "mbr" || rpi.Extended != 4 || len(rpi.Partitions) != 6 || rpi.Partitions[3].Number != 5 || rpi.Partitions[3].Name != "rootfs-a" {
		t.Errorf("rpi layout: %+v", rpi)
	}
	x := layoutOf(t, "x86_64")
	if x.Table != "gpt" || x.Partitions[0].FSLabel != "CAPBOX" || x.Partitions[1].Name != "rootfs-a" || x.Partitions[3].FSLabel != "capbox-data" {
		t.Errorf("x86_64 layout: %+v", x)
	}
	if got := layoutOf(t, "imx8mp").Partitions[0]; got.Number != 1 || got.Name != "capbox" {
		t.Errorf("imx8mp: flash.bin (not in the table) must not count: %+v", got)
	}
	if _, err := ParseGenimage("image x {\n vfat {\n"); err == nil {
		t.Error("an unclosed section parses")
	}
}
