package board

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitDeviceAllow reads the char-NAME classes the shipped unit allows.
func unitDeviceAllow(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "overlay", "usr", "lib", "systemd", "system", "capboxd.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var allowed []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "DeviceAllow=")
		if !ok {
			continue
		}
		spec, access, _ := strings.Cut(v, " ")
		if name, ok := strings.CutPrefix(spec, "char-"); ok && strings.Contains(access, "r") && strings.Contains(access, "w") {
			allowed = append(allowed, name)
		}
	}
	return allowed
}

// Every device node detection can choose (captures, audio, each encoder
// family and vendor node) is allowed by the shipped unit: under
// DevicePolicy=closed a node it does not name fails with EPERM, and the
// box falls back to software without saying why.
func TestTheUnitAllowsEveryNodeDetectionCanChoose(t *testing.T) {
	allowed := unitDeviceAllow(t)
	if len(allowed) == 0 {
		t.Fatal("the unit allows no device class")
	}
	known := map[string]bool{}
	for _, c := range DeviceClasses {
		known[c.Major] = true
		if !slices.Contains(allowed, c.Major) {
			t.Errorf("the unit lacks DeviceAllow=char-%s rw (%s)", c.Major, c.Nodes)
		}
	}
	for _, v := range vendorNodes {
		if !known[v.major] {
			t.Errorf("vendor node %s: class %q is not in DeviceClasses", v.dev, v.major)
		}
	}
	for _, fam := range []EncoderFamily{FamilyV4L2M2M, FamilyVAAPI, FamilyOMX, FamilyNVENC, FamilyVendor} {
		for _, v := range append(vendorNodes[:0:0], vendorNodes...) {
			if v.family != fam {
				continue
			}
			for _, c := range encoderDeviceClasses(fam, v.dev) {
				if !slices.Contains(allowed, c) {
					t.Errorf("%s on %s needs char-%s", fam, v.dev, c)
				}
			}
		}
		for _, c := range encoderDeviceClasses(fam, "") {
			if !known[c] || !slices.Contains(allowed, c) {
				t.Errorf("family %s needs char-%s, not in DeviceClasses or the unit", fam, c)
			}
		}
	}
	if got := encoderDeviceClasses(FamilySoftware, ""); len(got) != 0 {
		t.Errorf("a software encoder needs devices: %v", got)
	}
}
