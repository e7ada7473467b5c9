#!/bin/bash
# The crash-consistency harness: power cuts at many points of a real
# workload, rebuilt from the daemon's write log.
#
#   crash.sh REFLINKFS MKFS FSCK WLOGCUT CRASHWORK [SEED [CUTS [ROUNDS]]]
#
# Each round (seed SEED, SEED+1, ...): mkfs a 64 MiB image and keep a copy
# (the base); mount it with -o writelog=LOG (the log starts before the
# journal replay, so base + log rebuild every state); run the workload
# (rfs_crashwork run: creates, writes, clones and CoW writes, fallocate,
# renames, unlinks, fsync, fdatasync; it records what each cut must show);
# unmount; base + the whole log must give the image byte for byte. Then
# CUTS cut points (rfs_wlogcut plan: the end, flushes, and random records
# with a random subset of 4 KiB pieces of the unflushed writes dropped),
# and for each cut image:
#
#   1. fsck -n of the raw image (replays the log in memory): clean, or only
#      JOURNAL_NEEDS_RECOVERY;
#   2. mount it (the daemon replays the log), rfs_crashwork check (every
#      fsync'ed file byte for byte, removed names gone, the whole tree
#      readable), unmount (the daemon must exit 0), fsck -n: exit 0 (no
#      leaked blocks, no damage);
#   3. on a second copy of the raw image: fsck -y (replays; exit 0 or 1
#      with only JOURNAL_NEEDS_RECOVERY), fsck -n: 0, mount, the same
#      check, unmount.
#
# Rounds cycle through the kernel's write-back cache on and off, each
# with the default commit interval and with commit=1. RFS_TEST_SEED, if
# set, replaces SEED (default 1); RFS_TEST_SCALE multiplies CUTS. Environment:
# RFS_CRASH_OPS (workload operations per round, default 200),
# RFS_CRASH_SAVE (where failing cases go, default /tmp/rfs-crash-cases).
# A failing cut is saved as SAVE/seed-S/cut-K-KEEP/ with the raw cut image,
# what went wrong, and replay.sh to run it again; base image, write log and
# the workload's windows are in SAVE/seed-S/. Needs root and /dev/fuse
# (exit 77 without). Prints "N passed, N failed" (one check per step).
set -u
if [ $# -lt 5 ] || [ $# -gt 8 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK WLOGCUT CRASHWORK [SEED [CUTS [ROUNDS]]]" >&2
	exit 2
fi
RFS_DAEMON=$(realpath "$1")
RFS_MKFS=$(realpath "$2")
RFS_FSCK=$(realpath "$3")
WLOGCUT=$(realpath "$4")
CRASHWORK=$(realpath "$5")
SEED=${RFS_TEST_SEED:-${6:-1}}
CUTS=$((${7:-50} * ${RFS_TEST_SCALE:-1}))
ROUNDS=${8:-1}
: "${RFS_CRASH_OPS:=200}"
: "${RFS_CRASH_SAVE:=/tmp/rfs-crash-cases}"
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup

# fsck output whose only problem is a journal to replay (fine for a raw cut)
only_replay() {
	! grep -o '\[[A-Z_]*\]' <<<"$1" | grep -qv '^\[JOURNAL_NEEDS_RECOVERY\]$'
}

# fsck_raw IMG: fsck -n of an image straight from a cut
fsck_raw() {
	local out rc
	out=$("$RFS_FSCK" -n "$1" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] || { [ $rc -eq 4 ] && only_replay "$out"; }; then
		return 0
	fi
	echo "fsck -n (raw cut) exited $rc:"
	echo "$out"
	return 1
}

fsck_repair() {
	local out rc
	out=$("$RFS_FSCK" -y "$1" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && only_replay "$out"; }; then
		return 0
	fi
	echo "fsck -y exited $rc:"
	echo "$out"
	return 1
}

fsck_clean() {
	local out rc
	out=$("$RFS_FSCK" -n "$1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && return 0
	echo "fsck -n exited $rc:"
	echo "$out"
	return 1
}

# mount_check IMG END: mount, check the windows at END, unmount
mount_check() {
	local st=0
	if ! rfs_mount "$1" 2>&1; then
		echo "mount failed"
		return 1
	fi
	"$CRASHWORK" check "$RFS_MNT" "$OUT" "$2" || st=1
	if ! rfs_umount 2>&1; then
		echo "unmount: the daemon did not exit cleanly"
		st=1
	fi
	return $st
}

# step NAME CMD...: one check of the current cut; its output goes to the
# cut's log, and a failure marks the cut
step() {
	local name=$1
	shift
	if "$@" >>"$CUTLOG" 2>&1; then
		ok "$CUTNAME: $name"
	else
		echo "step failed: $name" >>"$CUTLOG"
		bad "$CUTNAME: $name"
		CUT_FAILED=1
	fi
}

save_round() {
	[ -d "$SAVED" ] && return 0
	mkdir -p "$SAVED" || return 1
	cp --sparse=always "$BASE" "$SAVED/base.img"
	cp "$LOG" "$SAVED/wlog"
	cp -r "$OUT" "$SAVED/out"
}

save_cut() {
	local k=$1 keep=$2 end=$3 dir
	save_round || return
	dir=$SAVED/cut-$k-$keep
	mkdir -p "$dir"
	"$WLOGCUT" make "$SAVED/base.img" "$SAVED/wlog" "$dir/cut.img" "$k" "$keep"
	cp "$CUTLOG" "$dir/log.txt"
	cat >"$dir/replay.sh" <<EOF
#!/bin/bash
# Seed $ROUND_SEED, cut $k (keep seed $keep), log offset $end, opts '$MOUNT_OPTS'.
# Rebuild the raw cut image, check it as crash.sh did (mount on \$1).
set -x
cd "\$(dirname "\$0")"
$WLOGCUT make ../base.img ../wlog cut.img $k $keep
$RFS_FSCK -n cut.img
$RFS_DAEMON -f cut.img "\${1:?mountpoint}" & pid=\$!
while ! mountpoint -q "\$1"; do sleep 0.1; done
$CRASHWORK check "\$1" ../out $end
umount "\$1"; wait \$pid
$RFS_FSCK -n cut.img
EOF
	chmod +x "$dir/replay.sh"
	echo "saved failing case: $dir" >&2
}

one_cut() {
	local k=$1 keep=$2 end=$3
	CUTNAME="seed $ROUND_SEED cut $k/$NREC keep $keep"
	CUTLOG=$RFS_TMP/cut.log
	CUT_FAILED=0
	: >"$CUTLOG"
	step "rebuild" "$WLOGCUT" make "$BASE" "$LOG" "$RFS_TMP/cut.img" "$k" "$keep"
	cp --sparse=always "$RFS_TMP/cut.img" "$RFS_TMP/copy.img"
	step "fsck -n of the raw cut" fsck_raw "$RFS_TMP/cut.img"
	step "mount, check, unmount" mount_check "$RFS_TMP/cut.img" "$end"
	step "fsck -n after the mount" fsck_clean "$RFS_TMP/cut.img"
	step "fsck -y of the raw cut" fsck_repair "$RFS_TMP/copy.img"
	step "fsck -n after fsck -y" fsck_clean "$RFS_TMP/copy.img"
	step "mount after fsck -y, check" mount_check "$RFS_TMP/copy.img" "$end"
	if [ $CUT_FAILED -ne 0 ]; then
		sed 's/^/    /' "$CUTLOG" | head -40 >&2
		save_cut "$k" "$keep" "$end"
	fi
}

rebuilt_whole() {
	"$WLOGCUT" make "$BASE" "$LOG" "$RFS_TMP/whole.img" "$NREC" 0 &&
		cmp "$RFS_TMP/whole.img" "$RFS_TMP/live.img"
}

one_round() {
	ROUND_SEED=$1
	MOUNT_OPTS=$2
	BASE=$RFS_TMP/base.img
	LOG=$RFS_TMP/wlog
	OUT=$RFS_TMP/out
	SAVED=$RFS_CRASH_SAVE/seed-$ROUND_SEED
	rm -rf "$OUT" "$LOG"
	mkdir -p "$OUT"
	echo "== seed $ROUND_SEED: $RFS_CRASH_OPS ops, $CUTS cuts, -o $MOUNT_OPTS"
	rfs_mkfs "$BASE" 64M || { bad "mkfs"; return; }
	cp --sparse=always "$BASE" "$RFS_TMP/live.img"
	if ! rfs_mount "$RFS_TMP/live.img" -o "$MOUNT_OPTS,writelog=$LOG"; then
		bad "seed $ROUND_SEED: mount with a write log"
		return
	fi
	if ! check "seed $ROUND_SEED: workload" "$CRASHWORK" run "$RFS_MNT" "$LOG" "$OUT" \
		"$ROUND_SEED" "$RFS_CRASH_OPS"; then
		rfs_umount
		return # no windows to check cuts against
	fi
	check "seed $ROUND_SEED: unmount" rfs_umount
	check "seed $ROUND_SEED: fsck -n after the workload" rfs_fsck "$RFS_TMP/live.img"
	NREC=$("$WLOGCUT" info "$LOG" | awk '{print $2}')
	"$WLOGCUT" info "$LOG"
	# the whole log on the base is the image as the daemon left it
	check "seed $ROUND_SEED: base + whole log = the image" rebuilt_whole
	"$WLOGCUT" plan "$LOG" "$CUTS" "$ROUND_SEED" >"$RFS_TMP/plan" || {
		bad "seed $ROUND_SEED: plan"
		return
	}
	while read -r k keep end; do
		one_cut "$k" "$keep" "$end"
	done <"$RFS_TMP/plan"
}

T0=$(now_ms)
for ((r = 0; r < ROUNDS; r++)); do
	case $((r % 4)) in
	0) opts=rw ;;
	1) opts=no_writeback_cache ;;
	2) opts=commit=1 ;; # timer commits: cut points that no fsync made
	3) opts=no_writeback_cache,commit=1 ;;
	esac
	one_round $((SEED + r)) "$opts"
done
ms=$(($(now_ms) - T0))
printf 'crash: %d rounds, %d cuts each: %d.%03d s\n' "$ROUNDS" "$CUTS" $((ms / 1000)) $((ms % 1000))
[ "$RFS_FAIL" -eq 0 ] ||
	echo "failing cases are in $RFS_CRASH_SAVE (replay.sh in each); rerun: RFS_TEST_SEED=$SEED" >&2
rfs_summary
