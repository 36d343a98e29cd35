#!/usr/bin/env bash
# Installs what capbox needs on a Debian 12 machine, only what is missing.
# Idempotent: a second run checks and returns in seconds.
#   scripts/deps.sh            Debian packages
#   scripts/deps.sh sysroots   also the arm64 and armhf target sysroots (see scripts/sysroot.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

wanted=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/debian-packages.txt" "$here"/debian-packages.d/*.txt 2>/dev/null | sort -u)
missing=()
for p in $wanted; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo_cmd[@]}" apt-get update -q
	"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = sysroots ]; then
	"$here/sysroot.sh" arm64
	"$here/sysroot.sh" armhf
fi
