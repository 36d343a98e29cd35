#!/usr/bin/env bash
# Cross-builds capboxd (cgo, GStreamer) against a target sysroot.
#   scripts/cross.sh arm64|armhf OUTPUT "LDFLAGS"
set -euo pipefail
arch=$1 out=$2 ldflags=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)
sysroot="$top/.cache/sysroot-$arch"
case "$arch" in
arm64) triple=aarch64-linux-gnu; goarch=arm64; goarm= ;;
armhf) triple=arm-linux-gnueabihf; goarch=arm; goarm=7 ;;
*) echo "cross: unknown arch $arch" >&2; exit 2 ;;
esac
[ -f "$sysroot/.capbox-sysroot" ] || { echo "cross: no sysroot at $sysroot (run make sysroots)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
export CGO_ENABLED=1 GOOS=linux GOARCH=$goarch GOARM=$goarm
export CC="$triple-gcc --sysroot=$sysroot"
export PKG_CONFIG_SYSROOT_DIR=$sysroot
export PKG_CONFIG_LIBDIR=$sysroot/usr/lib/$triple/pkgconfig:$sysroot/usr/share/pkgconfig
go build -trimpath -ldflags "-s -w $ldflags" -o "$out" ./cmd/capboxd
echo "cross: $out ($(stat -c %s "$out") bytes)"
