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

# Tryboot backend: install into B, trial boot of B, commit; then a failed trial.
tb=$repo/buildroot/board/rpi/rootfs-overlay/usr/libexec/capbox/rauc-tryboot
t=$w/tryboot
mkdir -p "$t/dt" "$t/state"
cp "$repo/buildroot/board/rpi/autoboot.txt" "$t/autoboot.txt"
boot_as() { printf '\0\0\0%b' "\\0$(printf '%o' "$1")" >"$t/dt/partition"; printf '\0\0\0%b' "\\0$2" >"$t/dt/tryboot"; }
trb() { CAPBOX_AUTOBOOT=$t/autoboot.txt CAPBOX_DT_BOOTLOADER=$t/dt CAPBOX_RAUC_STATE=$t/state \
	CAPBOX_CMDLINE=/dev/null sh "$tb" "$@"; }
boot_as 2 0
check "tryboot: booted A, primary A" [ "$(trb get-current)/$(trb get-primary)" = A/A ]
trb set-primary B
check "tryboot: install into B: primary B, trial pending" [ "$(trb get-primary)/$(cat "$t/state/tryboot-pending")" = B/B ]
check "tryboot: install into B: [all] stays 2, [tryboot] 3" \
	[ "$(sed -n 's/^boot_partition=//p' "$t/autoboot.txt" | tr '\n' ' ')" = "2 3 " ]
boot_as 3 1
trb set-state B good
check "tryboot: good trial of B commits it: [all] 3, [tryboot] 2" \
	[ "$(sed -n 's/^boot_partition=//p' "$t/autoboot.txt" | tr '\n' ' ')" = "3 2 " ]
check "tryboot: committed: primary B" [ "$(trb get-primary)" = B ]
check "tryboot: committed: nothing pending" [ ! -e "$t/state/tryboot-pending" ]
trb set-primary A
boot_as 3 0 # the trial of A crashed: the firmware fell back to B
trb set-state A bad
check "tryboot: failed trial of A leaves B normal, A bad" \
	[ "$(trb get-primary)/$(trb get-state A)/$(trb get-current)" = B/bad/B ]

[ "$fails" -eq 0 ]
