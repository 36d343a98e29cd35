package board

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// nodeRole is what a /dev/video* node is for.
type nodeRole int

const (
	roleUnknown  nodeRole = iota
	roleInput             // a capture input
	roleEncoder           // an M2M encoder
	roleOtherM2M          // decoders, ISPs, scalers: not inputs
	roleMeta              // metadata/embedded-data nodes: not inputs
	roleSkip              // output, VBI, SDR, touch...
)

// sysNode is what sysfs says about one /sys/class/video4linux entry.
type sysNode struct {
	name    string // video0
	dev     string // /dev/video0
	label   string // the "name" attribute (video_device.name)
	index   int    // the "index" attribute (node number within the device)
	devPath string // resolved device directory (parent of video4linux/)
	driver  string // driver bound to devPath
	usbDev  string // resolved USB device directory, if on USB
	usbID   string // vendor:product
	onPCI   bool
	stable  string
}

// knownNode classifies nodes from sysfs alone (no probe: --sysroot), by
// driver and name prefix. Names come from each driver's video_device.name.
type knownNode struct {
	driver string
	prefix string // "" matches any name; "*"+x a suffix; "="+x exactly x
	role   nodeRole
	kind   InputKind
	codecs []string // encoded formats an encoder produces (V4L2 fourcc)
}

var knownNodes = []knownNode{
	// raspberrypi/linux drivers/staging/vc04_services/bcm2835-codec: "%s-%s", MEM2MEM_NAME, role
	{driver: "bcm2835-codec", prefix: "=bcm2835-codec-encode", role: roleEncoder, codecs: []string{"H264"}},
	{driver: "bcm2835-codec", role: roleOtherM2M},
	// raspberrypi/linux drivers/media/platform/bcm2835/bcm2835-unicam.c: "unicam-image", "unicam-embedded"
	{driver: "unicam", prefix: "unicam-image", role: roleInput, kind: KindCamera},
	{driver: "unicam", prefix: "unicam-embedded", role: roleMeta},
	{driver: "rp1-cfe", prefix: "rp1-cfe-csi2_ch0", role: roleInput, kind: KindCamera},
	{driver: "rp1-cfe", role: roleMeta},
	// drivers/media/test-drivers/vicodec: "stateful-encoder", "stateful-decoder", "stateless-decoder"
	{driver: "vicodec", prefix: "=stateful-encoder", role: roleEncoder, codecs: []string{"FWHT"}},
	{driver: "vicodec", role: roleOtherM2M},
	// drivers/media/test-drivers/vivid: "vivid-%03d-vid-cap", -vid-out, -vbi-cap, ...
	{driver: "vivid", prefix: "*-vid-cap", role: roleInput, kind: KindVirtual},
	{driver: "vivid", role: roleSkip},
	{driver: "vim2m", role: roleOtherM2M},
	// NXP BSP vsi_v4l2 (Hantro VC8000E/H1 through vsidaemon)
	{driver: "vsi_v4l2", prefix: "=vsi_v4l2enc", role: roleEncoder, codecs: []string{"H264", "HEVC"}},
	{driver: "vsi_v4l2", role: roleOtherM2M},
	// drivers/media/platform/nxp/imx8-isi: "mxc_isi.%d.capture", "mxc_isi.m2m"
	{driver: "mxc-isi", prefix: "*.capture", role: roleInput, kind: KindCamera},
	{driver: "mxc-isi", role: roleOtherM2M},
	{driver: "coda", prefix: "coda-video-encoder", role: roleEncoder, codecs: []string{"H264"}},
	{driver: "coda", role: roleOtherM2M},
	{driver: "hantro-vpu", role: roleOtherM2M}, // mainline Hantro: decoders and a JPEG encoder only
	{driver: "rpi-hevc-dec", role: roleOtherM2M},
	{driver: "pispbe", role: roleOtherM2M}, // Pi 5 ISP back end: its capture queues are ISP outputs
	{driver: "bcm2835-isp", role: roleOtherM2M},
	{driver: "snps_hdmirx", role: roleInput, kind: KindHDMICSI},
	{driver: "rk_hdmirx", role: roleInput, kind: KindHDMICSI},
}

// hdmiBridges are I2C HDMI-to-CSI bridge drivers: when one is bound, the
// CSI receiver's capture node is an HDMI input, not a camera.
var hdmiBridges = []string{"tc358743", "tc358840", "adv7604", "adv7842", "adv748x", "tda1997x", "lt6911uxc", "lt6911uxe"}

func (k knownNode) matches(n sysNode) bool {
	if k.driver != n.driver {
		return false
	}
	switch {
	case k.prefix == "":
		return true
	case strings.HasPrefix(k.prefix, "*"):
		return strings.HasSuffix(n.label, k.prefix[1:])
	case strings.HasPrefix(k.prefix, "="):
		return n.label == k.prefix[1:]
	}
	return strings.HasPrefix(n.label, k.prefix)
}

// listNodes reads /sys/class/video4linux.
func listNodes(f fsys) ([]sysNode, error) {
	ents, err := f.readDir("/sys/class/video4linux")
	if err != nil {
		return nil, fmt.Errorf("video4linux: %w", err)
	}
	var errs []error
	var out []sysNode
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "video") {
			continue
		}
		n, err := readNode(f, name)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return nodeNum(out[i].name) < nodeNum(out[j].name) })
	return out, joinErrs(errs)
}

func nodeNum(name string) int {
	n, err := strconv.Atoi(strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz-"))
	if err != nil {
		return 1 << 30
	}
	return n
}

func readNode(f fsys, name string) (sysNode, error) {
	base := "/sys/class/video4linux/" + name
	n := sysNode{name: name, dev: "/dev/" + name}
	var errs []error
	if s, err := f.readString(base + "/name"); err == nil {
		n.label = s
	} else {
		errs = append(errs, fmt.Errorf("%s name: %w", name, err))
	}
	if v, err := f.readInt(base + "/index"); err == nil {
		n.index = int(v)
	}
	devPath, err := f.resolve(base + "/device")
	if err != nil {
		errs = append(errs, fmt.Errorf("%s device: %w", name, err))
		return n, joinErrs(errs)
	}
	n.devPath = devPath
	n.driver = f.linkBase(devPath + "/driver")
	n.usbDev, n.usbID, n.onPCI = busInfo(f, devPath)
	n.stable = stablePath(f, n)
	return n, joinErrs(errs)
}

// busInfo walks up from a device directory: the first USB device (it has
// idVendor) gives the USB id; a PCI ancestor marks a PCIe card.
func busInfo(f fsys, devPath string) (usbDev, usbID string, onPCI bool) {
	for p := devPath; strings.HasPrefix(p, "/sys/devices/") && p != "/sys/devices"; p = path.Dir(p) {
		switch f.linkBase(p + "/subsystem") {
		case "usb":
			if usbDev != "" {
				continue
			}
			v, err1 := f.readString(p + "/idVendor")
			pr, err2 := f.readString(p + "/idProduct")
			if err1 == nil && err2 == nil {
				usbDev, usbID = p, strings.ToLower(v+":"+pr)
			}
		case "pci":
			if usbDev == "" {
				onPCI = true
			}
		}
	}
	return usbDev, usbID, onPCI
}

// stablePath is the /dev/v4l/by-path name of a node: the udev link when
// udev made one, else the same name derived from sysfs the way udev's
// path_id builtin does (platform-, pci-, usb-0:port:config.iface parts).
func stablePath(f fsys, n sysNode) string {
	if ents, err := f.readDir("/dev/v4l/by-path"); err == nil {
		for _, e := range ents {
			if t, err := f.readlink("/dev/v4l/by-path/" + e.Name()); err == nil && path.Base(t) == n.name {
				return "/dev/v4l/by-path/" + e.Name()
			}
		}
	}
	id := pathID(f, n.devPath)
	if id == "" {
		return ""
	}
	return "/dev/v4l/by-path/" + id + "-video-index" + strconv.Itoa(n.index)
}

// pathID follows systemd's udev-builtin-path_id.c for the buses capture
// devices sit on: each recognised ancestor prepends a part, then its
// same-subsystem ancestors are skipped.
func pathID(f fsys, devPath string) string {
	var parts []string
	sub := func(p string) string { return f.linkBase(p + "/subsystem") }
	skip := func(p, s string) string {
		for q := path.Dir(p); strings.HasPrefix(q, "/sys/devices/") && sub(q) == s; q = path.Dir(q) {
			p = q
		}
		return p
	}
	for p := devPath; strings.HasPrefix(p, "/sys/devices/"); p = path.Dir(p) {
		name := path.Base(p)
		switch s := sub(p); s {
		case "usb":
			// usb_interface "1-1.2:1.0" or usb_device "1-1.2": the part
			// after the bus number is the port path.
			i := strings.IndexByte(name, '-')
			if i < 0 {
				continue
			}
			parts = append([]string{"usb-0:" + name[i+1:]}, parts...)
			p = skip(p, s)
		case "pci":
			parts = append([]string{"pci-" + name}, parts...)
			p = skip(p, s)
		case "platform":
			parts = append([]string{"platform-" + name}, parts...)
			p = skip(p, s)
		}
	}
	return strings.Join(parts, "-")
}

// ResolveStablePath returns the /dev/videoN a stable path names now, on a
// system with or without udev links (root "" or "/" is the live system).
func ResolveStablePath(root, stable string) (string, error) {
	f := newFsys(root)
	if real, err := f.resolve(stable); err == nil && strings.HasPrefix(real, "/dev/video") {
		return real, nil
	}
	nodes, err := listNodes(f)
	for _, n := range nodes {
		if n.stable == stable {
			return n.dev, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", stable, err)
	}
	return "", fmt.Errorf("%s: %w", stable, ErrNoDevice)
}

// boundBridges lists the HDMI bridge drivers with a device bound.
func boundBridges(f fsys) []string {
	var out []string
	for _, b := range hdmiBridges {
		ents, err := f.readDir("/sys/bus/i2c/drivers/" + b)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), "-") { // an I2C device "10-000f"
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// roleOf decides what a node is: from the probe when there is one
// (device_caps), else from the driver/name table and a few name rules.
func roleOf(n sysNode, rec *ProbeRecord) (nodeRole, knownNode) {
	var known knownNode
	for _, k := range knownNodes {
		if k.matches(n) {
			known = k
			break
		}
	}
	if rec != nil && rec.Cap != nil {
		c := rec.Cap.Caps()
		switch {
		case c&(capVideoM2M|capVideoM2MMPlane) != 0:
			if len(encodedCodecs(rec.EncodedFormats)) > 0 {
				return roleEncoder, known
			}
			return roleOtherM2M, known
		case c&(capVideoCapture|capVideoCaptureMPlane) != 0:
			return roleInput, known
		case c&capMetaCapture != 0:
			return roleMeta, known
		}
		return roleSkip, known
	}
	if known.role != roleUnknown {
		return known.role, known
	}
	if n.driver == "uvcvideo" {
		// UVC registers the capture node first and a metadata node
		// (index 1) after it (drivers/media/usb/uvc/uvc_driver.c).
		if n.index > 0 {
			return roleMeta, known
		}
		return roleInput, known
	}
	l := strings.ToLower(n.label)
	for _, w := range []string{"enc", "dec", "codec", "isp", "m2m", "meta", "embedded", "stats", "params", "output"} {
		if strings.Contains(l, w) {
			return roleOtherM2M, known
		}
	}
	return roleInput, known
}

// encodedCodecs maps V4L2 compressed fourccs to codec names.
func encodedCodecs(fourccs []string) []string {
	var out []string
	for _, f := range fourccs {
		switch f {
		case "H264":
			out = append(out, "h264")
		case "HEVC":
			out = append(out, "hevc")
		case "FWHT":
			out = append(out, "fwht")
		}
	}
	return out
}

// inputKind classifies a capture input by driver and bus.
func inputKind(n sysNode, known knownNode, rec *ProbeRecord, bridges []string) InputKind {
	switch {
	case n.usbDev != "":
		return KindUSB
	case known.kind == KindVirtual || n.driver == "vivid" || n.driver == "vimc":
		return KindVirtual
	case known.kind == KindHDMICSI:
		return KindHDMICSI
	case rec != nil && rec.dvSupported():
		if n.onPCI {
			return KindPCIe
		}
		return KindHDMICSI
	case known.kind == KindCamera && len(bridges) > 0:
		return KindHDMICSI
	case n.onPCI:
		return KindPCIe
	}
	return KindCamera
}

// videoInput builds the report for one capture node.
func videoInput(n sysNode, known knownNode, rec *ProbeRecord, bridges []string, recorded bool) VideoInput {
	in := VideoInput{
		Device:     n.dev,
		StablePath: n.stable,
		Driver:     n.driver,
		Card:       n.label,
		USBID:      n.usbID,
		Signal:     Signal{State: SignalUnknown},
	}
	in.Kind = inputKind(n, known, rec, bridges)
	if rec == nil || rec.Cap == nil {
		return in
	}
	in.Probed, in.Recorded = !recorded, recorded
	in.Driver = rec.Cap.Driver
	in.Card = rec.Cap.Card
	in.BusInfo = rec.Cap.BusInfo
	in.Formats = rec.Formats
	in.DVTimings = rec.dvSupported()
	in.EDID = rec.EDIDBlocks != nil
	in.Signal = rec.signal()
	return in
}

// probeAll probes every node (live) or takes recorded answers (snapshot);
// without either it returns nil and detection falls back on sysfs.
func probeAll(ctx context.Context, open opener, nodes []sysNode, timeout time.Duration) map[string]ProbeRecord {
	out := make(map[string]ProbeRecord, len(nodes))
	for _, n := range nodes {
		if ctx.Err() != nil {
			break
		}
		out[n.dev] = probeDevice(ctx, open, n.dev, timeout)
	}
	return out
}
