#!/usr/bin/env bash
# First-boot scripts in a temp root: provisioning from the CAPBOX partition
# (valid file applied and removed, invalid file left with an error, no file),
# the host name from a board serial, and the Pi tryboot RAUC backend.
#   test-firstboot.sh WORKDIR      (CAPBOXD: the agent binary, default bin/capboxd)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
w=${1:?workdir}
mkdir -p "$w"
capboxd=${CAPBOXD:-$repo/bin/capboxd}
fails=0
say() { printf '      %-6s %s\n' "$1" "$2"; }
check() { # name condition...
	local name=$1
	shift
	if "$@"; then say ok "$name"; else say FAIL "$name"; fails=$((fails + 1)); fi
}

run_provision() { # boot data run
	CAPBOX_BOOT_DIR=$1 CAPBOX_DATA_DIR=$2 CAPBOX_RUN_DIR=$3 CAPBOXD=$capboxd \
		CAPBOX_DEFAULT_CONFIG=/etc/capbox/capbox.yaml \
		sh "$repo/overlay/usr/libexec/capbox/provision" 2>"$3.log"
}

# No file: nothing moves, the agent runs the image default.
b=$w/none/boot d=$w/none/data r=$w/none/run
mkdir -p "$b"
run_provision "$b" "$d" "$r"
st=$?
check "provision: no file, exit 0" [ "$st" -eq 0 ]
check "provision: no file, agent runs the image default" grep -qx 'CAPBOXD_CONFIG=/etc/capbox/capbox.yaml' "$r/capboxd.env"
check "provision: no file, nothing written to data" [ ! -e "$d/capbox.yaml" ]

if ! "$capboxd" check -c "$repo/overlay/etc/capbox/capbox.yaml" >/dev/null 2>&1; then
	say FAIL "provision: $capboxd check cannot validate the default config (build it: make build)"
	fails=$((fails + 1))
else
	# Valid file: moved to data, removed from the FAT, receipt left, agent pointed at it.
	b=$w/valid/boot d=$w/valid/data r=$w/valid/run
	mkdir -p "$b"
	printf 'outputs:\n  - name: yt\n    url: "rtmp://live.example.org/app"\n    key: "s3cret-stream-key"\n' >"$b/capbox.yaml"
	cp "$b/capbox.yaml" "$w/valid.orig"
	echo stale >"$b/capbox-error.txt"
	run_provision "$b" "$d" "$r"
	st=$?
	check "provision: valid file applied (exit 0)" [ "$st" -eq 0 ]
	check "provision: valid file moved to data, byte for byte" cmp -s "$w/valid.orig" "$d/capbox.yaml"
	check "provision: secret file removed from the FAT" [ ! -e "$b/capbox.yaml" ]
	check "provision: stale error removed" [ ! -e "$b/capbox-error.txt" ]
	check "provision: receipt written on the FAT" [ -s "$b/capbox-provisioned.txt" ]
	check "provision: data copy is not world-readable" [ "$(stat -c %a "$d/capbox.yaml")" = 600 ]
	check "provision: agent runs the provisioned file" grep -qx "CAPBOXD_CONFIG=$d/capbox.yaml" "$r/capboxd.env"
	check "provision: no temp files left" [ "$(find "$d" -name '.capbox*' | wc -l)" -eq 0 ]

	# Invalid file: untouched, error written on the FAT, previous config kept.
	b=$w/invalid/boot r=$w/invalid/run
	mkdir -p "$b"
	printf 'encode:\n  bitrate_kbps: lots\nnosuchsection: 1\n' >"$b/capbox.yaml"
	cp "$b/capbox.yaml" "$w/invalid.orig"
	run_provision "$b" "$d" "$r"
	st=$?
	check "provision: invalid file reported (exit 1)" [ "$st" -eq 1 ]
	check "provision: invalid file left untouched" cmp -s "$w/invalid.orig" "$b/capbox.yaml"
	check "provision: capbox-error.txt names the bad key" grep -q nosuchsection "$b/capbox-error.txt"
	check "provision: error also in the journal" grep -q nosuchsection "$r.log"
	check "provision: previous config kept" cmp -s "$w/valid.orig" "$d/capbox.yaml"
	check "provision: agent still runs the previous file" grep -qx "CAPBOXD_CONFIG=$d/capbox.yaml" "$r/capboxd.env"
fi

# Host name from the Pi serial (NUL-terminated in the device tree), else DMI.
s=$w/sys1
mkdir -p "$s/sys/firmware/devicetree/base"
printf '10000000abcd1234\0' >"$s/sys/firmware/devicetree/base/serial-number"
CAPBOX_SYSROOT=$s CAPBOX_HOSTNAME_FILE=$w/hn1 sh "$repo/overlay/usr/libexec/capbox/hostname" 2>/dev/null
check "hostname: from the device-tree serial" grep -qx capbox-abcd1234 "$w/hn1"
s=$w/sys2
mkdir -p "$s/sys/class/dmi/id" "$s/etc"
echo "To Be Filled By O.E.M." >"$s/sys/class/dmi/id/product_serial"
echo 0123456789abcdef0123456789abcdef >"$s/etc/machine-id"
CAPBOX_SYSROOT=$s CAPBOX_HOSTNAME_FILE=$w/hn2 sh "$repo/overlay/usr/libexec/capbox/hostname" 2>/dev/null
check "hostname: placeholder DMI serial skipped, machine-id used" grep -qx capbox-89abcdef "$w/hn2"

# Tryboot backend against a model of the Pi firmware's documented rules:
# autoboot.txt on the first FAT partition says which partition boots
# ([all] boot_partition) and which one a tryboot reboot boots ([tryboot]
# boot_partition); `reboot "0 tryboot"` sets a one-shot flag, which the next
# boot consumes, so any later reset (watchdog, power) boots [all] again. The
# firmware tells the kernel what it booted in /proc/device-tree/chosen/
# bootloader/{partition,tryboot}. The real rauc-tryboot and reboot helper run
# against it; only systemctl is the model's (it sets the flag the firmware
# reads, as the kernel passes the reboot argument to it).
tb=$repo/buildroot/board/rpi/rootfs-overlay/usr/libexec/capbox/rauc-tryboot
t=$w/tryboot
mkdir -p "$t/dt" "$t/state" "$t/bin"
cp "$repo/buildroot/board/rpi/autoboot.txt" "$t/autoboot.txt"
cat >"$t/bin/systemctl" <<SH
#!/bin/sh
# The model's systemctl: "reboot 0 tryboot" sets the firmware's one-shot flag.
[ "\$*" = "--no-block reboot 0 tryboot" ] && : >"$t/flag"
exit 0
SH
chmod +x "$t/bin/systemctl"
section() { awk -v want="[$1]" '/^\[/ { sec = $0; next } sec == want && /^boot_partition=/ { sub(/^boot_partition=/, ""); print; exit }' "$t/autoboot.txt"; }
firmware_boot() { # the firmware powers on: which partition, with which flag
	local p try=0
	if [ -f "$t/flag" ]; then p=$(section tryboot) try=1; rm -f "$t/flag"; else p=$(section all); fi
	printf '\0\0\0%b' "\\0$(printf '%o' "$p")" >"$t/dt/partition"
	printf '\0\0\0%b' "\\0$try" >"$t/dt/tryboot"
	echo "$p"
}
trb() { CAPBOX_AUTOBOOT=$t/autoboot.txt CAPBOX_DT_BOOTLOADER=$t/dt CAPBOX_RAUC_STATE=$t/state \
	CAPBOX_CMDLINE=/dev/null sh "$tb" "$@"; }
reboot_helper() { PATH=$t/bin:$PATH CAPBOX_RAUC_STATE=$t/state sh "$repo/overlay/usr/libexec/capbox/reboot" 2>/dev/null; }
install_into() { trb set-state "$1" bad && trb set-primary "$1"; } # RAUC: mark the target bad, write it, make it primary
check "tryboot: first boot: partition 2, slot A" [ "$(firmware_boot)/$(trb get-current)/$(trb get-primary)" = 2/A/A ]
trb set-state A good
install_into B
check "tryboot: install into B: primary B, [all] still 2" [ "$(trb get-primary)/$(section all)/$(section tryboot)" = B/2/3 ]
reboot_helper
check "tryboot: the reboot helper asks for a tryboot; the firmware boots 3 once" [ "$(firmware_boot)/$(trb get-current)" = 3/B ]
trb set-state B good
check "tryboot: B's agent ready: B committed ([all] 3), nothing pending" \
	[ "$(section all)/$(trb get-primary)/$(ls "$t/state")" = "3/B/" ]
reboot_helper
check "tryboot: a plain reboot stays on B" [ "$(firmware_boot)/$(trb get-current)" = 3/B ]
trb set-state B good
install_into A
reboot_helper
check "tryboot: trial of A" [ "$(firmware_boot)/$(trb get-current)" = 2/A ]
# A never becomes ready: a reset (watchdog, or capbox-mark-good's plain
# reboot) and the one-shot flag is gone.
check "tryboot: reset during A's trial: the firmware falls back to B" [ "$(firmware_boot)/$(trb get-current)" = 3/B ]
trb set-state B good
check "tryboot: B marked good after the failed trial: A bad, nothing pending, primary B" \
	[ "$(trb get-state A)/$(trb get-primary)/$(ls "$t/state")" = "bad/B/bad-A" ]
reboot_helper
check "tryboot: the next reboot does not try A again" [ "$(firmware_boot)/$(trb get-current)" = 3/B ]
# An install whose reboot never came (the power went first): still pending.
install_into A
check "tryboot: power cut after an install: B boots, A still pending" [ "$(firmware_boot)/$(trb get-current)" = 3/B ]
trb set-state B good
check "tryboot: ... and is tried at the next reboot" [ "$(trb get-primary)" = A ]

[ "$fails" -eq 0 ]
