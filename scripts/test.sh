#!/bin/sh
# The test command (README, CI): installs what is missing, builds the
# normal and the ASan+UBSan variants, and runs the whole suite on both
# through ctest. Exits non-zero if anything fails.
#
#   RFS_TEST_SCALE=10 scripts/test.sh    longer randomised runs
#   RFS_TEST_SEED=1234 scripts/test.sh   replay a seed printed by a failure
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"

status=0
for variant in normal asan; do
	echo "=== $variant build ==="
	"$top/scripts/build.sh" "$variant"
	dir=$top/build
	[ "$variant" = asan ] && dir=$top/build-asan
	echo "=== $variant tests ==="
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" || status=1
done
[ $status -eq 0 ] && echo "all tests passed on both builds" || echo "TESTS FAILED"
exit $status
