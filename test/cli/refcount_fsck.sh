#!/bin/bash
# fsck and reflink: files sharing blocks (and a CoW staging extent) are
# clean; each single inconsistency of the refcount tree, the CoW fork or
# the reflink flags is reported with its code, repaired by -y (or -p where
# that is safe), and a second run is clean with the files unchanged.
#   usage: refcount_fsck.sh MKFS FSCK SHARE
set -u
MKFS=$1
FSCK=$2
SHARE=$3
. "$(dirname "$0")/check.sh"
img=$tmp/r.img

# shared IMAGE DAMAGE...: a fresh image with rfs_share's files, damaged
shared() {
	"$MKFS" -q -f -s 64M "$img" >/dev/null && "$SHARE" "$img" "$@" >"$tmp/p" ||
		bad "rfs_share $*"
}

# mkfs sets the reflink feature: ro_compat bit 0, superblock offset 152
ro_compat=$("$MKFS" -q -f -s 64M "$img" >/dev/null && od -An -t u8 -j 152 -N 8 "$img" | tr -d ' ')
[ "$ro_compat" = 1 ] && ok || bad "mkfs writes ro_compat $ro_compat, expected 1"

shared none
expect 0 "shared blocks and a staging extent are clean" "$FSCK" -fn "$img"
# The leaf as FORMAT.md §7.6 shows it, read the way the format says: the
# root from superblock slot 7 (offset 216 + 16 * 7), nrecs at 42, slot i
# (offset, length) at 56 + 4i, each record 32 bytes: le64 domain, le64
# start, le32 len, le32 refcount, le64 owner (read as le32 pairs here).
p=$(cat "$tmp/p")
leaf=$(od -An -t u8 -j $((216 + 16 * 7)) -N 8 "$img" | tr -d ' ')
nrecs=$(od -An -t u2 -j $((leaf * 4096 + 42)) -N 2 "$img" | tr -d ' ')
recs=
for i in $(seq 0 $((nrecs - 1))); do
	set -- $(od -An -t u2 -j $((leaf * 4096 + 56 + 4 * i)) -N 4 "$img")
	recs="$recs$(od -An -v -t u4 -j $((leaf * 4096 + $1)) -N "$2" "$img" | tr -s ' \n' ' ')|"
done
# (the staging blocks follow a's 8 and c's 4 blocks and the one extent
# tree leaf, made for c's CoW fork: the data forks are inline)
want=" 0 0 $p 0 2 2 0 0 | 0 0 $((p + 2)) 0 2 3 0 0 | 1 0 $((p + 13)) 0 2 1 5 0 |"
[ "$recs" = "$want" ] && ok || bad "refcount leaf is '$recs', expected '$want'"
expect_out "clean, 5 inodes" "fsck says clean"
expect 0 "fsck -fv says what it found" "$FSCK" -fnv "$img"
expect_out "refcount: 1 nodes, 3 records" "the refcount tree is walked"
expect_out "4 data extents, 2 runs mapped more than once, 1 staging runs" "counts recomputed"

# Each damage and the code it must produce (and nothing else but, where
# noted, the sweep's view of the same blocks).
while read -r damage codes; do
	shared "$damage"
	expect 4 "fsck of $damage" "$FSCK" -fn "$img"
	expect_out "\[${codes%%|*}\]" "$damage is reported as ${codes%%|*}"
	only_codes "$codes" "$damage"
done <<'EOF'
drop-shared REFC_MISSING
wrong-count REFC_COUNT_WRONG
unshared-record REFC_NOT_SHARED
unmerged REFC_UNMERGED
leftover-staging COW_RECORD_LEFTOVER
fork-no-staging COW_RECORD_MISSING
staging-owner COW_OWNER_WRONG
staging-in-data COW_IN_DATA_FORK|BLOCK_MULTIPLY_CLAIMED
no-flag REFLINK_FLAG_MISSING
overlap REFC_MISSING
refc-overlap REFC_OVERLAP|REFC_UNMERGED|REFC_COUNT_WRONG
no-feature REFC_WITHOUT_FEATURE
EOF
shared drop-shared
"$FSCK" -fn "$img" >"$tmp/out" 2>&1
expect_out "blocks $(cat "$tmp/p")\.\.[0-9]+ are mapped 2 times \(inodes 3, 4\)" "missing record names blocks and inodes"
shared overlap
"$FSCK" -fn "$img" >"$tmp/out" 2>&1
expect_out "mapped 2 times \(inodes 3, 6\)" "an unrecorded overlap names both files"

# The one-bit repairs: -y and -p set them, and the image is then clean.
for damage in no-flag no-feature; do
	for mode in -y -p; do
		shared "$damage"
		expect 1 "fsck $mode repairs $damage" "$FSCK" -f $mode "$img"
		expect_out "\(fixed\)" "$damage is fixed with $mode"
		expect 0 "clean after fsck $mode of $damage" "$FSCK" -fn "$img"
	done
done
# Every damage above is repaired by -y (the refcount tree is rebuilt from
# the forks) and a second run is clean; files a, b and c (inodes 3-5) read
# back as before, except a where a data fork kept the staging blocks.
"$MKFS" -q -f -s 64M "$img" >/dev/null && "$SHARE" "$img" none >/dev/null &&
	"$SHARE" "$img" sum >"$tmp/sum0" || bad "sum of the undamaged files"
while read -r damage same; do
	shared "$damage"
	expect 1 "fsck -y repairs $damage" "$FSCK" -fy "$img"
	expect_out "\(fixed\)" "$damage is fixed"
	expect 0 "clean after fsck -y of $damage" "$FSCK" -fn "$img"
	"$SHARE" "$img" sum >"$tmp/sum1" || bad "sum after repairing $damage"
	for ino in $same; do
		if [ "$(grep "^$ino " "$tmp/sum0")" = "$(grep "^$ino " "$tmp/sum1")" ]; then ok; else
			bad "$damage: inode $ino reads differently after the repair"
			cat "$tmp/sum0" "$tmp/sum1"
		fi
	done
done <<'EOF'
drop-shared 3 4 5
wrong-count 3 4 5
unshared-record 3 4 5
unmerged 3 4 5
leftover-staging 3 4 5
fork-no-staging 3 4 5
staging-owner 3 4 5
staging-in-data 4 5
overlap 3 4 5
refc-overlap 3 4 5
EOF
# Safe without asking: merging records, freeing staging nobody maps.
for damage in unmerged leftover-staging; do
	shared "$damage"
	expect 1 "fsck -p repairs $damage" "$FSCK" -fp "$img"
	expect 0 "clean after fsck -p of $damage" "$FSCK" -fn "$img"
done
# Not safe without asking: -p leaves the image as it was.
shared wrong-count
cp "$img" "$tmp/before"
expect 4 "fsck -p leaves a wrong count alone" "$FSCK" -fp "$img"
expect_out "run fsck without -p" "-p says to run without it"
cmp -s "$img" "$tmp/before" && ok || bad "fsck -p changed the image"

# Random clones and unclones through lib/refcount.c: the records it keeps
# must be exactly what fsck recomputes from the forks.
for seed in 1 2 3; do
	shared clones 200 $seed
	expect 0 "random clones (seed $seed) are clean" "$FSCK" -fn "$img"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
