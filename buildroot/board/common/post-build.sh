#!/bin/sh
# capbox post-build: mount points of the read-only root, the RAUC slot
# configuration and keyring, the x86 ESP contents.
#   post-build.sh TARGET_DIR BOARD   (BOARD: rpi4_64, rpi3, rpi5, imx8mp, x86_64)
set -eu
target=$1
board=$2
ext=${BR2_EXTERNAL_CAPBOX_PATH:?}
case $board in rpi*) fam=rpi ;; *) fam=$board ;; esac

# capbox's version in os-release (IMAGE_ID/IMAGE_VERSION, the fields for an
# image-based system): what the update bundle and `rauc status` report.
# CAPBOX_VERSION comes from build-image.sh (git describe).
version=${CAPBOX_VERSION:-}
if [ -z "$version" ] || [ "$version" = local ]; then
	echo "capbox: set CAPBOX_VERSION (make image does)" >&2
	exit 1
fi
osr=$target/usr/lib/os-release
[ -f "$osr" ] || osr=$target/etc/os-release
sed -i -e '/^IMAGE_ID=/d' -e '/^IMAGE_VERSION=/d' "$osr"
printf 'IMAGE_ID=capbox\nIMAGE_VERSION=%s\n' "$version" >>"$osr"

# Mount points: the root file system is never written at run time.
mkdir -p "$target/data" "$target/efi"

# RAUC: slot layout of this board family, compatible per board.
install -d -m 0755 "$target/etc/rauc"
sed "s/^compatible=.*/compatible=capbox-$board/" "$ext/board/$fam/rauc-system.conf" >"$target/etc/rauc/system.conf"

# The keyring the image trusts: production keys from CAPBOX_RAUC_KEYS,
# else development keys made once per output directory.
keys=${CAPBOX_RAUC_KEYS:-$BASE_DIR/capbox-dev-keys}
if [ ! -f "$keys/ca.cert.pem" ]; then
	echo "capbox: no RAUC keys in $keys; making DEVELOPMENT keys (not for production)" >&2
	sh "$ext/board/common/rauc-dev-keys.sh" "$keys"
fi
install -m 0644 "$keys/ca.cert.pem" "$target/etc/rauc/keyring.pem"

# Buildroot's default getty on the serial console stays; no root password
# login over the network: no ssh server is installed.
