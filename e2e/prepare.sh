#!/usr/bin/env bash
# Fetches and prepares what the virtual capture box boots, cached in .cache/e2e/<arch>:
#   debs/     the pinned Debian kernel packages (apt-get download, never installed)
#   kernel/   linux-image unpacked with dpkg -x (vmlinuz + its modules)
#   modsrc/   vicodec, vimc, vim2m, v4l2-mem2mem copied from linux-source, built out of tree
#   initrd.gz busybox initramfs that loads virtio/9p, mounts the host root and switches to it
#   gst-registry.bin  a GStreamer registry built on the host for the same plugin files
# A stamp per step makes a second run a few checks.  Usage: e2e/prepare.sh amd64|arm64
set -euo pipefail
arch=${1:-amd64}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$top/e2e/versions.env"
abi=$E2E_KERNEL_ABI ver=$E2E_KERNEL_DEBVER series=$E2E_KERNEL_SERIES
kver="$abi-$arch"
dir="$top/.cache/e2e/$arch"
mkdir -p "$dir/debs"
log="$dir/prepare.log"
say() { echo "e2e-prepare[$arch]: $*"; }
stamp_ok() { [ -f "$dir/.stamp-$1" ] && [ "$(cat "$dir/.stamp-$1")" = "$2" ]; }
stamp() { echo "$2" >"$dir/.stamp-$1"; }

case "$arch" in
amd64 | arm64) ;;
*) echo "usage: prepare.sh amd64|arm64" >&2; exit 2 ;;
esac

# 1. Packages. amd64: the host's apt downloads the pinned kernel packages. arm64: the guest
#    needs its own userland too, so debootstrap's first stage fetches an arm64 root with the
#    kernel image and headers in it (no install scripts run, nothing touches the host's dpkg).
#    The module build runs here either way, with the host's kbuild tools (linux-kbuild, amd64).
host_pkgs=("linux-headers-$abi-common=$ver" "linux-kbuild-$series:$(dpkg --print-architecture)=$ver" "linux-source-$series=$ver")
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
	host_pkgs+=("linux-image-$kver=$ver" "linux-headers-$kver=$ver")
fi
want="${host_pkgs[*]}"
if ! stamp_ok debs "$want"; then
	say "downloading ${host_pkgs[*]}"
	rm -f "$dir"/debs/*.deb
	if ! (cd "$dir/debs" && apt-get download -q "${host_pkgs[@]}" >>"$log" 2>&1); then
		apt-get update -q >>"$log" 2>&1 || true
		if ! (cd "$dir/debs" && apt-get download -q "${host_pkgs[@]}" >>"$log" 2>&1); then
			echo "e2e-prepare: cannot download the pinned kernel $kver $ver; the mirror has:" >&2
			apt-cache madison "linux-image-amd64" >&2 || true
			echo "pin one of them in e2e/versions.env (see $log)" >&2
			exit 1
		fi
	fi
	stamp debs "$want"
fi

# The arm64 guest's root: what the scenarios run (GStreamer, v4l-utils, udev, mosquitto,
# ffprobe), busybox for the initramfs, and the pinned kernel image and headers.
root="$dir/root"
if [ "$arch" = arm64 ]; then
	# gstreamer1.0-x holds the pango plugin (the slate's text and clock). libblas3 and
	# liblapack3 by name: ffmpeg needs libblas.so.3 and liblapack.so.3, virtual packages that
	# debootstrap does not resolve.
	userland=bash,coreutils,kmod,udev,iproute2,tar,busybox-static,v4l-utils,gstreamer1.0-tools,gstreamer1.0-plugins-base,gstreamer1.0-x,gstreamer1.0-plugins-good,gstreamer1.0-plugins-bad,gstreamer1.0-plugins-ugly,gstreamer1.0-libav,gstreamer1.0-plugins-base-apps,mosquitto,mosquitto-clients,ffmpeg,libblas3,liblapack3
	rootwant="bookworm $userland linux-image-$kver linux-headers-$kver $ver"
	if ! stamp_ok root "$rootwant"; then
		say "building the arm64 root with debootstrap (downloads ~400 MB once)"
		rm -rf "$root.tmp"
		mkdir -p "$root.tmp"
		mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
		if ! debootstrap --foreign --arch=arm64 --variant=minbase --include="$userland,linux-image-$kver,linux-headers-$kver" \
			bookworm "$root.tmp" "$mirror" >>"$log" 2>&1; then
			echo "e2e-prepare: debootstrap failed, see $log" >&2
			exit 1
		fi
		for d in "$root.tmp"/var/cache/apt/archives/*.deb; do dpkg -x "$d" "$root.tmp"; done
		for p in "linux-image-$kver" "linux-headers-$kver"; do
			deb=$(ls "$root.tmp"/var/cache/apt/archives/"$p"_*.deb)
			got=$(dpkg-deb -f "$deb" Version)
			if [ "$got" != "$ver" ]; then
				echo "e2e-prepare: bookworm has $p $got, e2e/versions.env pins $ver" >&2
				exit 1
			fi
			cp "$deb" "$dir/debs/"
		done
		rm -rf "$root.tmp/var/cache/apt/archives" "$root.tmp/debootstrap"
		# No install scripts ran: give the root the users base-passwd and mosquitto would add.
		cp "$root.tmp/usr/share/base-passwd/passwd.master" "$root.tmp/etc/passwd"
		cp "$root.tmp/usr/share/base-passwd/group.master" "$root.tmp/etc/group"
		echo "mosquitto:x:101:101::/var/lib/mosquitto:/usr/sbin/nologin" >>"$root.tmp/etc/passwd"
		echo "mosquitto:x:101:" >>"$root.tmp/etc/group"
		mkdir -p "$root.tmp/var/lib/mosquitto" "$root.tmp/var/log" "$root.tmp/var/cache"
		# Mount points: the checkout is shared at the same path as on the host.
		mkdir -p "$root.tmp$top" "$root.tmp/run" "$root.tmp/tmp"
		rm -rf "$root"
		mv "$root.tmp" "$root"
		stamp root "$rootwant"
	fi
	# The links update-alternatives would make (no install scripts ran): BLAS and LAPACK, which
	# ffmpeg's libraries load by their generic names.
	for l in blas/libblas.so.3 lapack/liblapack.so.3; do
		[ -e "$root/usr/lib/aarch64-linux-gnu/${l#*/}" ] || ln -s "$l" "$root/usr/lib/aarch64-linux-gnu/${l#*/}"
	done
fi

# 2. Kernel image and its modules, plus the pieces of the tree the module build needs.
if ! stamp_ok unpack "$want"; then
	say "unpacking"
	rm -rf "$dir/kernel" "$dir/headers" "$dir/src"
	mkdir -p "$dir/kernel" "$dir/headers" "$dir/src"
	dpkg -x "$dir"/debs/linux-image-"$kver"_*.deb "$dir/kernel"
	for d in "$dir"/debs/linux-headers-*.deb "$dir"/debs/linux-kbuild-*.deb; do dpkg -x "$d" "$dir/headers"; done
	dpkg -x "$dir"/debs/linux-source-*.deb "$dir/src"
	stamp unpack "$want"
fi

# 3. vicodec, vimc, vim2m and v4l2-mem2mem out of tree (Debian's kernel does not ship them).
modsrc="$dir/modsrc"
# vicodec stands in for a hardware encoder, but its 6.1 encoder leaves the CAPTURE buffers
# without V4L2_BUF_FLAG_KEYFRAME/PFRAME (only its decoder sets them, vicodec-core.c
# device_process), so GStreamer marks every FWHT frame a delta unit and nothing downstream
# can find a key frame. bcm2835-codec and other stateful encoders flag them; so does this
# patch, from the FWHT header's I-frame flag the encoder just wrote.
vicodec_patch='		/* capbox e2e: flag key frames as hardware encoders do */
		if (ntohl(((struct fwht_cframe_hdr *)p_dst)->flags) & V4L2_FWHT_FL_I_FRAME)
			dst_vb->flags |= V4L2_BUF_FLAG_KEYFRAME;
		else
			dst_vb->flags |= V4L2_BUF_FLAG_PFRAME;'
modwant="$want $(printf %s "$vicodec_patch" | sha256sum | cut -c1-16)"
if ! stamp_ok modules "$modwant"; then
	say "building vicodec vimc vim2m v4l2-mem2mem"
	rm -rf "$modsrc"
	mkdir -p "$modsrc"
	tarball=$(ls "$dir"/src/usr/src/linux-source-"$series".tar.xz)
	t="linux-source-$series/drivers/media"
	tar -C "$modsrc" -xJf "$tarball" "$t/v4l2-core/v4l2-mem2mem.c" "$t/test-drivers/vicodec" \
		"$t/test-drivers/vimc" "$t/test-drivers/vim2m.c"
	find "$modsrc/linux-source-$series" -name '*.[ch]' -exec mv -t "$modsrc/" {} +
	rm -rf "$modsrc/linux-source-$series"
	# After the encoder's payload is set (the one line of the is_enc branch).
	awk -v add="$vicodec_patch" '{ print } /vb2_set_plane_payload\(&dst_vb->vb2_buf, 0, comp_sz_or_errcode\);/ { print add }' \
		"$modsrc/vicodec-core.c" >"$modsrc/vicodec-core.c.new" && mv "$modsrc/vicodec-core.c.new" "$modsrc/vicodec-core.c"
	if [ "$(grep -c 'capbox e2e: flag key frames' "$modsrc/vicodec-core.c")" != 1 ]; then
		echo "e2e-prepare: the vicodec key frame patch does not apply to $series" >&2
		exit 1
	fi
	cat >"$modsrc/Kbuild" <<'KBUILD'
obj-m += v4l2-mem2mem.o vicodec.o vim2m.o vimc.o
vicodec-objs := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o
vimc-y := vimc-core.o vimc-common.o vimc-streamer.o vimc-capture.o vimc-debayer.o vimc-scaler.o vimc-sensor.o vimc-lens.o
KBUILD
	hdr="$dir/headers/usr/src/linux-headers-$kver"
	# The headers' Makefile includes the -common tree by its absolute /usr/src path.
	# (Rewritten from any earlier form, so a rebuild of this step alone finds it too.)
	sed -i "s#^include .*/usr/src/linux-headers-$abi-common/#include $dir/headers/usr/src/linux-headers-$abi-common/#" "$hdr/Makefile"
	# kbuild's host tools are a symlink into /usr/lib/linux-kbuild-<series>.
	ln -sfn "$dir/headers/usr/lib/linux-kbuild-$series/scripts" "$hdr/scripts"
	ln -sfn "$dir/headers/usr/lib/linux-kbuild-$series/tools" "$hdr/tools" 2>/dev/null || true
	cross=()
	if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then cross=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-); fi
	if ! make -C "$hdr" M="$modsrc" "${cross[@]}" -j"$(nproc)" modules >>"$log" 2>&1; then
		echo "e2e-prepare: module build failed, see $log" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	mdir="$dir/kernel/lib/modules/$kver/extra"
	mkdir -p "$mdir"
	cp "$modsrc"/*.ko "$mdir/"
	depmod -b "$dir/kernel" "$kver"
	stamp modules "$modwant"
fi

# 4. The initramfs: static busybox, the virtio/9p modules in load order, and e2e/initrd-init.
initrd="$dir/initrd.gz"
initwant="$want $(sha256sum "$top/e2e/initrd-init" | cut -c1-16) $(dpkg-query -W -f='${Version}' busybox-static)"
if ! stamp_ok initrd "$initwant"; then
	say "making the initramfs"
	r="$dir/initrd.tmp"
	rm -rf "$r"
	mkdir -p "$r/bin" "$r/lib/modules" "$r/proc" "$r/sys" "$r/dev" "$r/newroot"
	if [ "$arch" = "$(dpkg --print-architecture)" ]; then
		cp /bin/busybox "$r/bin/busybox"
	else
		cp "$root/bin/busybox" "$r/bin/busybox"
	fi
	install -m 0755 "$top/e2e/initrd-init" "$r/init"
	mods=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio 9pnet 9pnet_virtio netfs fscache 9p)
	kdir="$dir/kernel/lib/modules/$kver"
	: >"$r/lib/modules/order"
	for m in "${mods[@]}"; do
		f=$(find "$kdir/kernel" -name "$m.ko" -print -quit)
		if [ -z "$f" ]; then
			grep -q "/$m.ko" "$kdir/modules.builtin" || { echo "e2e-prepare: $m is neither a module nor built in" >&2; exit 1; }
			continue
		fi
		cp "$f" "$r/lib/modules/"
		echo "$m" >>"$r/lib/modules/order"
	done
	(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"
	rm -rf "$r"
	stamp initrd "$initwant"
fi

# 5. A GStreamer registry for the host's plugin files: the guest copies it to its tmpfs and only
#    rescans what differs there (the v4l2 plugin, which depends on /dev/video*), instead of a
#    full scan that takes 7-28 s under TCG. Rebuilt whenever GStreamer's plugins change.
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
	reg="$dir/gst-registry.bin"
	plugdir=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/gstreamer-1.0)
	regwant=$(ls -l --time-style=+%s "$plugdir" | sha256sum | cut -c1-16)
	if ! stamp_ok registry "$regwant" || [ ! -s "$reg" ]; then
		say "building the GStreamer registry"
		rm -f "$reg"
		GST_REGISTRY_1_0="$reg" gst-inspect-1.0 >/dev/null 2>>"$log"
		stamp registry "$regwant"
	fi
fi
say "ready ($dir)"
