#!/usr/bin/env bash
# Validates the external tree against a real Buildroot tree (never part of the
# repository): for every configs/*_defconfig, `make X_defconfig` and check that
# each line of the defconfig survived into .config (kconfig silently drops
# unknown symbols and ones whose dependencies are unmet), then run Buildroot's
# utils/check-package on the tree. No downloads, a few seconds per config.
#
#   buildroot/tests/check-buildroot.sh BUILDROOT_DIR [DEFCONFIG...]
set -euo pipefail

br=${1:?usage: check-buildroot.sh BUILDROOT_DIR [DEFCONFIG...]}
shift
br=$(cd "$br" && pwd)
ext=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
	for f in "$ext"/configs/*_defconfig; do configs+=("$(basename "$f")"); done
fi

fail=0
for cfg in "${configs[@]}"; do
	out=$work/${cfg%_defconfig}
	if ! make -s -C "$br" O="$out" BR2_EXTERNAL="$ext" "$cfg" >"$work/log" 2>&1; then
		echo "FAIL $cfg: make $cfg"
		cat "$work/log"
		fail=1
		continue
	fi
	missing=0
	while IFS= read -r line; do
		case $line in '' | '#'[[:space:]]BR2_*' is not set') ;; '#'*) continue ;; esac
		[ -n "$line" ] || continue
		if ! grep -qxF -- "$line" "$out/.config"; then
			sym=${line%%=*}
			sym=${sym#\# }
			sym=${sym% is not set}
			now=$(grep -E "^(# )?${sym}[= ]" "$out/.config" || echo "(absent)")
			echo "FAIL $cfg: '$line' became: $now"
			missing=$((missing + 1))
		fi
	done <"$ext/configs/$cfg"
	if [ "$missing" -eq 0 ]; then
		echo "ok   $cfg: every line kept ($(grep -c . "$ext/configs/$cfg") lines)"
	else
		fail=1
	fi
done

# check-package needs python3 with flake8 and magic: Debian's, whatever
# python3 comes first on PATH.
py=${PYTHON:-/usr/bin/python3}
mapfile -t files < <(cd "$ext" && find Config.in external.mk external.desc package configs board -type f \
	\( -name Config.in -o -name '*.mk' -o -name '*.hash' -o -name '*_defconfig' -o -name '*.sh' -o -name external.desc \) | sort)
if (cd "$ext" && "$py" "$br/utils/check-package" -b "${files[@]}") >"$work/cp" 2>&1; then
	echo "ok   check-package on ${#files[@]} files: $(grep -E 'lines processed|warnings generated' "$work/cp" | tr '\n' ' ')"
else
	echo "FAIL check-package:"
	cat "$work/cp"
	fail=1
fi
exit "$fail"
