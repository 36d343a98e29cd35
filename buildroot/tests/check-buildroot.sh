#!/usr/bin/env bash
# Buildroot's own checks against the pinned Buildroot (make image-check): for
# every configs/*_defconfig, `make capbox_X_defconfig` with this external
# tree, then
#   - every line of the defconfig survived into .config (kconfig silently
#     drops unknown symbols and ones whose dependencies are unmet), and
#     savedefconfig names the lines that are only defaults or selected;
#   - the hash check of every external package: Buildroot's check-hash must
#     find a hash for each file the package downloads (the real check when
#     the file is in the download directory);
#   - Buildroot's Go is not older than go.mod's go line;
# then utils/check-package on the tree (no warning allowed), and every
# Buildroot symbol of buildroot/gst-elements.txt exists. Offline once the
# archive is in the download directory.
#   check-buildroot.sh DL_DIR WORK_DIR [DEFCONFIG...]
set -euo pipefail
dl=${1:?usage: check-buildroot.sh DL_DIR WORK_DIR [DEFCONFIG...]}
cache=${2:?usage: check-buildroot.sh DL_DIR WORK_DIR [DEFCONFIG...]}
shift 2
ext=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$ext/.." && pwd)
br=$("$ext/scripts/buildroot-tree.sh" "$dl" "$cache")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BR2_DL_DIR=$dl

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
	for f in "$ext"/configs/*_defconfig; do configs+=("$(basename "$f")"); done
fi
gomod=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$repo/go.mod")
packages=()
for d in "$ext"/package/*/; do packages+=("$(basename "$d")"); done

# version_ge A B: A >= B, dotted numbers.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }

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
			now=$(grep -E "^(# )?${sym}[= ]" "$out/.config" || echo "(absent: unknown, or its dependencies are not met)")
			echo "FAIL $cfg: '$line' became: $now"
			missing=$((missing + 1))
		fi
	done <"$ext/configs/$cfg"
	make -s -C "$br" O="$out" savedefconfig BR2_DEFCONFIG="$out/saved_defconfig" >/dev/null 2>&1
	redundant=$(grep -vxF -f "$out/saved_defconfig" "$ext/configs/$cfg" | grep -c '^BR2_' || true)
	if [ "$missing" -eq 0 ]; then
		echo "ok   $cfg: every line kept ($(grep -c . "$ext/configs/$cfg") lines; $redundant restate a default or a select)"
	else
		fail=1
	fi

	# The external packages' downloads: check-hash exits 3 when the hash file
	# has no entry for the file's name, 2 when the digest differs.
	for pkg in "${packages[@]}"; do
		up=$(echo "$pkg" | tr 'a-z-' 'A-Z_')
		grep -qx "BR2_PACKAGE_$up=y" "$out/.config" || continue
		eval "$(make -s -C "$br" O="$out" printvars QUOTED_VARS=YES VARS="${up}_SOURCE ${up}_EXTRA_DOWNLOADS ${up}_HASH_FILES ${up}_SITE_METHOD ${up}_LICENSE ${up}_LICENSE_FILES ${up}_DL_SUBDIR" 2>/dev/null | sed "s/^${up}_/v_/")"
		if [ -z "${v_LICENSE:-}" ] || [ -z "${v_LICENSE_FILES:-}" ]; then
			echo "FAIL $cfg: $pkg has no _LICENSE or _LICENSE_FILES"
			fail=1
		fi
		if [ "${v_SITE_METHOD:-}" = local ]; then
			unset v_SOURCE v_EXTRA_DOWNLOADS v_HASH_FILES v_SITE_METHOD v_LICENSE v_LICENSE_FILES v_DL_SUBDIR
			continue
		fi
		for f in ${v_SOURCE:-} ${v_EXTRA_DOWNLOADS:-}; do
			f=${f##*/}
			real=$dl/${v_DL_SUBDIR:-$pkg}/$f
			probe=$real
			if [ ! -f "$real" ]; then
				probe=$work/$f
				: >"$probe"
			fi
			set +e
			# shellcheck disable=SC2086 # a list of hash files
			"$br/support/download/check-hash" -q "$probe" "$f" ${v_HASH_FILES:-} 2>"$work/check-hash.err"
			rc=$?
			set -e
			[ "$probe" = "$real" ] && cat "$work/check-hash.err"
			case $rc:$probe in
			0:"$real") echo "ok   $cfg: $pkg: $f matches its hash" ;;
			2:"$work/$f") echo "ok   $cfg: $pkg: $f has a hash (not downloaded: digest not compared)" ;;
			3:*) echo "FAIL $cfg: $pkg: no hash for $f (the file the package downloads) in ${v_HASH_FILES:-}"; fail=1 ;;
			*) echo "FAIL $cfg: $pkg: check-hash $f exited $rc"; fail=1 ;;
			esac
		done
		unset v_SOURCE v_EXTRA_DOWNLOADS v_HASH_FILES v_SITE_METHOD v_LICENSE v_LICENSE_FILES v_DL_SUBDIR
	done

	if grep -qx 'BR2_PACKAGE_CAPBOX=y' "$out/.config"; then
		gov=$(make -s -C "$br" O="$out" printvars VARS=GO_VERSION 2>/dev/null | sed -n 's/^GO_VERSION=//p')
		if [ -n "$gov" ] && version_ge "$gov" "$gomod"; then
			echo "ok   $cfg: Buildroot's Go $gov >= go.mod's $gomod"
		else
			echo "FAIL $cfg: Buildroot's Go '${gov:-?}' is older than go.mod's go $gomod"
			fail=1
		fi
	fi
done

# check-package needs python3 with flake8 and magic: Debian's, whatever
# python3 comes first on PATH.
py=${PYTHON:-/usr/bin/python3}
mapfile -t files < <(cd "$ext" && find Config.in external.mk external.desc package configs board -type f \
	\( -name Config.in -o -name '*.mk' -o -name '*.hash' -o -name '*_defconfig' -o -name '*.sh' -o -name external.desc \) | sort)
if (cd "$ext" && "$py" "$br/utils/check-package" -b "${files[@]}") >"$work/cp" 2>&1 && ! grep -q ': ' "$work/cp"; then
	echo "ok   check-package on ${#files[@]} files: $(grep -E 'lines processed|warnings generated' "$work/cp" | tr '\n' ' ')"
else
	echo "FAIL check-package:"
	cat "$work/cp"
	fail=1
fi

# The element table's symbols are Buildroot's.
unknown=
# shellcheck disable=SC2013 # symbols are words
for sym in $(grep -v '^#' "$ext/gst-elements.txt" | awk 'NF >= 3 { for (i = 3; i <= NF; i++) if ($i != "-") print $i }' | sort -u); do
	grep -rqx "config $sym\|menuconfig $sym" "$br" "$ext" --include='Config.in*' || unknown="$unknown $sym"
done
if [ -z "$unknown" ]; then
	echo "ok   gst-elements.txt: every symbol is one of Buildroot's"
else
	echo "FAIL gst-elements.txt: unknown symbols:$unknown"
	fail=1
fi
exit "$fail"
