#!/bin/sh
# Crash-consistency runs for local use, longer than CI's integration.crash:
# power cuts rebuilt from the daemon's write log, every cut image fsck'ed,
# mounted and checked (test/integration/crash.sh says how).
#
#   scripts/crash.sh [SEED [CUTS [ROUNDS]]]    default: 1 200 2
#   RFS_BUILD=build-asan scripts/crash.sh      with the sanitizer build
#   RFS_CRASH_OPS=1000 scripts/crash.sh        longer workloads (default 200)
#
# Round i uses seed SEED+i; rounds cycle through write-back cache on, off,
# on with commit=1, off with commit=1.
# Prints "N passed, N failed"; failing cut points are saved, each with a
# replay.sh, under RFS_CRASH_SAVE (default /tmp/rfs-crash-cases). Needs
# root and /dev/fuse, and a build (scripts/build.sh).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
b=$top/${RFS_BUILD:-build}
for f in fs/reflinkfs mkfs/mkfs.reflinkfs fsck/fsck.reflinkfs test/tools/rfs_wlogcut \
	test/tools/rfs_crashwork; do
	if [ ! -x "$b/$f" ]; then
		echo "crash.sh: $b/$f is missing: run scripts/build.sh first" >&2
		exit 1
	fi
done
exec "$top/test/integration/crash.sh" "$b/fs/reflinkfs" "$b/mkfs/mkfs.reflinkfs" \
	"$b/fsck/fsck.reflinkfs" "$b/test/tools/rfs_wlogcut" "$b/test/tools/rfs_crashwork" \
	"${1:-1}" "${2:-200}" "${3:-2}"
