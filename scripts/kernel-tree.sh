#!/usr/bin/env bash
# Prints the path of an unpacked linux-source-6.12 tree, installing Debian's
# package and unpacking its tarball once when they are missing. The cache is
# the one ../shared/kcompile uses, so both share one pristine tree.
set -euo pipefail
cache=${MMAPCONV_EVAL_CACHE:-$HOME/.cache/mmapconv-eval}
tree=${MMAPCONV_KERNEL_TREE:-$cache/linux-source-6.12}
tarball=/usr/src/linux-source-6.12.tar.xz
if [ ! -f "$tree/Makefile" ]; then
	if [ ! -f "$tarball" ]; then
		{ apt-get update && apt-get install -y linux-source-6.12; } >&2
	fi
	mkdir -p "$(dirname "$tree")"
	tmp=$(mktemp -d "$(dirname "$tree")/unpack.XXXXXX")
	tar xJf "$tarball" -C "$tmp"
	mv "$tmp/linux-source-6.12" "$tree"
	rmdir "$tmp"
fi
echo "$tree"
