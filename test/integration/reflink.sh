#!/bin/bash
# Reflink on real mounts: the reflink Check program (clones through
# copy_file_range and cp, CoW at every alignment, chains, truncate/punch,
# space, an fsx in small) with and without the kernel's write-back cache,
# fsck -n after each unmount; then kill -9 of the daemon while clones are
# made, overwritten and fsync'ed: after the remount every fsync'ed clone is
# intact, the CoW staging the crash left is freed, and fsck is clean.
#
#   reflink.sh REFLINKFS MKFS FSCK REFLINK
#
# Needs root and /dev/fuse (exits 77 without). Prints "N passed, N failed".
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK REFLINK" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
REFLINK=$4
. "$(dirname "$0")/lib.sh"

: "${RFS_CRASH_ROUNDS:=3}"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup

for mode in writeback no_writeback_cache; do
	echo "== reflink ($mode)"
	img=$RFS_TMP/reflink.img
	rfs_mkfs "$img" 2G
	opts=
	[ $mode = no_writeback_cache ] && opts="-o no_writeback_cache"
	# shellcheck disable=SC2086
	if rfs_mount "$img" $opts; then
		RFS_MNT=$RFS_MNT CK_DEFAULT_TIMEOUT=600 bg "$REFLINK" >"$RFS_TMP/reflink.out" 2>&1
		bg_wait $BG_PID
		rc=$?
		sed 's/^/   /' "$RFS_TMP/reflink.out"
		check "reflink ($mode)" [ $rc -eq 0 ]
		check "reflink ($mode): unmount, daemon exits cleanly" rfs_umount
		check "reflink ($mode): fsck -n is clean" rfs_fsck "$img"
	else
		bad "reflink ($mode): mount"
	fi
	rm -f "$img"
done

# fsck -n of an image a crash left: exit 4 with the journal to replay as
# the only problem (it checks the replayed view), or 0
fsck_crash_image() {
	local out rc
	out=$("$RFS_FSCK" -fn "$1" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then return 0; fi
	if [ $rc -eq 4 ] && ! echo "$out" | grep '\[' | grep -qv JOURNAL_NEEDS_RECOVERY; then
		return 0
	fi
	echo "$out" >&2
	return 1
}

echo "== kill -9 during clones and CoW overwrites"
img=$RFS_TMP/crash.img
rfs_mkfs "$img" 2G
logs=
for ((round = 1; round <= RFS_CRASH_ROUNDS; round++)); do
	rfs_mount "$img" || break
	mkdir "$RFS_MNT/r$round"
	bg "$REFLINK" crashwriter "$RFS_MNT/r$round" "$RFS_TMP/log.$round"
	w=$BG_PID
	sleep "$(awk -v r="$round" 'BEGIN { print 0.6 * r + 0.4 }')"
	check "crash round $round: daemon killed" rfs_kill9
	bg_wait $w
	logs="$logs $round"
	# fsck replays the journal itself (into memory with -n): a crash
	# image is consistent before the daemon touches it
	check "crash round $round: fsck -n of the crash image finds only the log to replay" \
		fsck_crash_image "$img"
	if rfs_mount "$img"; then
		grep -h "journal\|staging" "$RFS_LOG" | sed 's/^/   /'
		for r in $logs; do
			check "crash round $round: round $r's fsync'ed clones intact" \
				"$REFLINK" crashcheck "$RFS_MNT/r$r" "$RFS_TMP/log.$r"
		done
		check "crash round $round: unmount" rfs_umount
		check "crash round $round: fsck -n after replay" rfs_fsck "$img"
	else
		bad "crash round $round: remount after kill -9"
	fi
done
rm -f "$img"
rfs_summary
