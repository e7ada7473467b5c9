#!/bin/bash
# fsck's superblock and names side: a small namespace (rfs_names) is clean;
# each single damage is reported with its code by -n (exit 4, image
# untouched), repaired by -y (exit 1) and then clean (-fn exit 0); the
# codes e2fsck would fix when preening are fixed by -p as well, the others
# are left to -y.
#   usage: names_fsck.sh MKFS FSCK NAMES
set -u
MKFS=$1
FSCK=$2
NAMES=$3
. "$(dirname "$0")/check.sh"
img=$tmp/n.img

# damaged DAMAGE: a fresh image with rfs_names' tree, damaged one way
damaged() {
	"$MKFS" -q -f -s 8M "$img" >/dev/null && "$NAMES" "$img" "$1" || bad "rfs_names $1"
}

damaged none
expect 0 "the namespace is clean" "$FSCK" -fn "$img"
# f is in two extents, the later one first on disk: 1 of 7 inodes
expect_out "clean, 7 inodes \(14\.3% non-contiguous\), [0-9]+/2048 blocks used" \
	"the summary counts inodes, fragmentation and blocks"
expect 0 "-p on a clean image" "$FSCK" -p "$img"

# damage, its code, other codes it also causes (consequences, not noise),
# and whether -p repairs it
while read -r dmg code also preen; do
	damaged "$dmg"
	sum=$(md5sum <"$img")
	expect 4 "$dmg: fsck -n" "$FSCK" -n "$img"
	expect_out "\[$code\]" "$dmg: fsck -n reports $code"
	only_codes "$code${also:+|$also}" "$dmg: fsck -n"
	[ "$(md5sum <"$img")" = "$sum" ] && ok || bad "$dmg: fsck -n wrote to the image"
	expect 1 "$dmg: fsck -y" "$FSCK" -y "$img"
	expect_out "\[$code\].*\(fixed\)" "$dmg: fsck -y fixes $code"
	expect 0 "$dmg: fsck -fn after -y" "$FSCK" -fn "$img"
	expect_out "clean" "$dmg: clean after -y"
	damaged "$dmg"
	if [ "$preen" = preen ]; then
		expect 1 "$dmg: fsck -p" "$FSCK" -p "$img"
		expect 0 "$dmg: fsck -fn after -p" "$FSCK" -fn "$img"
	else
		expect 4 "$dmg: fsck -p leaves it" "$FSCK" -p "$img"
		expect_out "$code.*not fixed: run fsck without -p" "$dmg: -p says to run without -p"
	fi
done <<'LIST'
primary-sb SB_PRIMARY_BAD - no
backup-sb SB_BACKUP_BAD - preen
backup-differs SB_BACKUP_DIFFERS - preen
journal-sb JOURNAL_SB_BAD - no
errors SB_ERRORS_RECORDED - preen
inode-count INODE_COUNT_WRONG - preen
next-ino NEXT_INO_TOO_LOW - preen
no-root ROOT_BAD DIRENT_IN_NON_DIR|DIR_UNREACHABLE|INODE_UNREACHABLE|NLINK_WRONG no
no-lost-found LOST_FOUND_BAD DIRENT_TARGET_MISSING|NLINK_WRONG no
dangling DIRENT_TARGET_MISSING - no
in-non-dir DIRENT_IN_NON_DIR - no
ftype DIRENT_FTYPE_WRONG - preen
hash DIRENT_HASH_WRONG - no
dir-two-names DIR_MULTIPLY_LINKED - no
parent DIR_PARENT_WRONG - no
loop DIR_UNREACHABLE - no
unnamed-dir DIR_UNREACHABLE - no
unnamed-file INODE_UNREACHABLE - no
nlink NLINK_WRONG - preen
orphan-linked ORPHAN_BAD - preen
orphan-missing ORPHAN_BAD - preen
symlink SYMLINK_BAD - no
inline-type INODE_BAD - no
symlink-inline INODE_BAD SYMLINK_BAD no
LIST

# What the repairs leave, beyond "clean".
damaged unnamed-file
expect 1 "an unnamed file is reconnected" "$FSCK" -y "$img"
expect_out "is now '#[0-9]+' in directory 2" "the file is named #INO in lost+found"
damaged loop
expect 1 "a loop is broken" "$FSCK" -y "$img"
expect_out "/lost\+found/#[0-9]+/[de]" "fsck names the reconnected directory's child by path"
damaged symlink
expect 1 "a bad symlink is cleared" "$FSCK" -y "$img"
expect 0 "after clearing the symlink" "$FSCK" -fn "$img"
expect_out "clean, 6 inodes" "the symlink is gone"
damaged primary-sb
expect 1 "the primary is restored" "$FSCK" -y "$img"
expect_out "restored from the backup at block" "fsck says where the primary came from"
expect 0 "after restoring the primary" "$FSCK" -fn "$img"
if grep -q "using the backup" "$tmp/out"; then bad "the primary is still not used"; else ok; fi
damaged symlink-inline
expect 1 "a symlink's inline target is retyped" "$FSCK" -y "$img"
if grep -q "SYMLINK_BAD" "$tmp/out"; then bad "the retyped symlink was cleared"; else ok; fi
expect 0 "after retyping" "$FSCK" -fn "$img"
expect_out "clean, 7 inodes" "the symlink is kept"

# The record of errors goes only with the last problem.
damaged errors+dangling
expect 4 "-p leaves the dangling entry" "$FSCK" -p "$img"
expect_out "error record kept: 1 problem" "-p keeps the record of errors"
expect 1 "-y fixes both" "$FSCK" -y "$img"
expect_out "SB_ERRORS_RECORDED.*\(fixed\)" "-y clears the record"
expect 0 "clean after -y" "$FSCK" -fn "$img"

# Random combinations of 2 to 4 damages (seeded; NAMES_SEED replays one):
# whatever fsck -n finds, -y must fix all of it, and then it is clean. Not
# backup-differs: with primary-sb as well, every copy left has valid
# checksums and the wrong journal size, and nothing can tell.
seed=${NAMES_SEED:-20261121} # fixed unless asked: CI is deterministic
RANDOM=$seed
all=(primary-sb backup-sb journal-sb errors inode-count next-ino no-root
	no-lost-found dangling in-non-dir ftype hash dir-two-names parent loop unnamed-dir
	unnamed-file nlink orphan-linked orphan-missing symlink inline-type symlink-inline)
combos=0
for round in $(seq 1 40); do
	set --
	n=$((2 + RANDOM % 3)) # not inside $(...): a subshell reseeds RANDOM
	for ((k = 0; k < n; k++)); do set -- "$@" "${all[RANDOM % ${#all[@]}]}"; done
	"$MKFS" -q -f -s 8M "$img" >/dev/null
	"$NAMES" "$img" "$@" 2>/dev/null || continue # a combination that cannot be made
	combos=$((combos + 1))
	expect 4 "seed $seed, $*: fsck -n" "$FSCK" -n "$img"
	expect 1 "seed $seed, $*: fsck -y" "$FSCK" -y "$img"
	expect 0 "seed $seed, $*: fsck -fn after -y" "$FSCK" -fn "$img"
done
[ "$combos" -ge 10 ] && ok || bad "seed $seed: only $combos combinations could be made"

echo "names_fsck: $pass passed, $fail failed (seed $seed)"
[ "$fail" -eq 0 ]
