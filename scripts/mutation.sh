#!/usr/bin/env bash
# Mutation testing of the pure-Go packages with gremlins (docs/TESTING.md).
#   scripts/mutation.sh OUT_DIR COEFFICIENT PACKAGE...
# Each package is mutated on its own, one mutant at a time, and only its own tests are run
# against each mutant. The run works on a copy of the tracked files (and untracked ones that
# are not ignored) without pipelines/gst, the cgo package: the planner's tests never build it,
# and gremlins would otherwise walk into it from ./pipelines. Writes OUT_DIR/PKG.log (every
# mutant), OUT_DIR/PKG.json (gremlins' report) and OUT_DIR/table.md (the docs/TESTING.md table).
set -euo pipefail

GREMLINS_VERSION=v0.5.0
out=${1:?OUT_DIR}
coefficient=${2:?COEFFICIENT}
shift 2
[ $# -gt 0 ] || { echo "mutation: no package given" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# gremlins is built once into OUT_DIR/../bin, pinned by version.
bin=$(dirname "$out")/bin
if ! [ -x "$bin/gremlins-$GREMLINS_VERSION" ]; then
	mkdir -p "$bin"
	GOBIN="$bin" go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"
	mv "$bin/gremlins" "$bin/gremlins-$GREMLINS_VERSION"
fi

src=$(mktemp -d "${TMPDIR:-/tmp}/capbox-mutation.XXXXXX")
trap 'rm -rf "$src"' EXIT
(cd "$repo" && git ls-files -z --cached --others --exclude-standard --deduplicate |
	grep -zv '^pipelines/gst/' | tar --null --ignore-failed-read -T - -cf -) > "$src.tar"
trap 'rm -rf "$src" "$src.tar"' EXIT

commit=$(cd "$repo" && git rev-parse --short=12 HEAD)
dirty=$(cd "$repo" && git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
{
	echo "Gremlins $GREMLINS_VERSION, $(date -u +%Y-%m-%d), commit $commit$dirty, one worker, timeout coefficient $coefficient."
	echo
	echo "| package | killed | lived | not covered (in \`case\` conditions) | timed out | not viable | efficacy | mutant coverage | minutes |"
	echo "|---|---|---|---|---|---|---|---|---|"
} > "$out/table.md"

# -count=1: a cached test result would make gremlins' baseline, and so every mutant's
# timeout, a fraction of a real run.
export GOFLAGS=-count=1
for pkg in "$@"; do
	name=${pkg//\//_}
	echo "mutation: $pkg (log: $out/$name.log)"
	start=$(date +%s)
	# A fresh copy for each package, without its subpackages' tests: gremlins
	# measures the run of every test under the package to set each mutant's
	# timeout, and only the package's own tests are run against its mutants.
	rm -rf "$src" && mkdir -p "$src" && tar -C "$src" -xf "$src.tar"
	find "$src/$pkg" -mindepth 2 -name '*_test.go' -delete
	# --coverpkg: only this package's own statements count as covered, so that mutants in its
	# subpackages (mutated in their own run) are left alone here.
	(cd "$src" && "$bin/gremlins-$GREMLINS_VERSION" unleash --workers 1 \
		--timeout-coefficient "$coefficient" --coverpkg "capbox/$pkg" \
		--output "$out/$name.json" "./$pkg") > "$out/$name.log" 2>&1 || {
		echo "mutation: gremlins failed on $pkg:" >&2
		tail -20 "$out/$name.log" >&2
		exit 1
	}
	minutes=$(( ($(date +%s) - start + 30) / 60 ))
	# Go's coverage profile has no block for a switch case's condition, so gremlins never runs
	# the mutants there: count them apart.
	in_case=$(grep -E '^ *NOT COVERED ' "$out/$name.log" | grep -oE ' at [^ /]+\.go:[0-9]+' | sed 's/^ at //' |
		while IFS=: read -r file line; do sed -n "${line}p" "$src/$pkg/$file"; done | grep -cE '^[[:space:]]*case ' || true)
	# Mutant lines read "   STATUS TYPE at FILE:LINE:COL", FILE relative to the package; a
	# FILE with a slash is in a subpackage.
	awk -v pkg="$pkg" -v minutes="$minutes" -v in_case="$in_case" '
		/ at [^ \/]+\.go:[0-9]+:[0-9]+$/ {
			sub(/^ +/, "")
			if ($1 == "KILLED") k++
			else if ($1 == "LIVED") l++
			else if ($1 == "NOT" && $2 == "COVERED") nc++
			else if ($1 == "TIMED" && $2 == "OUT") to++
			else if ($1 == "NOT" && $2 == "VIABLE") nv++
		}
		END {
			eff = (k + l) ? sprintf("%.1f %%", 100 * k / (k + l)) : "-"
			cov = (k + l + nc) ? sprintf("%.1f %%", 100 * (k + l) / (k + l + nc)) : "-"
			printf "| `%s` | %d | %d | %d (%d) | %d | %d | %s | %s | %d |\n", pkg, k, l, nc, in_case, to, nv, eff, cov, minutes
		}' "$out/$name.log" | tee -a "$out/table.md"
	grep -E '^ *(LIVED|TIMED OUT) ' "$out/$name.log" | grep -E ' at [^ /]+\.go:' | sed "s|^ *|    |; s| at | at $pkg/|" || true
done
echo "mutation: $(( ($(date +%s) - started + 30) / 60 )) min; table in $out/table.md"
