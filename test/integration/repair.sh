#!/bin/bash
# fsck repairs on images the daemon wrote: files (some cloned, some
# rewritten in part so that they share only some blocks) are made on a
# real mount; then, one at a time, the root node of the free-space trees
# or of the refcount tree is damaged, fsck -y rebuilds it, a second fsck
# is clean, and after a remount every file reads back the same and the
# daemon can allocate, clone and copy-on-write on the rebuilt trees (fsck
# clean again after that).
#
#   repair.sh REFLINKFS MKFS FSCK REFLINKCTL
#
# Needs root and /dev/fuse (exits 77 without). Prints "N passed, N failed".
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK REFLINKCTL" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
CTL=$4
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup

base=$RFS_TMP/base.img
img=$RFS_TMP/r.img

# flip IMAGE BLOCK OFFSET: invert one byte of a 4 KiB block
flip() {
	local off=$(($2 * 4096 + $3)) b
	b=$(od -An -t u1 -j "$off" -N 1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
read_root() { od -An -t u8 -j $((216 + 16 * $2)) -N 8 "$1" | tr -d ' '; }

# The files: a (3 MiB), b its clone with 64 KiB rewritten, c (1 MiB), d a
# clone of c's second half; sums in $RFS_TMP/sums.
make_files() {
	head -c 3M /dev/urandom >"$RFS_MNT/a" &&
		"$CTL" clone "$RFS_MNT/a" "$RFS_MNT/b" &&
		dd if=/dev/urandom of="$RFS_MNT/b" bs=64K seek=5 count=1 conv=notrunc,fsync status=none &&
		head -c 1M /dev/urandom >"$RFS_MNT/c" &&
		touch "$RFS_MNT/d" &&
		"$CTL" clone "$RFS_MNT/c" "$RFS_MNT/d" 524288 0 0 &&
		(cd "$RFS_MNT" && md5sum a b c d) >"$RFS_TMP/sums"
}

# After the repair the daemon must still work: a new file, a clone, and a
# rewrite of shared blocks (CoW), all fsync'ed.
use_files() {
	head -c 2M /dev/urandom >"$RFS_MNT/e" &&
		"$CTL" clone "$RFS_MNT/e" "$RFS_MNT/f" &&
		dd if=/dev/urandom of="$RFS_MNT/a" bs=4K seek=10 count=3 conv=notrunc,fsync status=none &&
		dd if=/dev/urandom of="$RFS_MNT/f" bs=4K count=1 conv=notrunc,fsync status=none &&
		cmp -s -n 4096 -i 4096 "$RFS_MNT/e" "$RFS_MNT/f"
}

rfs_mkfs "$base" 256M
if rfs_mount "$base"; then
	check "files made on a real mount" make_files
	check "unmount after making the files" rfs_umount
	check "fsck -n of the daemon's image" rfs_fsck "$base"
else
	bad "mount"
fi

for tree in 1 2 7; do
	echo "== damaged root node of tree $tree"
	cp "$base" "$img"
	flip "$img" "$(read_root "$img" $tree)" 1000
	"$RFS_FSCK" -fy "$img" >"$RFS_TMP/out" 2>&1
	rc=$?
	check "tree $tree: fsck -y exits 1" [ $rc -eq 1 ] || cat "$RFS_TMP/out"
	check "tree $tree: second fsck clean" rfs_fsck "$img"
	if rfs_mount "$img"; then
		check "tree $tree: files read back the same" \
			sh -c "cd '$RFS_MNT' && md5sum -c --quiet '$RFS_TMP/sums'"
		check "tree $tree: allocate, clone and CoW after the repair" use_files
		check "tree $tree: unmount" rfs_umount
		check "tree $tree: fsck clean after using the repaired image" rfs_fsck "$img"
	else
		bad "tree $tree: mount after the repair"
	fi
done

# Inline data forks through the daemon: small files cost no extent
# record; a file written in six separate blocks needs the tree (six
# records, as fsck -fnv counts them); truncated to 0 and written again it
# is back in its inode (no record), and the image stays clean.
echo "== inline data forks"
extent_records() { "$RFS_FSCK" -fnv "$img" | sed -n 's/^  extents: .* \([0-9]*\) records.*/\1/p'; }
six_pieces() {
	for i in 0 2 4 6 8 10; do
		dd if=/dev/urandom of="$RFS_MNT/big" bs=4K seek=$i count=1 conv=notrunc,fsync \
			status=none || return 1
	done
}
rfs_mkfs "$img" 64M
if rfs_mount "$img"; then
	check "small files" sh -c "for i in 1 2 3; do printf x >'$RFS_MNT/s'\$i; done"
	check "a file in six pieces" six_pieces
	check "unmount after the six pieces" rfs_umount
	check "six extent records, none for the small files" [ "$(extent_records)" = 6 ]
	check "fsck clean with a fork in the tree" rfs_fsck "$img"
else
	bad "mount for inline forks"
fi
if rfs_mount "$img"; then
	check "truncate to 0 and write again" sh -c ": >'$RFS_MNT/big' && printf y >>'$RFS_MNT/big'"
	check "unmount after the rewrite" rfs_umount
	check "no extent record left" [ "$(extent_records)" = 0 ]
	check "fsck clean with the fork back inline" rfs_fsck "$img"
else
	bad "second mount for inline forks"
fi

rfs_summary
