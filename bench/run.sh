#!/bin/bash
# bench/run.sh - measure reflinkfs against its peers with the shared
# benchmark (../shared/bench, not forked): brings up a reflinkfs mount on a
# sparse image beside the peers under $PERF, runs the anchor workloads
# interleaved, prints the summary table.
#
#   bench/run.sh [PEERS] [REPS]        default: "fuse2fs" 3
#   MODE=reflink bench/run.sh xfs 3      the clone workload instead: clone of
#                                        a 2 GiB file, 1000 overwrites + fsync
#                                        into the clone vs an unshared file
#   WORKLOADS="meta untar" bench/run.sh fuse2fs 1    a subset
#   SEQ_MIB=512 bench/run.sh ...        smaller sequential files
#
# Needs root, /dev/fuse, loop devices for kernel peers, fio, fuse2fs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$top/../shared/bench}
peers=${1:-fuse2fs}
reps=${2:-3}
export PERF=${PERF:-/tmp/perf}
export RESULTS=${RESULTS:-$PERF/results/anchors.tsv}
img=$PERF/img/reflinkfs.img
mnt=$PERF/mnt/reflinkfs

"$top/scripts/build.sh" normal >/dev/null
mkdir -p "$PERF/img" "$mnt" "$(dirname "$RESULTS")"
rm -f "$img"
"$top/build/mkfs/mkfs.reflinkfs" -q -s "${IMG_SIZE:-16G}" "$img"
"$top/build/fs/reflinkfs" "$img" "$mnt"
pid=$(pgrep -f -n "reflinkfs $img $mnt")
cleanup() {
	umount "$mnt" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	# shellcheck source=/dev/null
	(. "$shared/systems.sh"; for s in $peers; do sys_down "$s"; done)
}
trap cleanup EXIT

# shellcheck source=/dev/null
. "$shared/systems.sh"
for s in $peers; do sys_up "$s"; done
"$shared/anchors.sh" "${MODE:-run}" "$peers ext:reflinkfs:$mnt" "$reps"
# daemon memory after the run (the untar workload leaves the most behind)
awk '/^VmRSS|^VmHWM/' "/proc/$pid/status"
"$shared/summarize.py" "$RESULTS"
