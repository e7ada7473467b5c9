#!/bin/bash
# Command-line contract of mkfs.reflinkfs and fsck.reflinkfs on real image
# files: exit codes, messages, refusals, and fsck on damaged images.
#   usage: mkfs_fsck.sh MKFS FSCK
set -u
MKFS=$1
FSCK=$2
. "$(dirname "$0")/check.sh"

# read_root IMAGE TREE: block number of tree TREE's root from the superblock
read_root() {
	od -An -t u8 -j $((216 + 16 * $2)) -N 8 "$1" | tr -d ' '
}

# flip IMAGE BLOCK OFFSET [BS]: invert one byte of a block
flip() {
	local bs=${4:-4096} off=$(($2 * ${4:-4096} + $3)) b
	b=$(od -An -t u1 -j "$off" -N 1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

img=$tmp/a.img

# --- mkfs: creation, sizes, geometry -----------------------------------
expect 0 "mkfs 1T sparse" "$MKFS" -s 1T "$img"
expect_out "268435456 blocks of 4096 bytes" "mkfs prints the geometry"
expect_out "UUID: [0-9a-f-]{36}" "mkfs prints the uuid"
[ "$(stat -c %s "$img")" -eq $((1 << 40)) ] && ok || bad "image size is not 1 TiB"
[ "$(stat -c %b "$img")" -lt 4096 ] && ok || bad "1 TiB image is not sparse"
expect 0 "fsck -n of a fresh 1T image" "$FSCK" -n "$img"
expect_out "clean" "fsck says clean"
expect 0 "fsck -fn of a fresh 1T image" "$FSCK" -fn "$img"

for bs in 1024 2048 8192 65536; do
	expect 0 "mkfs -b $bs" "$MKFS" -f -b "$bs" -s 64M "$tmp/b$bs.img"
	expect 0 "fsck after mkfs -b $bs" "$FSCK" -n "$tmp/b$bs.img"
done
expect 0 "mkfs with label, uuid, journal size" "$MKFS" -f -L demo -U 01234567-89ab-cdef-0123-456789abcdef -J 8M -s 256M "$img"
expect_out "01234567-89ab-cdef-0123-456789abcdef" "mkfs uses -U"
expect_out "journal 2048 blocks" "mkfs uses -J"
expect 0 "fsck after mkfs -L -U -J" "$FSCK" -n "$img"

# --- mkfs: refusals ------------------------------------------------------
expect 1 "mkfs over an existing reflinkfs without -f" "$MKFS" -s 256M "$img"
expect_out "use -f" "refusal says how to overwrite"
expect 0 "mkfs -f over an existing reflinkfs" "$MKFS" -f -s 256M "$img"
expect 1 "block size not a power of two" "$MKFS" -f -b 3000 -s 64M "$tmp/c.img"
expect_out "block size" "bad block size is named"
expect 1 "block size too large" "$MKFS" -f -b 131072 -s 64M "$tmp/c.img"
expect 1 "filesystem too small" "$MKFS" -s 100K "$tmp/small.img"
expect_out "blocks" "too-small size is explained"
[ ! -e "$tmp/small.img" ] && ok || bad "failed mkfs left a new image behind"
expect 1 "size is not a size" "$MKFS" -s lots "$tmp/c.img"
expect 1 "journal too big" "$MKFS" -f -J 200M -s 256M "$tmp/c.img"
expect 1 "missing target without -s" "$MKFS" "$tmp/nonexistent.img"
expect 16 "unknown option" "$MKFS" --bogus "$img"
expect_out "Usage" "usage on a bad option"
expect 16 "no target" "$MKFS"
expect 0 "--help" "$MKFS" --help
expect_out "Usage" "--help prints usage"
expect 0 "--version" "$MKFS" --version

# The image lock: a mounted (locked) image is never formatted or checked.
(flock -x 9; sleep 3) 9<"$img" &
sleep 0.5
expect 1 "mkfs of a locked image" "$MKFS" -f -s 256M "$img"
expect_out "in use" "mkfs says the image is in use"
expect 8 "fsck of a locked image" "$FSCK" -n "$img"
expect_out "in use" "fsck says the image is in use"
wait

# --- fsck: options -----------------------------------------------------------
expect 16 "fsck unknown option" "$FSCK" -Q "$img"
expect 16 "fsck -n with -y" "$FSCK" -n -y "$img"
expect 16 "fsck without an image" "$FSCK"
expect 8 "fsck of a missing file" "$FSCK" -n "$tmp/nope.img"
head -c 1M /dev/zero >"$tmp/zero.img"
expect 8 "fsck of something that is no reflinkfs" "$FSCK" -n "$tmp/zero.img"
expect_out "not a reflinkfs" "fsck names the problem"

# --- fsck: damaged metadata ------------------------------------------------------
for tree in 1 2 3 4; do
	"$MKFS" -q -f -s 256M "$img"
	blk=$(read_root "$img" $tree)
	flip "$img" "$blk" 2000
	expect 4 "fsck of a damaged tree $tree root" "$FSCK" -n "$img"
	expect_out "TREE_CORRUPT.*block $blk" "fsck names damaged block $blk"
done

"$MKFS" -q -f -s 256M "$img"
flip "$img" 0 300
expect 4 "fsck of a damaged primary superblock" "$FSCK" -n "$img"
expect_out "SB_PRIMARY_BAD" "fsck reports the primary superblock"
expect_out "backup superblock at block" "fsck falls back to a backup"

"$MKFS" -q -f -s 256M "$img"
flip "$img" 1 60
expect 4 "fsck of a damaged free list block" "$FSCK" -n "$img"
expect_out "FREELIST_BAD.*block 1" "fsck names the free list block"

"$MKFS" -q -f -s 256M "$img"
flip "$img" 2 100
expect 4 "fsck of a damaged journal superblock" "$FSCK" -n "$img"
expect_out "JOURNAL_SB_BAD.*block 2" "fsck names the journal superblock"

"$MKFS" -q -f -s 256M "$img"
flip "$img" $((65536 / 2)) 500
expect 4 "fsck of a damaged backup superblock" "$FSCK" -n "$img"
expect_out "SB_BACKUP_BAD.*block 32768" "fsck names the backup"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
