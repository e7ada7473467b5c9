#!/bin/bash
# Concurrency stress on real mounts (rfs_stress: several processes doing
# mixed metadata and data operations on one tree), with the kernel's
# write-back cache and without; then unmount (the daemon must exit
# cleanly), fsck -fn must be clean, and after a remount every file, link
# and xattr of the tree reads without error and each worker's private
# files hold what its model says; fsck -fn again after that unmount.
#
#   stress.sh REFLINKFS MKFS FSCK RFS_STRESS
#
# RFS_STRESS_SECONDS (per mode, default 20, times RFS_TEST_SCALE),
# RFS_STRESS_PROCS (default 6) and RFS_TEST_SEED (default 1) tune it. When
# a worker fails, the private op logs are copied to the current directory
# (stress-SEED-MODE/). Needs root and /dev/fuse (exits 77 without).
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK RFS_STRESS" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
STRESS=$4
. "$(dirname "$0")/lib.sh"

: "${RFS_STRESS_SECONDS:=20}"
: "${RFS_STRESS_PROCS:=6}"
: "${RFS_TEST_SCALE:=1}"
: "${RFS_TEST_SEED:=1}"
seconds=$((RFS_STRESS_SECONDS * RFS_TEST_SCALE))

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup
outdir=$PWD

# each worker's private files against the model it saved
check_models() {
	local m rc=0
	for m in "$1"/p*.[ab]; do
		cmp "$m" "$RFS_MNT/s/$(basename "$m")" || rc=1
	done
	return $rc
}

seed=$RFS_TEST_SEED
for mode in writeback no_writeback_cache; do
	name="seed $seed ($mode)"
	img=$RFS_TMP/stress.img
	model=$RFS_TMP/model
	rm -rf "$model"
	mkdir "$model"
	rfs_mkfs "$img" 4G
	opts=
	[ $mode = no_writeback_cache ] && opts="-o no_writeback_cache"
	# shellcheck disable=SC2086
	if ! rfs_mount "$img" $opts; then
		bad "$name: mount"
		continue
	fi
	mkdir "$RFS_MNT/s"
	bg "$STRESS" -p "$RFS_STRESS_PROCS" -t "$seconds" -S "$seed" -m "$model" "$RFS_MNT/s"
	if ! check "$name: $RFS_STRESS_PROCS workers for $seconds s" bg_wait $BG_PID; then
		cp -r "$model" "$outdir/stress-$seed-$mode"
		echo "the workers' private op logs: $outdir/stress-$seed-$mode/p*.ops" >&2
	fi
	check "$name: unmount, daemon exits cleanly" rfs_umount
	check "$name: fsck -fn is clean" rfs_fsck "$img" -fn
	# shellcheck disable=SC2086
	if rfs_mount "$img" $opts; then
		check "$name: after remount, the whole tree reads" "$STRESS" -w "$RFS_MNT/s"
		check "$name: after remount, the private files match their models" \
			check_models "$model"
		check "$name: unmount after the walk" rfs_umount
		check "$name: fsck -fn after the walk" rfs_fsck "$img" -fn
	else
		bad "$name: remount"
	fi
	rm -f "$img"
done
rfs_summary
