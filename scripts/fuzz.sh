#!/bin/sh
# Fuzzes fsck.reflinkfs with libFuzzer (test/fuzz/fsck_fuzz.c) on one core.
#   usage: scripts/fuzz.sh [SECONDS [LIBFUZZER-OPTION...]]   (default 600)
# e.g. scripts/fuzz.sh 3600 -fork=1 -ignore_crashes=1 keeps going past
# crashes (each is still saved).
# Needs clang (Debian: apt-get install clang; not part of the default
# build). Builds build-fuzz/ (clang, ASan + UBSan, lib/ instrumented), grows
# the corpus in build-fuzz/fuzz-corpus from the saved inputs in
# test/fuzz/corpus, and leaves any crasher in build-fuzz/fuzz-crashes/.
# Keep a crasher as a regression test: fix it, then copy it into
# test/fuzz/corpus/ (ctest fuzz.fsck_replay replays that directory).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
dir=$top/build-fuzz
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed" >&2; exit 1; }
CC=clang cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRFS_SANITIZE=ON \
	-DRFS_FUZZ=ON >/dev/null
cmake --build "$dir" -j2 --target fsck_fuzz
mkdir -p "$dir/fuzz-corpus" "$dir/fuzz-crashes"
# -max_len: 50 patches are plenty; the limits catch unbounded allocation.
exec "$dir/test/fuzz/fsck_fuzz" "$dir/fuzz-corpus" "$top/test/fuzz/corpus" \
	-max_total_time="$secs" -max_len=512 -timeout=10 -rss_limit_mb=2048 \
	-malloc_limit_mb=1024 -artifact_prefix="$dir/fuzz-crashes/" -print_final_stats=1 "$@"
