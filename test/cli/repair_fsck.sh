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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
img=$tmp/r.img

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() {
	local want=$1 what=$2; shift 2
	"$@" >"$tmp/out" 2>&1
	local got=$?
	if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, expected $want"; cat "$tmp/out"; fi
}
expect_out() {
	if grep -qE -- "$1" "$tmp/out"; then ok; else bad "$2: output lacks /$1/"; cat "$tmp/out"; fi
}
# only_codes CODES WHAT: every [CODE] printed is one of CODES (a regex)
only_codes() {
	if grep -oE '\[[A-Z_]+\]' "$tmp/out" | grep -vqE "^\[($1)\]$"; then
		bad "$2: unexpected problems"; cat "$tmp/out"
	else ok; fi
}
# flip IMAGE BLOCK OFFSET: invert one byte of a 4 KiB block
flip() {
	local off=$(($2 * 4096 + $3)) b
	b=$(od -An -t u1 -j "$off" -N 1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
read_root() { od -An -t u8 -j $((216 + 16 * $2)) -N 8 "$1" | tr -d ' '; }

# damaged DAMAGE: a fresh image with rfs_share's files, damaged. DAMAGE is
# an rfs_share damage, or flip:TREE (the root node of tree TREE, as
# numbered in the superblock's roots) or flip:freelist (block 1).
damaged() {
	"$MKFS" -q -f -s 64M "$img" >/dev/null || bad "mkfs"
	case $1 in
	flip:freelist) "$SHARE" "$img" none >/dev/null && flip "$img" 1 60 ;;
	flip:*) "$SHARE" "$img" none >/dev/null && flip "$img" "$(read_root "$img" "${1#flip:}")" 2000 ;;
	*) "$SHARE" "$img" "$1" >/dev/null ;;
	esac || bad "damage $1"
}
same_files() {
	"$SHARE" "$img" sum >"$tmp/sum1" 2>&1 || bad "$1: files unreadable after the repair"
	for ino in 3 4 5; do
		if [ "$(grep "^$ino " "$tmp/sum0")" = "$(grep "^$ino " "$tmp/sum1")" ]; then ok; else
			bad "$1: inode $ino reads differently after the repair"
			cat "$tmp/sum0" "$tmp/sum1"
		fi
	done
}

damaged none
"$SHARE" "$img" sum >"$tmp/sum0" || bad "sum of the undamaged files"
[ "$(wc -l <"$tmp/sum0")" -eq 3 ] && ok || bad "sum lists $(wc -l <"$tmp/sum0") files"

# DAMAGE  CODES (the first must appear, none other)  MODE
while read -r damage codes mode; do
	damaged "$damage"
	cp "$img" "$tmp/before"
	expect 4 "fsck -n of $damage" "$FSCK" -fn "$img"
	expect_out "\[${codes%%|*}\]" "$damage is reported as ${codes%%|*}"
	only_codes "$codes" "$damage"
	cmp -s "$img" "$tmp/before" && ok || bad "fsck -n of $damage wrote the image"
	expect 1 "fsck $mode repairs $damage" "$FSCK" -f "$mode" "$img"
	expect_out "\(fixed\)" "$damage is fixed with $mode"
	expect 0 "clean after fsck $mode of $damage" "$FSCK" -fn "$img"
	same_files "$damage"
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
flip:1 FREE_TREE_CORRUPT -y
flip:2 FREE_TREE_CORRUPT -y
flip:7 REFC_TREE_CORRUPT -y
flip:freelist FREELIST_BAD|BLOCK_LEAKED -y
EOF

# What the repairs chose: the inode tree keeps its node (a gets a hole at
# offset 30), a's extent beyond the end goes, c's CoW extent wins over e's.
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
