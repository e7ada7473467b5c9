#!/bin/sh
# Configures and builds one variant.  usage: scripts/build.sh [normal|asan]
# normal -> build/       (RelWithDebInfo)
# asan   -> build-asan/  (Debug, AddressSanitizer + UndefinedBehaviorSanitizer)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-normal}
case $variant in
normal) dir=$top/build; flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRFS_SANITIZE=OFF" ;;
asan) dir=$top/build-asan; flags="-DCMAKE_BUILD_TYPE=Debug -DRFS_SANITIZE=ON" ;;
*) echo "usage: $0 [normal|asan]" >&2; exit 16 ;;
esac
# shellcheck disable=SC2086
cmake -S "$top" -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
