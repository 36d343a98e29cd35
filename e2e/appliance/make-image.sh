#!/usr/bin/env bash
# One build of the x86_64 image for the virtual appliance, with Debian's
# packages standing in for what Buildroot would build (docs/IMAGE.md "The
# virtual appliance"). The image's own pieces are used as Buildroot would
# use them: the overlays, board/common/post-build.sh on the root,
# BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI for the GRUB image, the defconfig's
# squashfs compression, board/common/post-image.sh (genimage with
# board/x86_64/genimage.cfg, grub.cfg, the signed RAUC bundle).
#   make-image.sh CACHE OUT VERSION CAPBOXD KEYS VARIANT
# VARIANT: good | agent-never-ready (capboxd exits at once, every start) |
# kernel-hangs (the kernel panics once the watchdog runs and stays down; only the
# hardware watchdog can reset it). Leaves OUT/disk.img and
# OUT/capbox-x86_64.raucb; skipped when OUT/.stamp matches the inputs.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${1:?} out=${2:?} version=${3:?} capboxd=${4:?} keys=${5:?} variant=${6:?}
ext=$top/buildroot
here=$top/e2e/appliance
# shellcheck disable=SC1091 # e2e/versions.env
. "$top/e2e/versions.env"
kver=$E2E_KERNEL_ABI-amd64
probe=$cache/bin/appliance-probe

inputs() {
	cat "$cache/base/.stamp"
	echo "$version $variant"
	sha256sum "$capboxd" "$probe" "$keys/ca.cert.pem"
	(cd "$top" && find overlay buildroot/board buildroot/configs/capbox_x86_64_defconfig buildroot/gst-elements.txt \
		e2e/appliance/make-image.sh e2e/appliance/initrd-init e2e/appliance/*.service -type f -print0 | sort -z | xargs -0 sha256sum)
	dpkg-query -W -f='${Package} ${Version}\n' libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly genimage rauc grub-efi-amd64-bin 2>/dev/null
}
want=$(inputs | sha256sum | cut -c1-32)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$want" ]; then
	echo "appliance: $out is up to date"
	exit 0
fi
say() { echo "appliance[$(basename "$out")]: $*"; }
rm -rf "$out"
mkdir -p "$out"
target=$out/target bin=$out/images
mkdir -p "$bin"

say "root file system (Debian stand-in + the image's overlays, capboxd $version)"
cp -a "$cache/base" "$target"
rm -f "$target/.stamp"
# Merged /usr, like Buildroot's (dpkg -x left bin, sbin and lib as folders).
for d in bin sbin lib lib64; do
	if [ -d "$target/$d" ] && [ ! -L "$target/$d" ]; then
		mkdir -p "$target/usr/$d"
		cp -a "$target/$d/." "$target/usr/$d/"
		rm -rf "${target:?}/$d"
		ln -s "usr/$d" "$target/$d"
	fi
done
rm -rf "$target"/usr/share/{doc,man,info,locale,lintian} "$target"/var/cache/apt "$target"/var/lib/apt/lists
# The links install scripts would make (none ran): update-alternatives'
# awk, base-files' /var/run and /var/lock (as Buildroot's skeleton has them).
[ -e "$target/usr/bin/awk" ] || ln -s mawk "$target/usr/bin/awk"
rm -rf "$target/var/run" "$target/var/lock"
ln -s ../run "$target/var/run"
ln -s ../run/lock "$target/var/lock"

# The kernel where BR2_LINUX_KERNEL_INSTALL_TARGET puts it, and only the
# modules this machine uses (the rest of Debian's 390 MB would only slow
# every squashfs build).
mv "$target/boot/vmlinuz-$kver" "$target/boot/bzImage"
rm -f "$target"/boot/{System.map,config}-* "$target"/boot/initrd.img*
moddir=$target/usr/lib/modules/$kver
depmod -b "$target" "$kver" # no install script ran: no modules.dep yet
keep=$out/modules.keep
: >"$keep"
want_mod() { # name: the module and what it depends on
	local f
	f=$(awk -v m="$1" -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.xz)?$/, "", n); gsub(/-/, "_", n) } n == m { print; exit }' "$moddir/modules.dep")
	[ -n "$f" ] || return 0
	echo "${f%%:*}" >>"$keep"
	for d in ${f#*:}; do echo "$d" >>"$keep"; done
}
initrd_mods="virtio_pci virtio_blk squashfs"
for m in $initrd_mods virtio_net virtio_console virtio_rng ext4 vfat nls_cp437 nls_iso8859_1 nls_ascii i6300esb loop dm_mod dm_verity dm_bufio crc32c_generic crc32c_intel efivarfs; do want_mod "$m"; done
mkdir -p "$out/mods"
sort -u "$keep" | while read -r f; do mkdir -p "$out/mods/$(dirname "$f")" && cp "$moddir/$f" "$out/mods/$f"; done
for f in modules.builtin modules.builtin.modinfo modules.order; do cp "$moddir/$f" "$out/mods/"; done
rm -rf "$moddir"
mv "$out/mods" "$moddir"
depmod -b "$target" "$kver"

# GStreamer as the x86_64 image builds it: the plugins of every element
# buildroot/gst-elements.txt lists for x86_64 (those the host has), with the
# libraries they and capboxd link, copied from the host (same Debian release).
plugins=$out/plugins
: >"$plugins"
# shellcheck disable=SC2013 # element names are words
for el in $(awk '!/^#/ && NF >= 3 && ($2 == "all" || $2 ~ /(^|,)x86_64(,|$)/) { print $1 }' "$ext/gst-elements.txt"); do
	gst-inspect-1.0 "$el" 2>/dev/null | sed -n 's/^ *Filename *//p' >>"$plugins" || true
done
libs=$out/libs
{
	sort -u "$plugins"
	gst=$(pkg-config --variable=pluginsdir gstreamer-1.0)
	for f in "$gst/libgstcoreelements.so" "$gst/libgsttypefindfunctions.so" "$(pkg-config --variable=pluginscannerdir gstreamer-1.0)/gst-plugin-scanner"; do echo "$f"; done
} >"$libs.want"
sort -u "$libs.want" | while read -r f; do
	[ -f "$f" ] || continue
	echo "$f"
	ldd "$f" | awk '/=> \// { print $3 }'
done >"$libs"
ldd "$capboxd" | awk '/=> \// { print $3 }' >>"$libs"
sort -u "$libs" | while read -r f; do
	r=$(readlink -f "$f")
	for p in "$r" "$f"; do
		q=$p
		case $q in /lib/*) q=/usr$q ;; esac
		[ -e "$target$q" ] && continue
		mkdir -p "$target$(dirname "$q")"
		if [ "$p" = "$r" ]; then cp -a "$r" "$target$q"; else ln -s "$(readlink "$f")" "$target$q"; fi
	done
done
# pango's fonts and fontconfig's configuration, for the slate and the clock.
cp -a /etc/fonts "$target/etc/"
mkdir -p "$target/usr/share/fonts/truetype"
cp -a /usr/share/fonts/truetype/dejavu "$target/usr/share/fonts/truetype/" 2>/dev/null || true

# Users: Debian's base set, systemd's, the agent's (capbox.mk's CAPBOX_USERS).
cp "$target/usr/share/base-passwd/passwd.master" "$target/etc/passwd"
cp "$target/usr/share/base-passwd/group.master" "$target/etc/group"
: >"$target/etc/shadow"
: >"$target/etc/gshadow"
systemd-sysusers --root="$target" >/dev/null 2>&1 || true
echo "capbox:x:990:" >>"$target/etc/group"
echo "capbox:x:990:990:capbox capture agent:/nonexistent:/usr/sbin/nologin" >>"$target/etc/passwd"
sed -i -e 's/^\(video:x:[0-9]*:\)\(.*\)$/\1\2,capbox/' -e 's/^\(audio:x:[0-9]*:\)\(.*\)$/\1\2,capbox/' -e 's/:,capbox$/:capbox/' "$target/etc/group"

# The image's own files.
cp -a "$top/overlay/." "$target/"
cp -a "$ext/board/x86_64/rootfs-overlay/." "$target/"
install -m 0755 "$capboxd" "$target/usr/bin/capboxd"
BR2_EXTERNAL_CAPBOX_PATH=$ext BASE_DIR=$out CAPBOX_VERSION=$version CAPBOX_RAUC_KEYS=$keys \
	sh "$ext/board/common/post-build.sh" "$target" x86_64

# What Buildroot's skeleton does for a read-only root with
# BR2_INIT_SYSTEMD_VAR_FACTORY: /var is a tmpfs filled from a factory copy.
echo "capbox" >"$target/etc/hostname"
: >"$target/etc/machine-id"
printf '/dev/root / auto ro 0 1\n' >"$target/etc/fstab"
mkdir -p "$target/usr/share/factory"
rm -rf "$target/usr/share/factory/var"
mv "$target/var" "$target/usr/share/factory/var"
mkdir -p "$target/var" "$target/usr/lib/tmpfiles.d"
for i in "$target"/usr/share/factory/var/* "$target"/usr/share/factory/var/lib/*; do
	[ -e "$i" ] || [ -L "$i" ] || continue
	j=${i#"$target"/usr/share/factory}
	if [ -L "$i" ]; then
		# A link keeps pointing where it did (/var/run -> /run: the system
		# bus's socket is found by that path).
		l=$(readlink "$i")
		case $l in /*) ;; *) l=$(dirname "$j")/$l ;; esac
		printf 'L+! %s - - - - %s\n' "$j" "$l"
	else
		printf 'C! %s - - - -\n' "$j"
	fi
done >"$target/usr/lib/tmpfiles.d/00-capbox-var.conf"
printf '[Mount]\nWhat=tmpfs\nWhere=/var\nType=tmpfs\nOptions=mode=0755\n' >"$target/usr/lib/systemd/system/var.mount"
cp /usr/share/systemd/tmp.mount "$target/usr/lib/systemd/system/tmp.mount" 2>/dev/null || true
mkdir -p "$target/usr/lib/systemd/system/local-fs.target.wants"
ln -sf ../var.mount "$target/usr/lib/systemd/system/local-fs.target.wants/var.mount"
[ -f "$target/usr/lib/systemd/system/tmp.mount" ] && ln -sf ../tmp.mount "$target/usr/lib/systemd/system/local-fs.target.wants/tmp.mount"

# The harness's probe (the appliance only): a control channel over
# virtio-serial, see e2e/appliance/probe.
install -m 0755 "$probe" "$target/usr/libexec/capbox-e2e/probe" -D
install -m 0644 "$here/capbox-e2e-probe.service" "$target/usr/lib/systemd/system/capbox-e2e-probe.service"

case $variant in
good) ;;
agent-never-ready)
	printf '#!/bin/sh\necho "capboxd: this build cannot start" >&2\nexit 1\n' >"$target/usr/bin/capboxd"
	chmod 0755 "$target/usr/bin/capboxd"
	;;
kernel-hangs)
	install -m 0644 "$here/capbox-e2e-hang.service" "$target/usr/lib/systemd/system/capbox-e2e-hang.service"
	mkdir -p "$target/usr/lib/systemd/system/multi-user.target.wants"
	ln -sf ../capbox-e2e-hang.service "$target/usr/lib/systemd/system/multi-user.target.wants/"
	;;
*) echo "unknown variant $variant" >&2; exit 2 ;;
esac

ldconfig -r "$target"
systemctl --root="$target" preset-all >/dev/null 2>&1
mkdir -p "$target/usr/lib/systemd/system/multi-user.target.wants"
ln -sf ../capbox-e2e-probe.service "$target/usr/lib/systemd/system/multi-user.target.wants/"

# The Debian kernel needs an initramfs (Buildroot's has the drivers built
# in): virtio, squashfs, then the root by PARTLABEL, matched as the kernel
# matches it.
say "initramfs"
r=$out/initrd
mkdir -p "$r/bin" "$r/lib/modules" "$r/proc" "$r/sys" "$r/dev" "$r/newroot"
cp /bin/busybox "$r/bin/busybox"
install -m 0755 "$here/initrd-init" "$r/init"
for m in $initrd_mods; do
	grep -E "(^|/)$m\.ko(\.xz)?:" "$moddir/modules.dep" | sed 's/[ :]/\n/g' | grep . | tac | while read -r f; do
		b=$(basename "$f")
		[ -f "$r/lib/modules/${b%.xz}" ] && continue
		case $f in *.xz) xz -dc "$moddir/$f" >"$r/lib/modules/${b%.xz}" ;; *) cp "$moddir/$f" "$r/lib/modules/$b" ;; esac
		echo "${b%.xz}" >>"$r/lib/modules/order"
	done
done
(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$target/boot/initrd.img"
rm -rf "$r"

say "squashfs ($(sed -n 's/^BR2_TARGET_ROOTFS_SQUASHFS4_\(.*\)=y/\1/p' "$ext/configs/capbox_x86_64_defconfig"))"
comp=$(sed -n 's/^BR2_TARGET_ROOTFS_SQUASHFS4_\(.*\)=y/\1/p' "$ext/configs/capbox_x86_64_defconfig" | tr '[:upper:]' '[:lower:]')
mksquashfs "$target" "$bin/rootfs.squashfs" -noappend -all-root -comp "${comp:-gzip}" -quiet -no-progress >/dev/null

say "GRUB image (BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI) and post-image.sh"
mkdir -p "$bin/efi-part/EFI/BOOT" "$out/host/bin" "$out/build"
# shellcheck disable=SC2046 # a word list
grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$bin/efi-part/EFI/BOOT/bootx64.efi" \
	$(sed -n 's/^BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI="\(.*\)"/\1/p' "$ext/configs/capbox_x86_64_defconfig")
ln -sf "$(command -v genimage)" "$out/host/bin/genimage"
ln -sf "$(command -v rauc)" "$out/host/bin/rauc"
BR2_EXTERNAL_CAPBOX_PATH=$ext BASE_DIR=$out BUILD_DIR=$out/build HOST_DIR=$out/host TARGET_DIR=$target \
	CAPBOX_VERSION=$version CAPBOX_RAUC_KEYS=$keys bash "$ext/board/common/post-image.sh" "$bin" x86_64 >"$out/post-image.log" 2>&1 ||
	{ cat "$out/post-image.log" >&2; exit 1; }
mv "$bin/disk.img" "$bin/capbox-x86_64.raucb" "$out/"
rm -rf "$target" "$out/build" "$bin"
echo "$version" >"$out/version"
echo "$want" >"$out/.stamp"
say "done: $(du -m "$out/capbox-x86_64.raucb" | cut -f1) MB bundle"
