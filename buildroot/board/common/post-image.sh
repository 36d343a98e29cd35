#!/usr/bin/env bash
# capbox post-image: assembles the partitions of the A/B layout from the
# build outputs, runs genimage, and builds a signed RAUC update bundle.
#   post-image.sh BINARIES_DIR BOARD
set -euo pipefail
bin=$1
board=$2
ext=${BR2_EXTERNAL_CAPBOX_PATH:?}
case $board in rpi*) fam=rpi ;; *) fam=$board ;; esac
root=$BUILD_DIR/capbox-genimage-root
rm -rf "$root" "$BUILD_DIR/genimage.tmp"
mkdir -p "$root/data" "$root/capbox"

readme() {
	cat <<'TXT'
capbox
======
To configure this box, save your capbox.yaml in this folder (next to this
file) and start the box. The box checks the file: if it is valid, it is
applied, moved onto the box and deleted from this card (so stream keys and
passwords do not stay here), and capbox-provisioned.txt appears. If it is
not valid, it stays here untouched and capbox-error.txt lists every error.
TXT
}

case $fam in
rpi)
	readme >"$root/capbox/README.txt"
	install -m 0644 "$ext/board/rpi/autoboot.txt" "$root/capbox/autoboot.txt"
	# The Pi 3's boot ROM loads bootcode.bin from the first FAT partition
	# (the Pi 4 and 5 boot from their EEPROM): only then are autoboot.txt
	# and the slots read.
	if [ "$board" = rpi3 ]; then
		install -m 0644 "$bin/rpi-firmware/bootcode.bin" "$root/capbox/bootcode.bin"
	fi
	kernel=$(sed -n 's/^kernel=//p' "$bin/rpi-firmware/config.txt")
	for slot in a b; do
		d=$root/boot-$slot
		mkdir -p "$d"
		cp -r "$bin"/rpi-firmware/. "$d/"
		cp "$bin"/*.dtb "$d/"
		cp "$bin/$kernel" "$d/"
	done
	# Slot B boots root p6; slot A (and every bundle) root p5.
	sed -i -e 's|root=/dev/mmcblk0p5|root=/dev/mmcblk0p6|' -e 's|rauc\.slot=A|rauc.slot=B|' "$root/boot-b/cmdline.txt"
	;;
x86_64)
	rmdir "$root/capbox"
	mkdir -p "$root/esp"
	readme >"$root/esp/README.txt"
	cp -r "$bin/efi-part/." "$root/esp/"
	install -m 0644 "$ext/board/x86_64/grub.cfg" "$root/esp/EFI/BOOT/grub.cfg"
	# An empty GRUB environment block (1024 bytes, '#'-padded, the format
	# grub-editenv writes); grub.cfg fills in the defaults at first boot.
	{ printf '# GRUB Environment Block\n'; head -c 999 /dev/zero | tr '\0' '#'; } >"$root/esp/EFI/BOOT/grubenv"
	;;
imx8mp)
	readme >"$root/capbox/README.txt"
	install -m 0644 "$bin/boot.scr" "$root/capbox/boot.scr"
	;;
esac

"$HOST_DIR/bin/genimage" \
	--rootpath "$root" \
	--tmppath "$BUILD_DIR/genimage.tmp" \
	--inputpath "$bin" \
	--outputpath "$bin" \
	--config "$ext/board/$fam/genimage.cfg"

# The update bundle: the root file system (and, on the Pi, slot A's boot
# partition) signed with the keys post-build.sh installed the keyring of.
keys=${CAPBOX_RAUC_KEYS:-$BASE_DIR/capbox-dev-keys}
bundle_dir=$BUILD_DIR/capbox-bundle
rm -rf "$bundle_dir" "$bin/capbox-$board.raucb"
mkdir -p "$bundle_dir"
# The bundle carries capbox's version (post-build.sh wrote it into the
# root's os-release as IMAGE_VERSION), never Buildroot's.
version=${CAPBOX_VERSION:-$(sed -n 's/^IMAGE_VERSION=//p' "$TARGET_DIR/usr/lib/os-release" 2>/dev/null || true)}
if [ -z "$version" ]; then
	echo "capbox: no capbox version (CAPBOX_VERSION, or IMAGE_VERSION in the root's os-release)" >&2
	exit 1
fi
{
	echo "[update]"
	echo "compatible=capbox-$board"
	echo "version=$version"
	echo "[bundle]"
	echo "format=verity"
	case $fam in
	imx8mp) printf '[image.rootfs]\nfilename=rootfs.ext4\n' ;;
	*) printf '[image.rootfs]\nfilename=rootfs.squashfs\n' ;;
	esac
	[ "$fam" = rpi ] && printf '[image.boot]\nfilename=boot.vfat\n'
} >"$bundle_dir/manifest.raucm"
case $fam in
imx8mp) cp "$bin/rootfs.ext4" "$bundle_dir/" ;;
*) cp "$bin/rootfs.squashfs" "$bundle_dir/" ;;
esac
[ "$fam" = rpi ] && cp "$bin/boot-a.vfat" "$bundle_dir/boot.vfat"
"$HOST_DIR/bin/rauc" bundle --cert="$keys/signing.cert.pem" --key="$keys/signing.key.pem" \
	"$bundle_dir" "$bin/capbox-$board.raucb"

for image in "$bin"/sdcard.img "$bin"/disk.img; do
	[ -f "$image" ] && echo "capbox: image $image"
done
echo "capbox: update bundle $bin/capbox-$board.raucb"
