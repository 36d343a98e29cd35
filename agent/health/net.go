package health

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"capbox/agent/fleet/wire"
)

// NetSource lists the network interfaces.
type NetSource interface {
	ReadNet() ([]wire.NetIf, error)
}

// NetReader reads links, addresses and counters over rtnetlink.
type NetReader struct {
	// Handle is the netlink handle (its network namespace); nil is the
	// namespace of the calling thread.
	Handle *netlink.Handle
	// SysRoot is where /sys/class/net/<if>/speed is read; "" skips speed
	// (sysfs shows the namespace it was mounted in, so a reader for
	// another namespace must not read the host's files under the same
	// interface names).
	SysRoot string
}

// SpeedUnknown is SpeedMbps when the link has no speed (down, virtual,
// wireless).
const SpeedUnknown = -1

// ReadNet implements NetSource. The loopback interface is left out.
func (r NetReader) ReadNet() ([]wire.NetIf, error) {
	links, err := r.links()
	if err != nil {
		return nil, fmt.Errorf("netlink links: %w", err)
	}
	var errs []error
	addrs, err := r.addrs()
	if err != nil {
		errs = append(errs, fmt.Errorf("netlink addresses: %w", err))
	}
	var sysfs fs.FS
	if r.SysRoot != "" {
		if rt, err := openRoot(r.SysRoot); err == nil {
			defer rt.Close()
			sysfs = rt.FS()
		} else {
			errs = append(errs, fmt.Errorf("sysfs root: %w", err))
		}
	}
	var out []wire.NetIf
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		n := wire.NetIf{
			If:   a.Name,
			Oper: a.OperState.String(),
			// IFF_LOWER_UP is the driver's carrier (include/uapi/linux/if.h:
			// "driver signals L1 up"); RawFlags keeps it, net.Flags drops it.
			Carrier:   a.RawFlags&unix.IFF_LOWER_UP != 0,
			SpeedMbps: speed(sysfs, a.Name),
			Addrs:     addrs[a.Index],
		}
		if s := a.Statistics; s != nil {
			n.RxBytes, n.TxBytes, n.RxErrors, n.TxErrors = s.RxBytes, s.TxBytes, s.RxErrors, s.TxErrors
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].If < out[j].If })
	return out, errors.Join(errs...)
}

// links dumps the links, once more if the kernel says the dump was
// interrupted by a change (NLM_F_DUMP_INTR).
func (r NetReader) links() ([]netlink.Link, error) {
	list := netlink.LinkList
	if r.Handle != nil {
		list = r.Handle.LinkList
	}
	ls, err := list()
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		ls, err = list()
	}
	return ls, err
}

// addrs returns addresses as CIDR strings by link index; IPv6 link-local
// addresses (every IPv6 link has one) are left out.
func (r NetReader) addrs() (map[int][]string, error) {
	list := netlink.AddrList
	if r.Handle != nil {
		list = r.Handle.AddrList
	}
	as, err := list(nil, netlink.FAMILY_ALL)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		as, err = list(nil, netlink.FAMILY_ALL)
	}
	out := map[int][]string{}
	for _, a := range as {
		if a.IPNet == nil || (a.IP.To4() == nil && a.IP.IsLinkLocalUnicast()) {
			continue
		}
		out[a.LinkIndex] = append(out[a.LinkIndex], a.IPNet.String())
	}
	return out, err
}

// speed reads /sys/class/net/<if>/speed in Mb/s. The kernel answers
// EINVAL for a link that is down or has no speed, and some drivers print
// -1 (SPEED_UNKNOWN); both, and no sysfs, are SpeedUnknown.
func speed(sysfs fs.FS, ifname string) int {
	if sysfs == nil {
		return SpeedUnknown
	}
	s, err := readAttr(sysfs, "sys/class/net/"+ifname+"/speed")
	if err != nil {
		return SpeedUnknown
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return SpeedUnknown
	}
	return v
}
