#!/usr/bin/env bash
# Runs board/imx8mp/boot.cmd as U-Boot would, with a POSIX shell standing in
# for U-Boot's hush (same if/for/test/&& syntax; a `then` with no command is a
# syntax error in both) and U-Boot's commands as functions: setenv, setexpr,
# saveenv (the environment RAUC's U-Boot backend reads: BOOT_ORDER,
# BOOT_<slot>_LEFT), reset, load and booti (what would boot).
#   test-bootcmd.sh [BOOT_CMD]     prints one line per check; exit 1 on a failure
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:-$repo/buildroot/board/imx8mp/boot.cmd}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
say() { printf '      %-6s %s\n' "$1" "$2"; }

# boot ENV...: run boot.cmd with the given saved environment; leaves
# $work/out (what booted or "reset") and $work/env (the saved environment).
boot() {
	{
		cat <<'SH'
setenv() { if [ $# -ge 2 ]; then eval "$1=\$2"; else unset "$1"; fi; }
setexpr() { eval "$1=\$(( $2 $3 $4 ))"; }
saveenv() { for v in BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; do eval "printf '%s=%s\n' $v \"\${$v-}\""; done >"$ENVOUT"; }
reset() { echo reset >"$OUT"; exit 0; }
load() { printf 'load %s %s\n' "$2" "$4" >>"$OUT"; }
booti() { printf 'bootargs %s\n' "$bootargs" >>"$OUT"; exit 0; }
devnum=1 kernel_addr_r=0x40480000 fdt_addr_r=0x43000000
SH
		for kv in "$@"; do printf '%s\n' "$kv"; done
		cat "$cmd"
		# shellcheck disable=SC2016 # expanded by the script it writes
		echo 'echo "fell off the end" >>"$OUT"'
	} >"$work/run.sh"
	: >"$work/out"
	: >"$work/env"
	OUT=$work/out ENVOUT=$work/env sh "$work/run.sh" >"$work/log" 2>&1 || echo "exit $?" >>"$work/out"
}
check() { # name want-file-lines...
	local name=$1 ok=1
	shift
	for want in "$@"; do grep -qxF -- "$want" "$work/out" "$work/env" || { ok=0; say FAIL "$name: no '$want' in: $(tr '\n' '|' <"$work/out")$(tr '\n' '|' <"$work/env") $(tr '\n' ' ' <"$work/log")"; }; done
	if [ "$ok" = 1 ]; then say ok "$name"; else fails=$((fails + 1)); fi
}

if ! sh -n "$cmd" 2>"$work/syntax"; then
	say FAIL "boot.cmd does not parse: $(cat "$work/syntax")"
	exit 1
fi
boot
check "first boot: slot A from partition 2, root PARTLABEL=rootfs-a, one attempt used" \
	"load 1:2 /boot/Image" "bootargs root=PARTLABEL=rootfs-a rootfstype=ext4 ro rootwait console=ttymxc1,115200 rauc.slot=A" \
	"BOOT_ORDER=A B" "BOOT_A_LEFT=2" "BOOT_B_LEFT=3"
boot 'BOOT_ORDER="B A"' BOOT_A_LEFT=3 BOOT_B_LEFT=3
check "after an install into B: slot B from partition 3, root rootfs-b" \
	"load 1:3 /boot/Image" "bootargs root=PARTLABEL=rootfs-b rootfstype=ext4 ro rootwait console=ttymxc1,115200 rauc.slot=B" \
	"BOOT_B_LEFT=2" "BOOT_A_LEFT=3"
boot 'BOOT_ORDER="B A"' BOOT_A_LEFT=3 BOOT_B_LEFT=0
check "B out of attempts (never marked good): back to A" "load 1:2 /boot/Image" "BOOT_A_LEFT=2" "BOOT_B_LEFT=0"
boot 'BOOT_ORDER="A B"' BOOT_A_LEFT=0 BOOT_B_LEFT=0
check "no attempts left anywhere: both refilled, reset" reset "BOOT_A_LEFT=3" "BOOT_B_LEFT=3"
[ "$fails" -eq 0 ]
