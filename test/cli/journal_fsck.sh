#!/bin/bash
# fsck and the journal: a log left by a crash is replayed in memory and
# checked with -n (image untouched), replayed for real with -y/-p, and a
# damaged log is reported without crashing.
#   usage: journal_fsck.sh MKFS FSCK CRASHGEN
set -u
MKFS=$1
FSCK=$2
GEN=$3
. "$(dirname "$0")/check.sh"
img=$tmp/j.img

# journal superblock: relative block 0 of the log, which starts at block 2
jstart() { od -An -t u4 -j $((2 * ${2:-4096} + 56)) -N 4 "$1" | tr -d ' '; }

for bs in 1024 4096; do
	"$MKFS" -q -f -b $bs -s 64M "$img"
	expect 0 "crashgen ($bs)" "$GEN" "$img" 300 7
	[ "$(jstart "$img" $bs)" -ne 0 ] && ok || bad "the log is empty after a crash ($bs)"
	sum=$(md5sum <"$img")
	expect 4 "fsck -n of a crashed image ($bs)" "$FSCK" -n "$img"
	expect_out "JOURNAL_NEEDS_RECOVERY.*8 transaction" "-n reports the replay ($bs)"
	expect_out "302 inodes" "-n checks the replayed view ($bs)"
	expect_no "TREE_CORRUPT|LEAKED|CLAIMED|NLINK|UNREACHABLE|WRONG" "replayed view is consistent ($bs)"
	[ "$(md5sum <"$img")" = "$sum" ] && ok || bad "fsck -n wrote to the image ($bs)"
	expect 1 "fsck -y replays ($bs)" "$FSCK" -y "$img"
	expect_out "all problems fixed, 302 inodes" "-y replays and checks ($bs)"
	[ "$(jstart "$img" $bs)" -eq 0 ] && ok || bad "the log is not empty after fsck -y ($bs)"
	expect 0 "fsck -n after replay ($bs)" "$FSCK" -n "$img"
	expect 0 "second fsck -y is clean ($bs)" "$FSCK" -y "$img"
done

# -p replays too (a safe repair), then the image is clean.
"$MKFS" -q -f -s 64M "$img"
"$GEN" "$img" 50 2
expect 1 "fsck -p replays" "$FSCK" -p "$img"
expect 0 "clean after fsck -p" "$FSCK" -n "$img"

# Opening again (as the daemon will at mount) replays, then adds more.
"$MKFS" -q -f -s 64M "$img"
"$GEN" "$img" 40 2
expect 0 "reopen replays and goes on" "$GEN" "$img" 40 2
expect 4 "fsck -n after the second crash" "$FSCK" -n "$img"
expect_out "JOURNAL_NEEDS_RECOVERY" "second crash leaves a log"
expect_no "TREE_CORRUPT|LEAKED|CLAIMED" "second crash is consistent"

# A damaged commit block: replay stops before it and says where.
"$MKFS" -q -f -s 64M "$img"
"$GEN" "$img" 100 4
start=$(jstart "$img")
# the last commit block is the last log block written; find the log's end
expect 4 "fsck -n before damage" "$FSCK" -n -v "$img"
end=$(sed -n 's/.*log ends at transaction [0-9]* (block \([0-9]*\)).*/\1/p' "$tmp/out")
[ -n "$end" ] && ok || bad "fsck -v does not say where the log ends"
last=$((2 + end - 1))
printf '\377\377\377\377' | dd of="$img" bs=1 seek=$((last * 4096 + 200)) conv=notrunc status=none
expect 4 "fsck -n with a torn last transaction" "$FSCK" -n -v "$img"
expect_out "JOURNAL_NEEDS_RECOVERY.*4 transaction" "replay stops before the torn one"
expect_out "log ends at transaction" "the stop is explained"
expect_no "TREE_CORRUPT|LEAKED|CLAIMED|NLINK" "a torn tail leaves a consistent image"

# An update aborted half-way (corruption met after it changed metadata):
# what committed before it replays, its own change never appears, and the
# error the journal recorded reaches the superblock, so fsck says so.
"$MKFS" -q -f -s 64M "$img"
expect 0 "crashgen with an aborted update" "$GEN" "$img" 30 2 abort
expect 4 "fsck -n after an aborted update" "$FSCK" -n "$img"
expect_out "SB_ERRORS_RECORDED.*117" "the journal's error is recorded (EUCLEAN)"
expect_out "32 inodes" "committed work replayed, the aborted file absent"
expect_no "TREE_CORRUPT|LEAKED|CLAIMED|NLINK|UNREACHABLE" "an aborted update leaves a consistent image"

# A damaged journal superblock is reported, never a crash.
"$MKFS" -q -f -s 64M "$img"
"$GEN" "$img" 10 1
printf '\377\377' | dd of="$img" bs=1 seek=$((2 * 4096 + 50)) conv=notrunc status=none
expect 4 "fsck -n with a damaged journal superblock" "$FSCK" -n "$img"
expect_out "JOURNAL_SB_BAD" "damaged journal superblock is named"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
