package health

import (
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"capbox/agent/fleet/wire"
)

func TestSpeedFromSysfs(t *testing.T) {
	for _, c := range []struct {
		root, ifname string
		want         int
	}{
		{"testdata/rpi4", "eth0", 1000},
		{"testdata/rpi4", "wlan0", SpeedUnknown},  // EINVAL on a live box: no file here
		{"testdata/imx8mp", "eth1", SpeedUnknown}, // the driver prints -1
		{"testdata/x86", "enp1s0", 2500},
		{"testdata/x86", "../../../proc/stat", SpeedUnknown}, // never leaves the interface folder's meaning
	} {
		rt, err := openRoot(c.root)
		if err != nil {
			t.Fatal(err)
		}
		if got := speed(rt.FS(), c.ifname); got != c.want {
			t.Errorf("%s %s: %d want %d", c.root, c.ifname, got, c.want)
		}
		rt.Close()
	}
	if speed(nil, "eth0") != SpeedUnknown {
		t.Error("no sysfs must be unknown")
	}
}

func TestNetReaderLive(t *testing.T) {
	ifs, err := NetReader{SysRoot: "/"}.ReadNet()
	if err != nil {
		t.Fatalf("ReadNet: %v", err)
	}
	for _, n := range ifs {
		if n.If == "lo" {
			t.Fatal("loopback reported")
		}
	}
	t.Logf("this machine: %+v", ifs)
}

// inNamespace makes a fresh network namespace and a netlink handle in it;
// the calling thread stays where it was.
func inNamespace(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (CAP_SYS_ADMIN)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // unshare(CLONE_NEWNET) on this thread
	if err != nil {
		t.Skipf("no network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original namespace: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() }) // the namespace and its veths go with the last fd
	return ns, h
}

// sendFrom sends a UDP datagram from inside ns.
func sendFrom(t *testing.T, ns netns.NsHandle, to string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("thread left in the test namespace: " + err.Error())
		}
	}()
	c, err := net.Dial("udp4", to) // the socket is made in the thread's namespace
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
}

func byName(ifs []wire.NetIf, name string) wire.NetIf {
	for _, n := range ifs {
		if n.If == name {
			return n
		}
	}
	return wire.NetIf{}
}

// waitNet reads until ok says yes (operstate moves through the kernel's
// linkwatch work, asynchronously) or 5 s pass.
func waitNet(t *testing.T, r NetReader, ok func([]wire.NetIf) bool) []wire.NetIf {
	t.Helper()
	var ifs []wire.NetIf
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		ifs, err = r.ReadNet()
		if err != nil {
			t.Fatalf("ReadNet: %v", err)
		}
		if ok(ifs) {
			return ifs
		}
	}
	t.Fatalf("not reached: %+v", ifs)
	return nil
}

// TestNetReaderNamespace runs a veth pair in a private namespace (nothing
// in it reaches any network): oper state, carrier, addresses and counters.
func TestNetReaderNamespace(t *testing.T) {
	ns, h := inNamespace(t)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = "cbx0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "cbx1"}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	a, _ := h.LinkByName("cbx0")
	b, _ := h.LinkByName("cbx1")
	// Documentation prefixes (RFC 5737 TEST-NET-2, RFC 3849), only ever inside the namespace.
	for _, s := range []string{"198.51.100.1/24", "2001:db8::1/64"} {
		addr, _ := netlink.ParseAddr(s)
		if err := h.AddrAdd(a, addr); err != nil {
			t.Fatalf("addr %s: %v", s, err)
		}
	}
	r := NetReader{Handle: h} // no SysRoot: the host's sysfs is another namespace

	// One end up: no carrier, the lower layer (the peer) is down.
	if err := h.LinkSetUp(a); err != nil {
		t.Fatal(err)
	}
	ifs := waitNet(t, r, func(ifs []wire.NetIf) bool { return byName(ifs, "cbx0").Oper == "lower-layer-down" })
	if len(ifs) != 2 || ifs[0].If != "cbx0" || ifs[1].If != "cbx1" {
		t.Fatalf("links %+v (loopback must be left out)", ifs)
	}
	if n := byName(ifs, "cbx0"); n.Carrier || n.SpeedMbps != SpeedUnknown || !slices.Equal(n.Addrs, []string{"198.51.100.1/24", "2001:db8::1/64"}) {
		t.Fatalf("cbx0 %+v", n)
	}
	if n := byName(ifs, "cbx1"); n.Oper != "down" || n.Carrier || n.Addrs != nil {
		t.Fatalf("cbx1 %+v", n)
	}

	// Both up: carrier and oper up on both ends.
	if err := h.LinkSetUp(b); err != nil {
		t.Fatal(err)
	}
	ifs = waitNet(t, r, func(ifs []wire.NetIf) bool {
		return byName(ifs, "cbx0").Oper == "up" && byName(ifs, "cbx1").Oper == "up"
	})
	if !byName(ifs, "cbx0").Carrier || !byName(ifs, "cbx1").Carrier {
		t.Fatalf("carrier %+v", ifs)
	}
	for _, addr := range byName(ifs, "cbx0").Addrs {
		if ip, _, _ := net.ParseCIDR(addr); ip.IsLinkLocalUnicast() {
			t.Fatalf("IPv6 link-local reported: %v", addr)
		}
	}

	// Traffic out of cbx0 (the ARP for a neighbour that is not there)
	// shows in cbx0's tx and cbx1's rx counters.
	before := byName(ifs, "cbx0").TxBytes
	sendFrom(t, ns, "198.51.100.99:9")
	ifs = waitNet(t, r, func(ifs []wire.NetIf) bool {
		return byName(ifs, "cbx0").TxBytes > before && byName(ifs, "cbx1").RxBytes > 0
	})
	if tx, rx := byName(ifs, "cbx0").TxBytes, byName(ifs, "cbx1").RxBytes; rx > tx {
		t.Fatalf("cbx1 received %d bytes, more than cbx0 sent (%d)", rx, tx)
	}

	// Going down drops the carrier on the peer.
	if err := h.LinkSetDown(a); err != nil {
		t.Fatal(err)
	}
	waitNet(t, r, func(ifs []wire.NetIf) bool {
		return !byName(ifs, "cbx1").Carrier && byName(ifs, "cbx0").Oper == "down"
	})
}
