#!/bin/bash
# bench/fsck.sh - fsck.reflinkfs -fn against e2fsck -fn on images holding
# the same ~107k files (the shared workload 7: /usr/include untarred
# COPIES times, ../shared/bench/fsck_anchor.sh), cold cache, interleaved.
#
#   bench/fsck.sh [REPS]          default 3; prints wall time and peak RSS
#   COPIES=2 bench/fsck.sh 1      a smaller tree
#
# The ext4 image is made by the shared script (kernel ext4 on a loop
# device); the reflinkfs image is filled through a reflinkfs mount.
# Needs root, /dev/fuse and loop devices.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$top/../shared/bench}
reps=${1:-3}
export PERF=${PERF:-/tmp/perf}
export RESULTS=${RESULTS:-$PERF/results/fsck.tsv}
export COPIES=${COPIES:-12}
img=$PERF/img/fsck-reflinkfs.img
mnt=$PERF/mnt/fsck-reflinkfs
fsck=$top/build/fsck/fsck.reflinkfs

"$top/scripts/build.sh" normal >/dev/null
# shellcheck source=/dev/null
. "$shared/fsck_anchor.sh"
mkdir -p "$PERF/img" "$mnt" "$(dirname "$RESULTS")"
make_tarball
[ -f "$PERF/img/fsck-ext4.img" ] || populate_one ext4

populate_reflinkfs() {
	local i pid
	rm -f "$img"
	"$top/build/mkfs/mkfs.reflinkfs" -q -s "${FSCK_SIZE:-8G}" "$img"
	"$top/build/fs/reflinkfs" "$img" "$mnt"
	pid=$(pgrep -n -f "reflinkfs $img $mnt")
	for ((i = 1; i <= COPIES; i++)); do
		mkdir "$mnt/c$i" && tar -xf "$TARBALL" -C "$mnt/c$i"
	done
	echo -e "0\tfsck-reflinkfs\tpopulate\tinodes\t$(find "$mnt" | wc -l)\tcount" | tee -a "$RESULTS"
	umount "$mnt"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
[ -f "$img" ] || populate_reflinkfs

for ((rep = 1; rep <= reps; rep++)); do
	echo "# fsck rep $rep load: $(cut -d' ' -f1-3 /proc/loadavg)"
	if ((rep % 2)); then
		time_fsck "$rep" e2fsck e2fsck -fn "$PERF/img/fsck-ext4.img"
		time_fsck "$rep" reflinkfs "$fsck" -fn "$img"
	else
		time_fsck "$rep" reflinkfs "$fsck" -fn "$img"
		time_fsck "$rep" e2fsck e2fsck -fn "$PERF/img/fsck-ext4.img"
	fi
done
