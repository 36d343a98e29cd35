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
mapfile -t scripts < <(cd "$repo" && grep -rlE '^#!(/usr/bin/env |/bin/)(ba)?sh' buildroot overlay | sort)
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

# --- genimage layouts ----------------------------------------------------------
# Each layout is built from a fake root the way post-image.sh lays it out; the
# partition table must match the committed one (tests/expected/FAMILY.sfdisk).
fake_root() { # fam dir
	local d=$2
	mkdir -p "$d/root/data" "$d/in"
	case $1 in
	rpi)
		mkdir -p "$d/root/capbox" "$d/root/boot-a/overlays" "$d/root/boot-b"
		cp "$ext/board/rpi/autoboot.txt" "$d/root/capbox/"
		head -c 3000000 /dev/urandom >"$d/root/boot-a/start4.elf"
		head -c 9000000 /dev/urandom >"$d/root/boot-a/Image"
		echo overlay >"$d/root/boot-a/overlays/tc358743.dtbo"
		cp "$ext/board/rpi/config_rpi4_64.txt" "$d/root/boot-a/config.txt"
		cp "$ext/board/rpi/cmdline.txt" "$d/root/boot-a/cmdline.txt"
		cp -r "$d/root/boot-a/." "$d/root/boot-b/"
		;;
	x86_64) mkdir -p "$d/root/esp/EFI/BOOT" && head -c 800000 /dev/urandom >"$d/root/esp/EFI/BOOT/bootx64.efi" ;;
	imx8mp) mkdir -p "$d/root/capbox" && head -c 1500000 /dev/urandom >"$d/in/flash.bin" && echo scr >"$d/root/capbox/boot.scr" ;;
	esac
	mkdir -p "$d/rootfs/boot" "$d/rootfs/usr/bin"
	head -c 20000000 /dev/urandom >"$d/rootfs/usr/bin/capboxd"
	if [ "$1" = imx8mp ]; then
		mkfs.ext4 -q -L capbox-root -d "$d/rootfs" "$d/in/rootfs.ext4" 64M >/dev/null 2>&1
	else
		mksquashfs "$d/rootfs" "$d/in/rootfs.squashfs" -comp zstd -quiet -no-progress >/dev/null
	fi
}
table() { sfdisk --dump "$1" | sed -e "s|^$1|IMG|" -e '/^device:/d' -e 's/, uuid=[0-9A-Fa-f-]*//' -e '/^label-id:/d' -e '/^first-lba:/d' -e '/^last-lba:/d'; }
for fam in rpi x86_64 imx8mp; do
	t=$(now)
	d=$work/gi-$fam
	fake_root "$fam" "$d"
	if ! genimage --rootpath "$d/root" --tmppath "$d/tmp" --inputpath "$d/in" --outputpath "$d/out" \
		--config "$ext/board/$fam/genimage.cfg" >"$d/log" 2>&1; then
		bad "genimage $fam" "$(tail -n 5 "$d/log")"
		continue
	fi
	img=$(find "$d/out" -maxdepth 1 -name '*.img' | head -n 1)
	table "$img" >"$d/table"
	if [ -n "${UPDATE_EXPECTED:-}" ]; then cp "$d/table" "$tests/expected/$fam.sfdisk"; fi
	if ! diff -u "$tests/expected/$fam.sfdisk" "$d/table" >"$d/diff"; then
		bad "genimage $fam table" "$(cat "$d/diff")"
		continue
	fi
	v=$(sfdisk --verify "$img" 2>&1)
	labels=$(blkid -p -o value -s LABEL "$d"/out/*.vfat "$d/out/data.ext4" 2>/dev/null | sort | tr '\n' ' ')
	ok "genimage $fam" "$(du -m --apparent-size "$img" | cut -f1) MiB image, labels: $labels$(took "$t")"
	case $v in *"No errors detected"*) ;; *) bad "sfdisk --verify $fam" "$v" ;; esac
	# The data partition (last) grows to a larger card, the table stays valid.
	nr=$(sfdisk --dump "$img" | grep -c '^/.*: start=\|^.*img[0-9]* : start=')
	truncate -s +256M "$img"
	sh "$repo/overlay/usr/libexec/capbox/growdata" --image "$img" "$nr" 2>"$d/grow"
	end=$(sfdisk --list-free "$img" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { s += $3 } END { print s + 0 }')
	size=$(sfdisk --dump "$img" | grep "img$nr : " | sed -n 's/.*size= *\([0-9]*\).*/\1/p')
	if sfdisk --verify "$img" 2>&1 | grep -q 'No errors detected' && [ "$size" -gt $((256 * 2048)) ]; then
		ok "growdata $fam" "p$nr now $((size / 2048)) MiB"
	else
		bad "growdata $fam" "size=$size free=$end $(cat "$d/grow")"
	fi
done

# --- RAUC bundles ----------------------------------------------------------------
t=$(now)
keys=$work/keys
if sh "$ext/board/common/rauc-dev-keys.sh" "$keys" && openssl verify -CAfile "$keys/ca.cert.pem" "$keys/signing.cert.pem" >/dev/null; then
	ok "rauc development keys" "$(took "$t")"
else
	bad "rauc development keys"
fi
for fam in rpi x86_64 imx8mp; do
	t=$(now)
	d=$work/rauc-$fam
	board=$fam
	[ "$fam" = rpi ] && board=rpi4_64
	mkdir -p "$d/bundle"
	sed "s/^compatible=.*/compatible=capbox-$board/" "$ext/board/$fam/rauc-system.conf" >"$d/system.conf"
	{
		printf '[update]\ncompatible=capbox-%s\nversion=test\n[bundle]\nformat=verity\n' "$board"
		if [ "$fam" = imx8mp ]; then
			printf '[image.rootfs]\nfilename=rootfs.ext4\n'
			cp "$work/gi-$fam/in/rootfs.ext4" "$d/bundle/"
		else
			printf '[image.rootfs]\nfilename=rootfs.squashfs\n'
			cp "$work/gi-$fam/in/rootfs.squashfs" "$d/bundle/"
		fi
		if [ "$fam" = rpi ]; then
			printf '[image.boot]\nfilename=boot.vfat\n'
			cp "$work/gi-rpi/out/boot-a.vfat" "$d/bundle/boot.vfat"
		fi
	} >"$d/bundle/manifest.raucm"
	if ! rauc bundle --cert="$keys/signing.cert.pem" --key="$keys/signing.key.pem" "$d/bundle" "$d/u.raucb" >"$d/log" 2>&1; then
		bad "rauc bundle $fam" "$(tail -n 5 "$d/log")"
		continue
	fi
	if info=$(rauc info --conf="$d/system.conf" --keyring="$keys/ca.cert.pem" --output-format=shell "$d/u.raucb" 2>"$d/err") &&
		grep -q "^RAUC_MF_COMPATIBLE='capbox-$board'" <<<"$info" &&
		grep -q "^RAUC_SYSTEM_COMPATIBLE\|^RAUC_MF_COMPATIBLE" <<<"$info"; then
		ok "rauc bundle $fam" "signed, verified against system.conf, $(du -k "$d/u.raucb" | cut -f1) KiB, $(took "$t")"
	else
		bad "rauc bundle $fam" "$(cat "$d/err")"
	fi
	# A bundle signed by another CA must be refused.
	if [ "$fam" = rpi ]; then
		sh "$ext/board/common/rauc-dev-keys.sh" "$work/other"
		if rauc info --conf="$d/system.conf" --keyring="$work/other/ca.cert.pem" "$d/u.raucb" >/dev/null 2>&1; then
			bad "rauc refuses a foreign signature"
		else
			ok "rauc refuses a foreign signature"
		fi
	fi
done

# --- first boot ------------------------------------------------------------------
t=$(now)
bash "$tests/test-firstboot.sh" "$work/firstboot"
fb=$?
if [ "$fb" -eq 0 ]; then ok "first boot scripts" "$(took "$t")"; else bad "first boot scripts" "see above"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
