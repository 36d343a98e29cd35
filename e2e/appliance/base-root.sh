#!/usr/bin/env bash
# The Debian root that stands in for what Buildroot would build for the x86_64 image: systemd,
# udev, D-Bus, RAUC (with its D-Bus service), GRUB's tools (grub-editenv), e2fsprogs, fdisk and
# the pinned kernel of the virtual capture box (e2e/versions.env). debootstrap's first stage
# downloads it; every package is unpacked with dpkg -x (no install scripts run, the host's dpkg
# is untouched). Cached by its inputs in DIR/base.
#   e2e/appliance/base-root.sh DIR
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: base-root.sh CACHE_DIR}
# shellcheck disable=SC1091 # e2e/versions.env
. "$top/e2e/versions.env"
kver=$E2E_KERNEL_ABI-amd64
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,udev,dbus,kmod,rauc,rauc-service,grub-common,e2fsprogs,fdisk,util-linux,mount,iproute2,linux-image-$kver
want="bookworm $packages $E2E_KERNEL_DEBVER"
base=$dir/base
mkdir -p "$dir"
if [ -f "$base/.stamp" ] && [ "$(cat "$base/.stamp")" = "$want" ]; then
	exit 0
fi
echo "appliance: debootstrap of the Debian stand-in root (downloads about 120 MB once)"
rm -rf "$base.tmp" "$base"
mkdir -p "$base.tmp"
if ! debootstrap --foreign --arch=amd64 --variant=minbase --include="$packages" bookworm "$base.tmp" "$mirror" >"$dir/base-root.log" 2>&1; then
	echo "appliance: debootstrap failed (network to $mirror?), see $dir/base-root.log" >&2
	tail -n 5 "$dir/base-root.log" >&2
	exit 1
fi
deb=$(ls "$base.tmp/var/cache/apt/archives/linux-image-${kver}_"*.deb)
got=$(dpkg-deb -f "$deb" Version)
if [ "$got" != "$E2E_KERNEL_DEBVER" ]; then
	echo "appliance: bookworm has linux-image-$kver $got, e2e/versions.env pins $E2E_KERNEL_DEBVER" >&2
	exit 1
fi
for d in "$base.tmp"/var/cache/apt/archives/*.deb; do dpkg -x "$d" "$base.tmp"; done
rm -rf "$base.tmp/var/cache/apt/archives" "$base.tmp/debootstrap"
mv "$base.tmp" "$base"
echo "$want" >"$base/.stamp"
