#!/bin/bash
# Differential test (rfs_difftest): the same random namespace and
# attribute calls, as root and as two other users, on a directory of a
# kernel filesystem (ext4, XFS or btrfs: the one holding the temporary
# directory) and on a mount, with the write-back cache and without; every
# result, the trees and which time stamps changed must agree. Then the
# image is unmounted, checked by fsck -fn and mounted again, and the trees
# must still agree (what the kernel showed was what the daemon stored).
#
#   difftest.sh REFLINKFS MKFS FSCK RFS_DIFFTEST
#
# RFS_DIFF_SEEDS (default "1 2"), RFS_DIFF_OPS (calls per seed and mode,
# default 3000, times RFS_TEST_SCALE); RFS_TEST_SEED=N runs seed N only.
# Needs root and /dev/fuse, and a reference filesystem (77 without).
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK RFS_DIFFTEST" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
DIFFTEST=$4
. "$(dirname "$0")/lib.sh"

: "${RFS_DIFF_SEEDS:=1 2}"
: "${RFS_DIFF_OPS:=3000}"
: "${RFS_TEST_SCALE:=1}"
[ -n "${RFS_TEST_SEED:-}" ] && RFS_DIFF_SEEDS=$RFS_TEST_SEED
ops=$((RFS_DIFF_OPS * RFS_TEST_SCALE))

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup
reffs=$(findmnt -no FSTYPE -T "$RFS_TMP")
case $reffs in
ext4 | xfs | btrfs) ;;
*)
	echo "skipped: $RFS_TMP is on $reffs, not a kernel filesystem to compare with"
	exit 77
	;;
esac
echo "reference: $reffs ($RFS_TMP)"

for seed in $RFS_DIFF_SEEDS; do
	for mode in writeback no_writeback_cache; do
		name="seed $seed ($mode)"
		img=$RFS_TMP/diff.img
		ref=$RFS_TMP/ref-$seed-$mode
		rfs_mkfs "$img" 1G
		opts="-o allow_other"
		[ $mode = no_writeback_cache ] && opts="$opts,no_writeback_cache"
		# shellcheck disable=SC2086
		if ! rfs_mount "$img" $opts; then
			bad "$name: mount"
			continue
		fi
		mkdir -p "$ref/d" "$RFS_MNT/d"
		chmod 755 "$ref"
		check "$name: $ops calls agree with $reffs" "$DIFFTEST" -S "$seed" -N "$ops" "$ref/d" "$RFS_MNT/d"
		check "$name: unmount, daemon exits cleanly" rfs_umount
		check "$name: fsck -fn is clean" rfs_fsck "$img" -fn
		# shellcheck disable=SC2086
		if rfs_mount "$img" $opts; then
			check "$name: the trees agree after a remount" "$DIFFTEST" -c "$ref/d" "$RFS_MNT/d"
			check "$name: unmount again" rfs_umount
		else
			bad "$name: remount"
		fi
		rm -rf "$img" "$ref"
	done
done
rfs_summary
