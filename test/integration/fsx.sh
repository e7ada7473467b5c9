#!/bin/bash
# The randomized exerciser (rfsx) on real mounts, with the kernel's
# write-back cache and without: for each seed, a fresh image, rfsx on a
# few files, unmount, the daemon must exit cleanly, fsck -fn must be clean.
# The first seed's op log is also replayed, to the same bytes.
#
#   fsx.sh REFLINKFS MKFS FSCK RFSX
#
# RFS_FSX_SEEDS (default "1 2 3"), RFS_FSX_OPS (ops per seed and mode,
# default 5000, times RFS_TEST_SCALE) and RFS_FSX_ARGS (more rfsx options)
# tune it; RFS_TEST_SEED=N runs seed N only. A failing run's op log is
# copied to the current directory as rfsx-SEED-MODE.log (replay it with
# rfsx -r LOG DIR on a fresh mount). Needs root and /dev/fuse (77 without).
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK RFSX" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
RFSX=$4
. "$(dirname "$0")/lib.sh"

: "${RFS_FSX_SEEDS:=1 2 3}"
: "${RFS_FSX_OPS:=5000}"
: "${RFS_TEST_SCALE:=1}"
[ -n "${RFS_TEST_SEED:-}" ] && RFS_FSX_SEEDS=$RFS_TEST_SEED
ops=$((RFS_FSX_OPS * RFS_TEST_SCALE))

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup
outdir=$PWD

# The op log replays (once): the same ops on new files give the same bytes.
check_replay() {
	local f ok=1
	mkdir "$RFS_MNT/replay"
	if "$RFSX" -q -r "$2" -o "$RFS_TMP/replay.log" "$RFS_MNT/replay"; then
		for f in "$RFS_MNT"/rfsx.*; do
			cmp "$f" "$RFS_MNT/replay/${f##*/}" || ok=0
		done
	else
		ok=0
	fi
	check "$1: the op log replays to the same files" [ $ok = 1 ]
}

first=${RFS_FSX_SEEDS%% *}
for seed in $RFS_FSX_SEEDS; do
	for mode in writeback no_writeback_cache; do
		name="seed $seed ($mode)"
		img=$RFS_TMP/fsx.img
		log=$RFS_TMP/rfsx.log
		rfs_mkfs "$img" 1G
		opts=
		[ $mode = no_writeback_cache ] && opts="-o no_writeback_cache"
		t0=$(now_ms)
		# shellcheck disable=SC2086
		if ! rfs_mount "$img" $opts; then
			bad "$name: mount"
			continue
		fi
		# shellcheck disable=SC2086
		bg "$RFSX" -S "$seed" -N "$ops" -o "$log" ${RFS_FSX_ARGS:-} "$RFS_MNT"
		if bg_wait $BG_PID; then
			ok "$name: rfsx"
			[ "$seed $mode" = "$first writeback" ] && check_replay "$name" "$log"
		else
			bad "$name: rfsx (replay: rfsx -r rfsx-$seed-$mode.log DIR)"
			cp "$log" "$outdir/rfsx-$seed-$mode.log"
		fi
		check "$name: unmount, daemon exits cleanly" rfs_umount
		check "$name: fsck -fn is clean" rfs_fsck "$img" -fn
		ms=$(($(now_ms) - t0))
		printf '   %s: %d ops, %d.%03d s\n' "$name" "$ops" $((ms / 1000)) $((ms % 1000))
		rm -f "$img"
	done
done
rfs_summary
