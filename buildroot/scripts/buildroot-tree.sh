#!/usr/bin/env bash
# The pinned Buildroot, unpacked: prints the path of the tree.
#   buildroot-tree.sh DL_DIR WORK_DIR
# DL_DIR (CAPBOX_DL_DIR, default .cache/dl) holds buildroot-2026.02.3.tar.gz,
# the tag's source archive; without it, it is downloaded there (network).
# The archive is trusted only if `git get-tar-commit-id` reads the pinned
# commit from it. The tree is unpacked once into WORK_DIR/buildroot-<commit>.
set -euo pipefail
br_version=2026.02.3
br_commit=679b9ead7620bbf193620d1ebf56f53c1764d37a
br_url=https://github.com/buildroot/buildroot/archive/refs/tags/$br_version.tar.gz
dl=${1:?usage: buildroot-tree.sh DL_DIR WORK_DIR}
work=${2:?usage: buildroot-tree.sh DL_DIR WORK_DIR}
archive=$dl/buildroot-$br_version.tar.gz
say() { echo "buildroot: $*" >&2; }

if [ ! -f "$archive" ]; then
	if ! mkdir -p "$dl" 2>/dev/null || [ ! -w "$dl" ]; then
		say "no $archive, and $dl is not writable to download it into"
		say "put the archive there, or set CAPBOX_DL_DIR to a folder that holds it"
		exit 1
	fi
	say "downloading Buildroot $br_version into $dl"
	if ! wget -q -T 30 -t 2 -O "$archive.part" "$br_url"; then
		rm -f "$archive.part"
		say "cannot download $br_url (no network?)"
		say "put buildroot-$br_version.tar.gz (the tag's source archive, commit $br_commit) into $dl,"
		say "or set CAPBOX_DL_DIR to a folder that holds it"
		exit 1
	fi
	mv "$archive.part" "$archive"
fi
got=$(gzip -dc "$archive" | git get-tar-commit-id 2>/dev/null || true)
if [ "$got" != "$br_commit" ]; then
	say "$archive is not Buildroot $br_version: git get-tar-commit-id reads '${got:-nothing}', want $br_commit"
	exit 1
fi
tree=$work/buildroot-$br_commit
if [ ! -f "$tree/.capbox-unpacked" ]; then
	rm -rf "$tree" "$tree.tmp"
	mkdir -p "$tree.tmp"
	tar -xzf "$archive" -C "$tree.tmp" --strip-components=1
	touch "$tree.tmp/.capbox-unpacked"
	mv "$tree.tmp" "$tree"
fi
echo "$tree"
