#!/usr/bin/env bash
# Builds a Debian 12 target sysroot for cross-compiling capboxd with cgo and
# for running it under qemu-user: debootstrap's first stage resolves and
# downloads the packages, which are then unpacked with dpkg -x (no install
# scripts run, nothing is installed on the host).
#   scripts/sysroot.sh arm64|armhf
# Cached in .cache/sysroot-<arch>; a second run only checks the stamp.
set -euo pipefail
arch=${1:?usage: sysroot.sh arm64|armhf}
case "$arch" in arm64|armhf) ;; *) echo "sysroot: unknown arch $arch" >&2; exit 2 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.cache/sysroot-$arch"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What capboxd links against, and what a test-pattern recording needs at run time.
packages=libgstreamer1.0-dev,libgstreamer-plugins-base1.0-dev,gstreamer1.0-plugins-base,gstreamer1.0-plugins-good,gstreamer1.0-plugins-bad,gstreamer1.0-plugins-ugly,gstreamer1.0-x,libc6-dev
stamp="$dir/.capbox-sysroot"
want="bookworm $packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

echo "sysroot: building $dir (Debian bookworm $arch; downloads ~400 MB once)"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
"${sudo_cmd[@]}" debootstrap --foreign --arch="$arch" --variant=minbase \
	--include="$packages" bookworm "$dir.tmp" "$mirror" >"$top/.cache/sysroot-$arch.log" 2>&1 || {
	echo "sysroot: debootstrap failed, see .cache/sysroot-$arch.log" >&2
	exit 1
}
for deb in "$dir.tmp"/var/cache/apt/archives/*.deb; do
	"${sudo_cmd[@]}" dpkg -x "$deb" "$dir.tmp"
done
"${sudo_cmd[@]}" rm -rf "$dir.tmp/var/cache/apt/archives" "$dir.tmp/debootstrap"
if [ ${#sudo_cmd[@]} -gt 0 ]; then "${sudo_cmd[@]}" chown -R "$(id -u):$(id -g)" "$dir.tmp"; fi
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$want" >"$stamp"
echo "sysroot: ready at $dir"
