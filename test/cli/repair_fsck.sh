#!/bin/bash
# fsck repairs of blocks, free space, trees and forks (fsck/repair_space.c):
# an image damaged in exactly one way (by rfs_share through lib/, or one
# flipped byte of a tree node) is reported with its code, repaired by -y
# (or -p where that is safe), and a second fsck -fn is clean; files a, b and
# c (inodes 3-5, each block with a pattern of its own) read back as before
# the damage. -n and a refused -p leave the image byte for byte as it was.
#   usage: repair_fsck.sh MKFS FSCK SHARE
set -u
MKFS=$1
FSCK=$2
SHARE=$3
. "$(dirname "$0")/check.sh"
img=$tmp/r.img

# flip IMAGE BLOCK OFFSET: invert one byte of a 4 KiB block
flip() {
	local off=$(($2 * 4096 + $3)) b
	b=$(od -An -t u1 -j "$off" -N 1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
read_root() { od -An -t u8 -j $((216 + 16 * $2)) -N 8 "$1" | tr -d ' '; }

# damaged DAMAGE: a fresh image with rfs_share's files, damaged. DAMAGE is
# an rfs_share damage, or flip:TREE (the root node of tree TREE, as
# numbered in the superblock's roots) or flip:freelist (block 1); with a
# tree: prefix, on an image without inline data forks (every fork in the
# extent tree).
damaged() {
	local d=$1 opts=
	case $d in tree:*) opts=--no-inline-fork d=${d#tree:} ;; esac
	"$MKFS" -q -f $opts -s 64M "$img" >/dev/null || bad "mkfs"
	case $d in
	flip:freelist) "$SHARE" "$img" none >/dev/null && flip "$img" 1 60 ;;
	flip:*) "$SHARE" "$img" none >/dev/null && flip "$img" "$(read_root "$img" "${d#flip:}")" 2000 ;;
	*) "$SHARE" "$img" "$d" >/dev/null ;;
	esac || bad "damage $1"
}
# same_files WHAT [INO...]: files INO (default a, b, c) read as before
same_files() {
	local what=$1 inos=${*:2}
	"$SHARE" "$img" sum >"$tmp/sum1" 2>&1 || bad "$what: files unreadable after the repair"
	for ino in ${inos:-3 4 5}; do
		if [ "$(grep "^$ino " "$tmp/sum0")" = "$(grep "^$ino " "$tmp/sum1")" ]; then ok; else
			bad "$what: inode $ino reads differently after the repair"
			cat "$tmp/sum0" "$tmp/sum1"
		fi
	done
}

damaged none
"$SHARE" "$img" sum >"$tmp/sum0" || bad "sum of the undamaged files"
[ "$(wc -l <"$tmp/sum0")" -eq 3 ] && ok || bad "sum lists $(wc -l <"$tmp/sum0") files"

# DAMAGE  CODES (the first must appear, none other)  MODE  [FILES KEPT]
while read -r damage codes mode kept; do
	damaged "$damage"
	cp "$img" "$tmp/before"
	expect 4 "fsck -n of $damage" "$FSCK" -fn "$img"
	expect_out "\[${codes%%|*}\]" "$damage is reported as ${codes%%|*}"
	only_codes "$codes" "$damage"
	cmp -s "$img" "$tmp/before" && ok || bad "fsck -n of $damage wrote the image"
	expect 1 "fsck $mode repairs $damage" "$FSCK" -f "$mode" "$img"
	expect_out "\(fixed\)" "$damage is fixed with $mode"
	expect 0 "clean after fsck $mode of $damage" "$FSCK" -fn "$img"
	same_files "$damage" $kept
done <<'EOF'
leak BLOCK_LEAKED -p
free-count FREE_COUNT_WRONG -p
unmerged-free FREE_EXTENT_UNMERGED -p
cnt-differs FREE_TREES_DIFFER -p
free-over-data BLOCK_MULTIPLY_CLAIMED -y
data-on-node BLOCK_MULTIPLY_CLAIMED -y
beyond-end EXTENT_BEYOND_END -y
cow-overlap BLOCK_MULTIPLY_CLAIMED -y
nblocks NBLOCKS_WRONG -y
tree:fork-overlap EXTENT_OVERLAP|BLOCK_MULTIPLY_CLAIMED|COW_IN_DATA_FORK|NBLOCKS_WRONG -y 3 4
flip:1 FREE_TREE_CORRUPT -y
flip:2 FREE_TREE_CORRUPT -y
flip:7 REFC_TREE_CORRUPT -y
flip:freelist FREELIST_BAD|BLOCK_LEAKED -y
no-inode EXTENT_NO_INODE -y 3 5
inline-len INLINE_FORK_BAD|BLOCK_LEAKED|NBLOCKS_WRONG -y 3 4
inline-unsorted INLINE_FORK_BAD|BLOCK_LEAKED|NBLOCKS_WRONG -y 3 4
inline-bad-ext INLINE_FORK_BAD|BLOCK_LEAKED|NBLOCKS_WRONG -y 3 4
inline-not-file INLINE_FORK_NOT_FILE -y
inline-and-tree INLINE_FORK_AND_TREE|BLOCK_LEAKED|NBLOCKS_WRONG -y 3 4
inline-no-feature INLINE_FORK_NO_FEATURE -y
EOF

# A feature bit fsck does not know: reported, never "repaired" (a writer
# that does not know what the bit protects must not touch the image), and
# the image stays as it was. An unknown ro_compat bit allows reading: -n
# checks the rest and says so; -y refuses to write.
for feat in unknown-incompat unknown-ro-compat; do
	damaged "$feat"
	cp "$img" "$tmp/before"
	expect 4 "fsck -n of $feat" "$FSCK" -fn "$img"
	expect_out "\[SB_FEATURE_UNKNOWN\]" "$feat is reported as SB_FEATURE_UNKNOWN"
	expect 4 "fsck -y of $feat leaves it uncorrected" "$FSCK" -fy "$img"
	expect_out "SB_FEATURE_UNKNOWN" "-y names the unknown feature"
	cmp -s "$img" "$tmp/before" && ok || bad "fsck -y of $feat wrote the image"
done

# A primary tree's damaged node: the tree is rebuilt from what is still
# readable, the rest follows (block counts, refcounts, free space). The
# extent tree's only node, with every data fork in it (no inline forks):
# every file loses its blocks, and says so.
"$MKFS" -q -f --no-inline-fork -s 64M "$img" >/dev/null && "$SHARE" "$img" none >/dev/null &&
	flip "$img" "$(read_root "$img" 5)" 2000 || bad "damage flip:5 without inline forks"
expect 1 "fsck -y salvages a lone extent tree node" "$FSCK" -fy "$img"
expect_out "extents tree rebuilt from its 0 readable records" "the salvage is reported"
expect 0 "clean after salvaging the extent tree" "$FSCK" -fn "$img"
"$SHARE" "$img" sum >"$tmp/sum1" && ok || bad "files unreadable after the salvage"
if [ "$(grep -c ' 0 00000000$' "$tmp/sum1")" -eq 3 ]; then ok; else
	bad "files still map blocks"; cat "$tmp/sum1"
fi
# With inline data forks the node holds only c's CoW extent: no file
# loses anything.
damaged flip:5
expect 1 "fsck -y salvages the extent tree beside inline forks" "$FSCK" -fy "$img"
expect 0 "clean after salvaging the extent tree beside inline forks" "$FSCK" -fn "$img"
same_files "flip:5 with inline forks"

# One leaf of a two-level extent tree (200 clones, every fork in the
# tree): only the files whose extents it held lose them, every other file
# reads as before.
"$MKFS" -q -f --no-inline-fork -s 64M "$img" >/dev/null &&
	"$SHARE" "$img" clones 200 1 >/dev/null || bad "clones"
"$SHARE" "$img" sum >"$tmp/sum0"
root=$(read_root "$img" 5)
nrecs=$(od -An -t u2 -j $((root * 4096 + 42)) -N 2 "$img" | tr -d ' ')
# shellcheck disable=SC2046 # a slot: offset and length
set -- $(od -An -t u2 -j $((root * 4096 + 56 + 4 * (nrecs - 2))) -N 4 "$img")
leaf=$(od -An -t u8 -j $((root * 4096 + $1 + 16)) -N 8 "$img" | tr -d ' ')
leaf_recs=$(od -An -t u2 -j $((leaf * 4096 + 42)) -N 2 "$img" | tr -d ' ')
flip "$img" "$leaf" 3000
expect 4 "fsck -n of a damaged extent leaf" "$FSCK" -fn "$img"
expect_out "TREE_CORRUPT.*block $leaf" "the leaf is named"
expect 1 "fsck -y salvages the extent tree" "$FSCK" -fy "$img"
expect 0 "clean after salvaging an extent leaf" "$FSCK" -fn "$img"
"$SHARE" "$img" sum >"$tmp/sum1"
kept=$(grep -cFx -f "$tmp/sum0" "$tmp/sum1")
lost=$(awk 'NR == FNR { line[$1] = $0; n[$1] = $2; next } $0 != line[$1] && $2 >= n[$1]' \
	"$tmp/sum0" "$tmp/sum1" | wc -l)
# each extent record lost costs at most one file
total=$(wc -l <"$tmp/sum0")
[ "$kept" -ge $((total - leaf_recs)) ] && ok ||
	bad "only $kept of $total files intact (the leaf held $leaf_recs records)"
[ "$lost" -eq 0 ] && ok || bad "$lost changed files did not lose blocks"
[ "$kept" -lt "$(wc -l <"$tmp/sum0")" ] && ok || bad "the damaged leaf cost no file anything"

# Taller trees (1 KiB blocks, 150 clones): one byte of a node picked by
# the seed, anywhere in the free-space, extent or refcount tree, is
# repaired and the second run is clean.
for seed in 1 2 3 4 5 6 7 8; do
	RANDOM=$seed
	"$MKFS" -q -f -b 1024 -s 32M "$img" >/dev/null && "$SHARE" "$img" clones 150 "$seed" >/dev/null ||
		bad "clones on 1 KiB blocks (seed $seed)"
	trees=(1 2 5 7)
	tree=${trees[$((seed % 4))]}
	node=$(read_root "$img" "$tree")
	ks=16
	[ "$tree" = 1 ] && ks=8 # key bytes before an internal entry's child
	while [ "$(od -An -t u1 -j $((node * 1024 + 40)) -N 1 "$img" | tr -d ' ')" != 0 ] &&
		[ $((RANDOM % 3)) != 0 ]; do # level at 40, entries at 42, slots at 56
		n=$(od -An -t u2 -j $((node * 1024 + 42)) -N 2 "$img" | tr -d ' ')
		# shellcheck disable=SC2046 # a slot: offset and length
		set -- $(od -An -t u2 -j $((node * 1024 + 56 + 4 * (RANDOM % n))) -N 4 "$img")
		node=$(od -An -t u8 -j $((node * 1024 + $1 + ks)) -N 8 "$img" | tr -d ' ')
	done
	flip "$img" 0 $((node * 1024 + 40 + RANDOM % 960))
	expect 1 "fsck -y of tree $tree node $node (seed $seed)" "$FSCK" -fy "$img"
	expect 0 "clean after repairing tree $tree node $node (seed $seed)" "$FSCK" -fn "$img"
done

# The inode tree's only node: rebuilt (empty); what is left is for the
# name-side repairs (root, lost+found, entries, extents of no inode).
damaged flip:3
"$FSCK" -fy "$img" >"$tmp/out" 2>&1
expect_out "inodes tree rebuilt from its 0 readable records" "the inode tree is salvaged"
"$FSCK" -fn "$img" >"$tmp/out" 2>&1
only_codes "ROOT_BAD|LOST_FOUND_BAD|INODE_COUNT_WRONG|DIRENT_[A-Z_]+|EXTENT_NO_INODE" \
	"after salvaging the inode tree only name-side problems"

# Every damage again on a larger image (120 clones on 1 KiB blocks: trees
# of two and three levels): repaired by -y, clean second run.
for damage in drop-shared wrong-count unshared-record unmerged leftover-staging \
	fork-no-staging staging-owner staging-in-data no-flag overlap refc-overlap no-feature \
	leak free-count unmerged-free cnt-differs free-over-data data-on-node beyond-end \
	cow-overlap nblocks no-inode; do
	"$MKFS" -q -f -b 1024 -s 32M "$img" >/dev/null &&
		"$SHARE" "$img" clones 120 7 "$damage" >/dev/null || bad "clones and $damage"
	expect 1 "fsck -y of $damage among clones" "$FSCK" -fy "$img"
	expect 0 "clean after fsck -y of $damage among clones" "$FSCK" -fn "$img"
done

# What the repairs chose: the inode tree keeps its node (a gets a hole at
# offset 30), c's CoW extent wins over g's. (The sums of the files of a
# fresh image again: the clones above were made without inline forks.)
damaged none
"$SHARE" "$img" sum >"$tmp/sum0" || bad "sum of the undamaged files"
damaged data-on-node
"$FSCK" -fy "$img" >"$tmp/out" 2>&1
expect_out "claimed by the inode tree and file data" "the overlap names both owners"
same_files "data-on-node"
grep -q "^3 8 " "$tmp/sum1" && ok || bad "a's block count is not back to 8"
damaged cow-overlap
"$FSCK" -fyv "$img" >"$tmp/out" 2>&1
expect_out "unmapped CoW blocks 3\.\.4 of inode 6" "e's CoW extent is the one dropped"
expect 0 "c's staging is intact" "$FSCK" -fnv "$img"
expect_out "1 staging runs" "c keeps its staging extent"

# Not safe without asking: -p leaves the image as it was.
damaged data-on-node
cp "$img" "$tmp/before"
expect 4 "fsck -p leaves an overlap alone" "$FSCK" -fp "$img"
expect_out "run fsck without -p" "-p says to run without it"
cmp -s "$img" "$tmp/before" && ok || bad "fsck -p changed the image"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
