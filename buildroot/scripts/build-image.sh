#!/usr/bin/env bash
# Builds the capbox SD-card image for one board with a pinned Buildroot
# release (make image BOARD=...). Needs network (Buildroot, toolchain, kernel
# and package downloads) and hours of build on a first run.
#   build-image.sh BOARD [CACHE_DIR]   BOARD: rpi4_64 rpi3 rpi5 imx8mp x86_64
# BUILDROOT_DIR=DIR uses an already unpacked Buildroot tree instead of the
# download; CAPBOX_RAUC_KEYS=DIR signs with production keys (docs/IMAGE.md).
set -euo pipefail

board=${1:?usage: build-image.sh BOARD [CACHE_DIR]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${2:-$repo/.cache/image}
defconfig=capbox_${board}_defconfig
if [ ! -f "$repo/buildroot/configs/$defconfig" ]; then
	have=
	for f in "$repo"/buildroot/configs/capbox_*_defconfig; do
		f=${f##*/capbox_}
		have="$have ${f%_defconfig}"
	done
	echo "unknown board '$board'; have:$have" >&2
	exit 2
fi
mkdir -p "$cache/dl"

# Buildroot 2026.02.3 (LTS) from CAPBOX_DL_DIR (default .cache/dl), checked
# by its commit (buildroot-tree.sh); packages download into .cache/image/dl.
br=${BUILDROOT_DIR:-}
if [ -z "$br" ]; then
	br=$("$repo/buildroot/scripts/buildroot-tree.sh" "${CAPBOX_DL_DIR:-$repo/.cache/dl}" "$cache")
fi

# Buildroot's local site method never vendors Go modules: build from a copy of
# the repository (tracked files plus uncommitted changes) with vendor/ filled,
# so the working tree never gets a vendor/ directory.
src=$cache/src
rm -rf "$src" && mkdir -p "$src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$src"
(cd "$src" && go mod vendor)
version=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)

out=$cache/output-$board
make -C "$br" O="$out" BR2_EXTERNAL="$src/buildroot" BR2_DL_DIR="$cache/dl" "$defconfig"
make -C "$br" O="$out" BR2_DL_DIR="$cache/dl" CAPBOX_VERSION="$version"

img=$(find "$out/images" -maxdepth 1 \( -name sdcard.img -o -name disk.img \) | head -n 1)
cat <<MSG

capbox image for $board: $img
update bundle:          $out/images/capbox-$board.raucb

Flash it (replace /dev/sdX with the card; every byte on it is overwritten):
  bmaptool copy --nobmap $img /dev/sdX
  or: sudo dd if=$img of=/dev/sdX bs=4M conv=fsync status=progress
Then put your capbox.yaml on the CAPBOX partition (see docs/IMAGE.md).
MSG
