#!/bin/bash
# PID 1 of the virtual capture box after the initramfs switched to the host's root (read-only
# over 9p): mount the kernel file systems and tmpfs where programs write, bring up loopback,
# start a private udevd (for /dev/v4l/by-* links and uevents), run the scenario runner, and
# power off. Its exit code lands in the results share as `exit`; no file there means no result.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C.UTF-8 TMPDIR=/tmp

poweroff() {
	sync
	umount /run/e2e/results 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 60
}
trap poweroff EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
for d in /dev/shm /run /tmp /var/tmp /var/log /var/lib/mosquitto /var/cache; do
	# fontconfig's cache (for the slate's text) stays: without it every capboxd scans the fonts.
	[ "$d" = /var/cache ] && [ -d /var/cache/fontconfig ] && cp -a /var/cache/fontconfig /tmp/.fontconfig
	mount -t tmpfs -o mode=1777 tmpfs "$d" 2>/dev/null || echo "capbox-e2e: cannot mount tmpfs on $d"
	[ "$d" = /var/cache ] && [ -d /tmp/.fontconfig ] && mv /tmp/.fontconfig /var/cache/fontconfig
done

repo= arch= run= verbose= script=
for a in $(cat /proc/cmdline); do
	case "$a" in
	capbox.repo=*) repo=${a#capbox.repo=} ;;
	capbox.arch=*) arch=${a#capbox.arch=} ;;
	capbox.run=*) run=${a#capbox.run=} ;;
	capbox.verbose=*) verbose=${a#capbox.verbose=} ;;
	capbox.script=*) script=${a#capbox.script=} ;;
	esac
done
mkdir -p /run/e2e/results
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /run/e2e/results; then
	echo "capbox-e2e: cannot mount the results share"
	exit 1
fi
t0=$(cut -d' ' -f1 /proc/uptime)
echo "capbox-e2e: guest up at ${t0}s (kernel $(uname -r))"

ip link set lo up
hostname capbox-e2e 2>/dev/null

# GStreamer: a registry prebuilt on the host for the same plugin files, in a writable place.
cache="$repo/.cache/e2e/$arch"
if [ -f "$cache/gst-registry.bin" ]; then cp "$cache/gst-registry.bin" /tmp/gst-registry.bin; fi
export GST_REGISTRY_1_0=/tmp/gst-registry.bin

udevd=
for c in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do [ -x "$c" ] && udevd=$c && break; done
if [ -n "$udevd" ]; then
	mkdir -p /run/udev
	"$udevd" --daemon --resolve-names=never 2>/run/e2e/results/udevd.log
else
	echo "capbox-e2e: no systemd-udevd on the host root: no /dev/v4l/by-* links"
fi

if [ -n "$script" ]; then
	# A developer's exploration (e2e-vm -script FILE): the devices loaded, then the script.
	modprobe -d "$cache/kernel" vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x3
	modprobe -d "$cache/kernel" vicodec
	udevadm settle --timeout=20
	bash "$script"
	echo "capbox-e2e: script exited $?"
	exit 0
fi

args=(-results /run/e2e/results -repo "$repo" -arch "$arch" -modroot "$cache/kernel")
[ -n "$run" ] && args+=(-run "$run")
[ -n "$verbose" ] && args+=(-v)
"$cache/bin/e2e-guest" "${args[@]}"
rc=$?
# The registry this guest built: the host keeps it for a root it has none for (arm64).
cp /tmp/gst-registry.bin /run/e2e/results/gst-registry.bin 2>/dev/null
echo "$rc" >/run/e2e/results/exit
echo "capbox-e2e: runner exited $rc after $(cut -d' ' -f1 /proc/uptime)s of uptime"
exit 0
