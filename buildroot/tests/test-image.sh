#!/usr/bin/env bash
# Offline checks of the SD-card image sources (make test-image): no network,
# no Buildroot tree, Debian's tools only. Prints one line per check and a
# closing "N passed, N failed" line.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
ext=$repo/buildroot
tests=$ext/tests
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH=/usr/sbin:/sbin:$PATH
pass=0 fail=0

ok() { pass=$((pass + 1)); printf 'ok    %-34s %s\n' "$1" "${2:-}"; }
bad() { fail=$((fail + 1)); printf 'FAIL  %-34s %s\n' "$1" "${2:-}"; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# --- shell scripts -----------------------------------------------------------
t=$(now)
mapfile -t scripts < <(cd "$repo" && grep -rlE '^#!(/usr/bin/env |/bin/)(ba)?sh' buildroot overlay e2e/appliance | sort)
if out=$(cd "$repo" && shellcheck "${scripts[@]}" 2>&1); then
	ok shellcheck "${#scripts[@]} scripts, $(took "$t")"
else
	bad shellcheck "$out"
fi

# --- systemd units -------------------------------------------------------------
# verify resolves units and commands inside --root: a root with the host's
# systemd units, the overlays, and the programs the units name.
t=$(now)
vroot=$work/vroot
mkdir -p "$vroot/usr/lib/systemd" "$vroot/usr/bin" "$vroot/usr/sbin"
ln -s usr/bin "$vroot/bin"
ln -s usr/sbin "$vroot/sbin"
cp -r /lib/systemd/system "$vroot/usr/lib/systemd/system"
for o in "$repo/overlay" "$ext"/board/*/rootfs-overlay; do cp -r "$o/." "$vroot/"; done
for p in rm systemctl rauc; do cp "$(command -v "$p")" "$vroot/usr/bin/"; done
printf '#!/bin/sh\nexit 1\n' >"$vroot/usr/bin/capboxd" # only its path is checked
chmod +x "$vroot/usr/bin/capboxd"
mapfile -t units < <(cd "$vroot" && find "$repo/overlay" "$ext"/board/*/rootfs-overlay -path '*/systemd/system/*' -type f \
	\( -name '*.service' -o -name '*.mount' -o -name '*.path' \) -printf '/usr/lib/systemd/system/%f\n' | sort)
if out=$(systemd-analyze verify --root="$vroot" "${units[@]/#/$vroot}" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify" "${#units[@]} units, $(took "$t")"
else
	bad "systemd-analyze verify" "$out"
fi
t=$(now)
score=$(systemd-analyze security --offline=true "$repo/overlay/usr/lib/systemd/system/capboxd.service" 2>&1 |
	sed -n 's/.*Overall exposure level for capboxd.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }'; then
	ok "capboxd.service exposure" "$score <= 2.5, $(took "$t")"
else
	bad "capboxd.service exposure" "'$score' (want <= 2.5)"
fi

# --- defconfigs --------------------------------------------------------------
t=$(now)
need=(BR2_PACKAGE_CAPBOX=y BR2_PACKAGE_LIBSRT=y BR2_INIT_SYSTEMD=y BR2_PACKAGE_CHRONY=y
	'# BR2_PACKAGE_SYSTEMD_TIMESYNCD is not set' '# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is not set'
	BR2_PACKAGE_RAUC=y BR2_PACKAGE_GST1_PLUGINS_GOOD_PLUGIN_V4L2=y BR2_PACKAGE_GST1_PLUGINS_UGLY_PLUGIN_X264=y
	BR2_PACKAGE_GST1_PLUGINS_BAD_PLUGIN_RTMP2=y BR2_PACKAGE_GST1_PLUGINS_BAD_PLUGIN_MPEGTSMUX=y
	BR2_PACKAGE_GST1_PLUGINS_GOOD_PLUGIN_LEVEL=y BR2_PACKAGE_GST1_PLUGINS_GOOD_JPEG=y
	BR2_PACKAGE_GST1_PLUGINS_BASE_PLUGIN_PANGO=y BR2_PACKAGE_GST1_PLUGINS_BAD_PLUGIN_VOAACENC=y
	BR2_PACKAGE_GST1_PLUGINS_GOOD_PLUGIN_MULTIFILE=y BR2_PACKAGE_GST1_PLUGINS_GOOD_PLUGIN_FLV=y
	BR2_PACKAGE_GST1_PLUGINS_BAD_PLUGIN_VIDEOPARSERS=y BR2_PACKAGE_GST1_PLUGINS_BASE_PLUGIN_VIDEOCONVERTSCALE=y
	BR2_PACKAGE_GST1_PLUGINS_BASE_PLUGIN_AUDIOCONVERT=y BR2_PACKAGE_GST1_PLUGINS_BASE_PLUGIN_ALSA=y
	BR2_PACKAGE_GST1_RTSP_SERVER=y BR2_PACKAGE_CA_CERTIFICATES=y)
n=0
for cfg in "$ext"/configs/capbox_*_defconfig; do
	n=$((n + 1))
	missing=()
	for line in "${need[@]}"; do grep -qxF -- "$line" "$cfg" || missing+=("$line"); done
	grep -qE '^BR2_ROOTFS_OVERLAY=".*/\.\./overlay ' "$cfg" || missing+=("BR2_ROOTFS_OVERLAY with ../overlay")
	if [ ${#missing[@]} -eq 0 ]; then ok "defconfig $(basename "$cfg")"; else bad "defconfig $(basename "$cfg")" "missing: ${missing[*]}"; fi
done
[ "$n" -eq 5 ] || bad "defconfig count" "want 5, have $n"
echo "      (defconfig checks $(took "$t"))"

# --- post-build.sh and post-image.sh, every board ------------------------------
# Buildroot's hand-over to the two scripts, with what a build would have put in
# BINARIES_DIR (firmware, kernel and root file system as files of the right
# names; the root with the compression the defconfig asks for; on x86_64 the
# GRUB image made by Debian's grub-mkimage from the defconfig's module list)
# and Debian's genimage and rauc as HOST_DIR's tools. Checked: the partition
# table (tests/expected/FAMILY.sfdisk), what the first FAT partition holds,
# the signed bundle's version and compatible against the root's system.conf
# and keyring, growdata on a bigger card.
table() { sfdisk --dump "$1" | sed -e "s|^$1|IMG|" -e '/^device:/d' -e 's/, uuid=[0-9A-Fa-f-]*//' -e '/^label-id:/d' -e '/^first-lba:/d' -e '/^last-lba:/d'; }
defconfig_value() { sed -n "s/^$2=//p" "$ext/configs/capbox_$1_defconfig" | tr -d '"'; }
squashfs_comp() { # BOARD: mksquashfs options of the defconfig's compression
	local c
	c=$(grep -o '^BR2_TARGET_ROOTFS_SQUASHFS4_[A-Z0-9]*=y' "$ext/configs/capbox_$1_defconfig" | sed 's/^BR2_TARGET_ROOTFS_SQUASHFS4_\(.*\)=y/\1/')
	case $c in XZ) echo "-comp xz" ;; ZSTD) echo "-comp zstd" ;; LZ4) echo "-comp lz4" ;; LZO) echo "-comp lzo" ;; "" | GZIP) echo "-comp gzip" ;; *) echo "-comp $c" ;; esac
}
keys=$work/keys
t=$(now)
if sh "$ext/board/common/rauc-dev-keys.sh" "$keys" && openssl verify -CAfile "$keys/ca.cert.pem" "$keys/signing.cert.pem" >/dev/null; then
	ok "rauc development keys" "$(took "$t")"
else
	bad "rauc development keys"
fi
sh "$ext/board/common/rauc-dev-keys.sh" "$work/other"
version=1.2.3-test
for board in rpi3 rpi4_64 rpi5 imx8mp x86_64; do
	t=$(now)
	case $board in rpi*) fam=rpi ;; *) fam=$board ;; esac
	d=$work/pi-$board
	bin=$d/images target=$d/target host=$d/host
	mkdir -p "$bin" "$target/usr/lib" "$target/boot" "$target/usr/bin" "$host/bin" "$d/build"
	ln -s "$(command -v genimage)" "$host/bin/genimage"
	ln -s "$(command -v rauc)" "$host/bin/rauc"
	printf 'NAME=Buildroot\nVERSION_ID=2026.02.3\n' >"$target/usr/lib/os-release"
	head -c 20000000 /dev/urandom >"$target/usr/bin/capboxd"
	case $fam in
	rpi)
		fw=$bin/rpi-firmware
		mkdir -p "$fw/overlays"
		cp "$ext/board/rpi/config_$board.txt" "$fw/config.txt"
		cp "$ext/board/rpi/cmdline.txt" "$fw/cmdline.txt"
		for f in start4.elf fixup4.dat start.elf fixup.dat; do head -c 300000 /dev/urandom >"$fw/$f"; done
		[ "$board" = rpi3 ] && head -c 52000 /dev/urandom >"$fw/bootcode.bin"
		echo overlay >"$fw/overlays/tc358743.dtbo"
		echo dtb >"$bin/board.dtb"
		head -c 9000000 /dev/urandom >"$bin/$(sed -n 's/^kernel=//p' "$fw/config.txt")"
		;;
	x86_64)
		mkdir -p "$bin/efi-part/EFI/BOOT"
		head -c 9000000 /dev/urandom >"$target/boot/bzImage"
		# Buildroot's grub2.mk: grub-mkimage -O x86_64-efi -p /EFI/BOOT MODULES.
		# shellcheck disable=SC2046 # the module list is a word list
		if grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$bin/efi-part/EFI/BOOT/bootx64.efi" \
			$(defconfig_value x86_64 BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI) 2>"$d/grub-mkimage.log"; then
			ok "grub-mkimage x86_64" "BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI with Debian's GRUB $(grub-mkimage --version | awk '{print $NF}')"
		else
			bad "grub-mkimage x86_64" "$(cat "$d/grub-mkimage.log")"
		fi
		;;
	imx8mp)
		head -c 1500000 /dev/urandom >"$bin/flash.bin"
		echo scr >"$bin/boot.scr"
		;;
	esac
	if ! BR2_EXTERNAL_CAPBOX_PATH=$ext BASE_DIR=$d CAPBOX_VERSION=$version CAPBOX_RAUC_KEYS=$keys \
		sh "$ext/board/common/post-build.sh" "$target" "$board" >"$d/post-build.log" 2>&1; then
		bad "post-build $board" "$(tail -n 5 "$d/post-build.log")"
		continue
	fi
	if [ "$fam" = imx8mp ]; then
		mkfs.ext4 -q -L capbox-root -d "$target" "$bin/rootfs.ext4" 64M >/dev/null 2>&1
	else
		# shellcheck disable=SC2046 # mksquashfs options
		mksquashfs "$target" "$bin/rootfs.squashfs" $(squashfs_comp "$board") -quiet -no-progress >/dev/null
	fi
	if ! BR2_EXTERNAL_CAPBOX_PATH=$ext BASE_DIR=$d BUILD_DIR=$d/build HOST_DIR=$host TARGET_DIR=$target \
		CAPBOX_RAUC_KEYS=$keys bash "$ext/board/common/post-image.sh" "$bin" "$board" >"$d/post-image.log" 2>&1; then
		bad "post-image $board" "$(tail -n 8 "$d/post-image.log")"
		continue
	fi
	img=$bin/sdcard.img
	[ "$fam" = x86_64 ] && img=$bin/disk.img
	table "$img" >"$d/table"
	if [ -n "${UPDATE_EXPECTED:-}" ]; then cp "$d/table" "$tests/expected/$fam.sfdisk"; fi
	if ! diff -u "$tests/expected/$fam.sfdisk" "$d/table" >"$d/diff"; then
		bad "layout $board" "$(cat "$d/diff")"
		continue
	fi
	v=$(sfdisk --verify "$img" 2>&1)
	case $v in *"No errors detected"*) ;; *) bad "sfdisk --verify $board" "$v" ;; esac
	# The first FAT partition: what the firmware or the user finds there.
	first=$(sfdisk --dump "$img" | sed -n 's/.*1 : start= *\([0-9]*\),.*/\1/p')
	p1=$(mdir -b -i "$img@@$((first * 512))" :: 2>/dev/null | sed -e 's|^::/||' -e 's|/$||' | sort | tr '\n' ' ')
	want="README.TXT"
	case $board in rpi3) want="$want AUTOBOOT.TXT BOOTCODE.BIN" ;; rpi*) want="$want AUTOBOOT.TXT" ;; x86_64) want="$want EFI" ;; imx8mp) want="$want BOOT.SCR" ;; esac
	absent=
	for f in $want; do case " ${p1^^} " in *" $f "*) ;; *) absent="$absent $f" ;; esac; done
	if [ -z "$absent" ]; then ok "first partition $board" "$p1"; else bad "first partition $board" "missing:$absent (has: $p1)"; fi
	# The bundle: capbox's version, this board's compatible, signed by the
	# keyring post-build installed; refused with another keyring.
	b=$bin/capbox-$board.raucb
	if info=$(rauc info --conf="$target/etc/rauc/system.conf" --keyring="$target/etc/rauc/keyring.pem" --output-format=shell "$b" 2>"$d/info.err") &&
		grep -qx "RAUC_MF_COMPATIBLE='capbox-$board'" <<<"$info" && grep -qx "RAUC_MF_VERSION='$version'" <<<"$info"; then
		ok "bundle $board" "version $version, compatible capbox-$board, verified, $(du -k "$b" | cut -f1) KiB"
	else
		bad "bundle $board" "$(grep -E 'RAUC_MF_(VERSION|COMPATIBLE)' <<<"${info:-}") $(cat "$d/info.err")"
	fi
	if rauc info --conf="$target/etc/rauc/system.conf" --keyring="$work/other/ca.cert.pem" "$b" >/dev/null 2>&1; then
		bad "bundle $board: another CA's keyring refuses it"
	fi
	if [ "$fam" = x86_64 ]; then
		# GRUB reads the kernel from the slot: Debian's GRUB must read this
		# compression; and the ESP's grubenv must be one grub-editenv reads.
		if out=$(grub-fstest "$bin/rootfs.squashfs" cmp /boot/bzImage "$target/boot/bzImage" 2>&1); then
			ok "grub reads the x86_64 slot" "$(squashfs_comp x86_64), /boot/bzImage byte for byte"
		else
			bad "grub reads the x86_64 slot" "$(squashfs_comp x86_64): $out"
		fi
		esp=$(sfdisk --dump "$img" | sed -n 's/.*1 : start= *\([0-9]*\),.*/\1/p')
		mcopy -i "$img@@$((esp * 512))" ::EFI/BOOT/grubenv "$d/grubenv"
		if grub-editenv "$d/grubenv" set ORDER="A B" && grub-editenv "$d/grubenv" list | grep -qx 'ORDER=A B'; then
			ok "grubenv on the ESP" "grub-editenv reads and writes it"
		else
			bad "grubenv on the ESP" "$(grub-editenv "$d/grubenv" list 2>&1)"
		fi
	fi
	# The data partition (last) grows to a larger card, the table stays valid.
	nr=$(sfdisk --dump "$img" | grep -c ' : start=')
	truncate -s +256M "$img"
	sh "$repo/overlay/usr/libexec/capbox/growdata" --image "$img" "$nr" 2>"$d/grow"
	size=$(sfdisk --dump "$img" | grep "$nr : " | sed -n 's/.*size= *\([0-9]*\).*/\1/p')
	if sfdisk --verify "$img" 2>&1 | grep -q 'No errors detected' && [ "$size" -gt $((256 * 2048)) ]; then
		ok "growdata $board" "p$nr now $((size / 2048)) MiB"
	else
		bad "growdata $board" "size=$size $(cat "$d/grow")"
	fi
	echo "      (post-build/post-image $board $(took "$t"))"
	rm -rf "$d"
done

# --- GRUB configuration ------------------------------------------------------
# grub.cfg parses, and every command it runs is in a module built into the
# image (GRUB's command.lst/moddep.lst): the EFI image has no module folder.
t=$(now)
cfg=$ext/board/x86_64/grub.cfg
gdir=/usr/lib/grub/x86_64-efi
if out=$(grub-script-check "$cfg" 2>&1); then ok "grub-script-check grub.cfg"; else bad "grub-script-check grub.cfg" "$out"; fi
# shellcheck disable=SC2046
mods=" $(defconfig_value x86_64 BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI) "
for _ in 1 2 3 4; do # close over dependencies
	for m in $mods; do
		# shellcheck disable=SC2013 # module names are words
		for dep in $(sed -n "s/^$m: //p" "$gdir/moddep.lst"); do
			case $mods in *" $dep "*) ;; *) mods="$mods$dep " ;; esac
		done
	done
done
absent=
# shellcheck disable=SC2013 # GRUB commands are words
for c in $(sed -e 's/#.*//' "$cfg" | awk '{ for (i = 1; i <= NF; i++) if (i == 1 || $(i-1) == "then" || $(i-1) == "else" || $(i-1) == "do" || $(i-1) == ";") print $i }' |
	grep -vE '^(if|then|elif|else|fi|for|in|do|done|while|function|menuentry|set|unset|export|true|false|return|break|continue|shift|setparams|\}|\{)$|=|^\$' | sort -u); do
	m=$(awk -v c="$c" -F': ' '{ sub(/^\*/, "", $1) } $1 == c { print $2; exit }' "$gdir/command.lst")
	case $c in '[') m="test" ;; esac
	[ -n "$m" ] || { absent="$absent $c(unknown command)"; continue; }
	case $mods in *" $m "*) ;; *) absent="$absent $c($m)" ;; esac
done
if [ -z "$absent" ]; then ok "grub.cfg commands built in" "$(took "$t")"; else bad "grub.cfg commands built in" "not in BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI:$absent"; fi

# --- RAUC's boot loader tools on the target ---------------------------------------
# Each backend runs programs on the box: GRUB's grub-editenv, U-Boot's
# fw_printenv/fw_setenv, the custom backend's script. Each board's defconfig
# must build them (and the root must carry the custom handlers).
for cfg in "$ext"/configs/capbox_*_defconfig; do
	board=$(basename "$cfg" _defconfig)
	board=${board#capbox_}
	case $board in rpi*) fam=rpi ;; *) fam=$board ;; esac
	conf=$ext/board/$fam/rauc-system.conf
	backend=$(sed -n 's/^bootloader=//p' "$conf")
	problems=
	need_sym() { grep -qx "$1=y" "$cfg" || problems="$problems $1 (for $2)"; }
	case $backend in
	grub) need_sym BR2_TARGET_GRUB2_INSTALL_TOOLS grub-editenv ;;
	uboot)
		need_sym BR2_PACKAGE_LIBUBOOTENV "fw_printenv, fw_setenv"
		[ -f "$ext/board/$fam/rootfs-overlay/etc/fw_env.config" ] || problems="$problems /etc/fw_env.config"
		;;
	custom) ;;
	*) problems="unknown backend '$backend'" ;;
	esac
	# shellcheck disable=SC2013 # one path per line
	for h in $(sed -n 's/^\(bootloader-custom-backend\|post-install\|pre-install\|install-check\)=//p' "$conf"); do
		[ -x "$ext/board/$fam/rootfs-overlay$h" ] || [ -x "$repo/overlay$h" ] || problems="$problems $h (handler)"
	done
	need_sym BR2_PACKAGE_RAUC_DBUS "rauc status mark-good"
	if [ -z "$problems" ]; then ok "rauc tools $board" "$backend backend"; else bad "rauc tools $board" "$backend backend needs:$problems"; fi
done

# --- U-Boot script ----------------------------------------------------------------
t=$(now)
if out=$(bash "$tests/test-bootcmd.sh" 2>&1); then ok "imx8mp boot.cmd" "$(took "$t")"; else bad "imx8mp boot.cmd" "$out"; fi

# --- first boot ------------------------------------------------------------------
t=$(now)
bash "$tests/test-firstboot.sh" "$work/firstboot"
fb=$?
if [ "$fb" -eq 0 ]; then ok "first boot scripts" "$(took "$t")"; else bad "first boot scripts" "see above"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
