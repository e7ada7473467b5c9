#!/bin/bash
# The daemon's integration test: real mounts of real images.
#
#   run.sh REFLINKFS MKFS FSCK POSIX
#
#  1. POSIX semantics (the posix Check program), with the kernel's
#     write-back cache (default) and without; fsck -n after each unmount.
#  2. Persistence: files of known content (many sizes, sparse files with
#     data at 1 TiB on a 2 TiB image, links, special files, owners, modes,
#     nanosecond times, POSIX ACLs) compared byte for byte after a remount.
#  3. A directory of $RFS_BIGDIR_N (100,000) entries, across a remount;
#     EMLINK at 65000 subdirectories.
#  4. A file of $RFS_FRAG_N (100,000) extents, across a remount.
#  5. Filling a 64 MiB filesystem to ENOSPC (both caching modes): the error
#     is ENOSPC, the filesystem consistent, the space comes back.
#  6. The daemon's life: a second mount of the image is refused; SIGTERM
#     commits everything and frees orphans; a read-only mount changes
#     nothing. Long symlinks in fragmented free space (1 KiB blocks).
#     The mount as an overlay's upper layer: copy-up keeps set-ID bits,
#     removed lower files become whiteouts.
#  7. kill -9 of the daemon while files are written and fsync'ed: after a
#     remount (journal replay) every fsync'ed byte is there; fsck is clean;
#     and in the middle of a long truncate.
#
# Needs root and /dev/fuse; exits 77 (skipped) without them. Prints the
# time of each phase and "N passed, N failed"; exits non-zero on failure.
# RFS_KEEP=1 keeps the temporary directory; RFS_VERBOSE=1 lists passes.
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK POSIX" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
POSIX=$4
. "$(dirname "$0")/lib.sh"

: "${RFS_BIGDIR_N:=100000}"
: "${RFS_FRAG_N:=100000}"
: "${RFS_CRASH_ROUNDS:=3}"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup

T_START=$(now_ms)
phase() {
	PHASE=$1
	PHASE_T0=$(now_ms)
	echo "== $PHASE"
}
phase_done() {
	local ms=$(($(now_ms) - PHASE_T0))
	printf '   %s: %d.%03d s\n' "$PHASE" $((ms / 1000)) $((ms % 1000))
}

# unmount (the daemon must exit cleanly) and fsck -n (must be 0)
umount_fsck() {
	check "$1: unmount, daemon exits cleanly" rfs_umount
	check "$1: fsck -n is clean" rfs_fsck "$2"
}

free_blocks() { stat -f -c %f "$RFS_MNT"; }
avail_blocks() { stat -f -c %a "$RFS_MNT"; }

# --- 1. POSIX semantics ---------------------------------------------------------

for mode in writeback no_writeback_cache; do
	phase "posix ($mode)"
	img=$RFS_TMP/posix.img
	rfs_mkfs "$img" 8G
	opts=allow_other
	wb=1
	emlink=1
	if [ $mode = no_writeback_cache ]; then
		opts=$opts,no_writeback_cache
		wb=0
		emlink=0 # once is enough
	fi
	if rfs_mount "$img" -o $opts; then
		RFS_MNT=$RFS_MNT RFS_WRITEBACK=$wb RFS_LINK_MAX_TEST=$emlink CK_DEFAULT_TIMEOUT=600 \
			bg "$POSIX" >"$RFS_TMP/posix.out" 2>&1
		bg_wait $BG_PID
		rc=$?
		sed 's/^/   /' "$RFS_TMP/posix.out"
		if [ $rc -eq 0 ]; then
			ok "posix ($mode)"
		else
			bad "posix ($mode): see the failures above"
		fi
		umount_fsck "posix ($mode)" "$img"
	else
		bad "posix ($mode): mount"
	fi
	rm -f "$img"
	phase_done
done

# --- 2. persistence -----------------------------------------------------------------

phase "persistence (2 TiB image, sparse files at 1 TiB)"
img=$RFS_TMP/persist.img
ref=$RFS_TMP/ref
mkdir -p "$ref"
rfs_mkfs "$img" 2T
TIB=$((1 << 40))
sizes="0 1 511 4095 4096 4097 65539 131072 1048593 5000000"
for s in $sizes; do
	head -c "$s" /dev/urandom >"$ref/f$s"
done
head -c $((64 << 20)) /dev/urandom >"$ref/big"
head -c 12288 /dev/urandom >"$ref/chunk"
# the sparse file: data at 0, 1 GiB, 1 TiB, and an unaligned tail past it
make_sparse() {
	local f=$1
	: >"$f"
	dd if="$ref/chunk" of="$f" bs=4096 count=1 conv=notrunc status=none
	dd if="$ref/chunk" of="$f" bs=12288 count=1 seek=$((1 << 30)) oflag=seek_bytes \
		conv=notrunc status=none
	dd if="$ref/chunk" of="$f" bs=8192 count=1 seek=$TIB oflag=seek_bytes conv=notrunc status=none
	dd if="$ref/chunk" of="$f" bs=5000 count=1 seek=$((TIB + (1 << 20) + 100)) \
		oflag=seek_bytes conv=notrunc status=none
}
make_sparse "$ref/sparse"
listing() {
	(cd "$RFS_MNT/p" && find . -printf '%p %y %m %U %G %s %n %T@ %A@ %l\n' | sort)
}
if rfs_mount "$img"; then
	p=$RFS_MNT/p
	mkdir -p "$p/dir/sub/deeper"
	for s in $sizes; do
		cat "$ref/f$s" >"$p/dir/f$s"
	done
	cat "$ref/big" >"$p/big"
	make_sparse "$p/sparse"
	ln "$p/dir/f4097" "$p/hardlink"
	ln -s dir/f4096 "$p/symlink"
	ln -s "$(head -c 3000 /dev/zero | tr '\0' x)" "$p/longlink"
	mkfifo "$p/dir/fifo"
	mknod "$p/dir/chr" c 4 64
	mknod "$p/dir/blk" b 8 1
	chown 1234:5678 "$p/dir/f1"
	chmod 4751 "$p/dir/f1"
	chmod 1777 "$p/dir/sub"
	touch -m -d '2001-02-03 04:05:06.123456789' "$p/dir/f511"
	touch -a -d '1999-12-31 23:59:59.999999999' "$p/dir/f511"
	truncate -s 3000000 "$p/dir/f5000000"
	truncate -s 3000000 "$ref/f5000000"
	check "persistence: POSIX ACLs set" "$POSIX" acls "$p/acl" make
	before=$(listing)
	map_before=$("$POSIX" map "$p/sparse")
	blocks_before=$(stat -c %b "$p/sparse")
	check "sparse file: 4 data segments" [ "$(echo "$map_before" | wc -l)" -eq 4 ]
	check "sparse file: size" [ "$(stat -c %s "$p/sparse")" -eq $((TIB + (1 << 20) + 5100)) ]
	umount_fsck "persistence: first mount" "$img"
fi
if rfs_mount "$img"; then
	p=$RFS_MNT/p
	check "persistence: names, types, modes, owners, sizes, links, times" \
		[ "$(listing)" = "$before" ]
	[ "$(listing)" = "$before" ] || diff <(echo "$before") <(listing) | head -20
	for s in $sizes; do
		check "persistence: $s-byte file" cmp -s "$ref/f$s" "$p/dir/f$s"
	done
	check "persistence: 64 MiB file" cmp -s "$ref/big" "$p/big"
	check "persistence: hard link" cmp -s "$ref/f4097" "$p/hardlink"
	check "persistence: symlink" [ "$(readlink "$p/symlink")" = dir/f4096 ]
	check "persistence: 3000-byte symlink" [ "$(readlink "$p/longlink" | wc -c)" -eq 3001 ]
	check "persistence: POSIX ACLs" "$POSIX" acls "$p/acl" check
	check "persistence: char device" [ "$(stat -c %t:%T "$p/dir/chr")" = 4:40 ]
	map_after=$("$POSIX" map "$p/sparse")
	check "persistence: sparse file's data map" [ "$map_after" = "$map_before" ]
	check "persistence: sparse file's blocks" [ "$(stat -c %b "$p/sparse")" = "$blocks_before" ]
	while read -r a b; do
		check "persistence: sparse data [$a, $b)" \
			cmp -s -i "$a:$a" -n $((b - a)) "$ref/sparse" "$p/sparse"
	done <<<"$map_after"
	# holes read as zeros (a few places)
	for off in 8192 $((1 << 29)) $((TIB - 4096)) $((TIB + 8192)); do
		check "persistence: hole at $off reads zeros" \
			cmp -s -n 4096 <(dd if="$p/sparse" bs=4096 count=1 skip=$off \
				iflag=skip_bytes status=none) <(head -c 4096 /dev/zero)
	done
	umount_fsck "persistence: after remount" "$img"
fi
rm -f "$img"
rm -rf "$ref"
phase_done

# --- 3, 4. a big directory, a fragmented file ---------------------------------------

phase "big directory ($RFS_BIGDIR_N entries) and fragmented file ($RFS_FRAG_N extents)"
img=$RFS_TMP/big.img
rfs_mkfs "$img" 4G
if rfs_mount "$img"; then
	free0=$(free_blocks)
	check "bigdir: create" "$POSIX" bigdir "$RFS_MNT/big" "$RFS_BIGDIR_N" create
	check "bigdir: stat, readdir" "$POSIX" bigdir "$RFS_MNT/big" "$RFS_BIGDIR_N" check
	check "frag: write" "$POSIX" frag "$RFS_MNT/frag" "$RFS_FRAG_N" write
	check "frag: read, SEEK_DATA/SEEK_HOLE" "$POSIX" frag "$RFS_MNT/frag" "$RFS_FRAG_N" check
	umount_fsck "bigdir/frag: first mount" "$img"
fi
if rfs_mount "$img"; then
	check "bigdir: after remount" "$POSIX" bigdir "$RFS_MNT/big" "$RFS_BIGDIR_N" check
	check "frag: after remount" "$POSIX" frag "$RFS_MNT/frag" "$RFS_FRAG_N" check
	check "frag: truncate and unlink" "$POSIX" frag "$RFS_MNT/frag" "$RFS_FRAG_N" free
	check "bigdir: remove all" "$POSIX" bigdir "$RFS_MNT/big" "$RFS_BIGDIR_N" remove
	if [ "$RFS_BIGDIR_N" -ge 65000 ]; then
		check "bigdir: EMLINK at 65000 subdirectories" "$POSIX" subdirs "$RFS_MNT/subdirs"
	fi
	free1=$(free_blocks)
	# the trees shrink back; the allocator's free list (blocks kept in
	# reserve for its own trees, between water marks) may stay larger
	check "bigdir/frag: the space is back ($free0 -> $free1 free, reserve slack 1024)" \
		[ "$free1" -ge $((free0 - 1024)) ]
	umount_fsck "bigdir/frag: after remount" "$img"
fi
rm -f "$img"
phase_done

# --- 5. ENOSPC --------------------------------------------------------------------

for mode in writeback no_writeback_cache; do
	phase "ENOSPC on a 64 MiB filesystem ($mode)"
	img=$RFS_TMP/small.img
	rfs_mkfs "$img" 64M
	opts=
	[ $mode = no_writeback_cache ] && opts="-o no_writeback_cache"
	# shellcheck disable=SC2086
	if rfs_mount "$img" $opts; then
		free0=$(avail_blocks)
		mkdir "$RFS_MNT/fill" "$RFS_MNT/meta"
		check "ENOSPC ($mode): filling ends with ENOSPC" "$POSIX" fill "$RFS_MNT/fill"
		check "ENOSPC ($mode): nothing available" [ "$(avail_blocks)" -eq 0 ]
		# names can still be made in the blocks kept for metadata, until
		# that fails cleanly with ENOSPC too
		check "ENOSPC ($mode): namespace operations on a full disk" \
			"$POSIX" fillmeta "$RFS_MNT/meta"
		check "ENOSPC ($mode): remove everything" rm -rf "$RFS_MNT/fill" "$RFS_MNT/meta"
		for ((i = 0; i < 50; i++)); do
			[ "$(avail_blocks)" -ge "$free0" ] && break
			sleep 0.1
		done
		check "ENOSPC ($mode): the space is back ($free0 -> $(avail_blocks) available)" \
			[ "$(avail_blocks)" -ge "$free0" ]
		head -c $((40 << 20)) /dev/urandom >"$RFS_TMP/again"
		check "ENOSPC ($mode): writing works again" \
			dd if="$RFS_TMP/again" of="$RFS_MNT/again" bs=1M conv=fsync status=none
		check "ENOSPC ($mode): and reads back" cmp -s "$RFS_TMP/again" "$RFS_MNT/again"
		umount_fsck "ENOSPC ($mode)" "$img"
		if rfs_mount "$img"; then
			check "ENOSPC ($mode): intact after remount" cmp -s "$RFS_TMP/again" "$RFS_MNT/again"
			umount_fsck "ENOSPC ($mode): after remount" "$img"
		fi
		rm -f "$RFS_TMP/again"
	fi
	rm -f "$img"
	phase_done
done

# --- 6. the daemon's life: a second mount, SIGTERM, read-only -------------------------

phase "second mount refused, SIGTERM shutdown, read-only mount"
img=$RFS_TMP/life.img
rfs_mkfs "$img" 256M
head -c $((3 << 20)) /dev/urandom >"$RFS_TMP/data"
if rfs_mount "$img"; then
	mkdir "$RFS_TMP/mnt2"
	"$RFS_DAEMON" -f "$img" "$RFS_TMP/mnt2" >"$RFS_TMP/second.log" 2>&1
	rc=$?
	check "a second mount of an image in use is refused (exit $rc)" \
		[ $rc -ne 0 -a -n "$(grep 'in use' "$RFS_TMP/second.log")" ]
	mountpoint -q "$RFS_TMP/mnt2" && umount "$RFS_TMP/mnt2"
	rmdir "$RFS_TMP/mnt2"
	# written and closed (so the kernel has sent it), never fsync'ed
	cat "$RFS_TMP/data" >"$RFS_MNT/data"
	mkdir -p "$RFS_MNT/d/e"
	ln -s data "$RFS_MNT/d/link"
	# an unlinked file still open at shutdown: an orphan to free
	cat "$RFS_TMP/data" >"$RFS_MNT/orphan"
	bg sleep 1000 3<"$RFS_MNT/orphan"
	holder=$BG_PID
	rm "$RFS_MNT/orphan"
	pid=$RFS_PID
	kill -TERM "$pid"
	for ((i = 0; i < 300; i++)); do
		daemon_alive "$pid" || break
		sleep 0.1
	done
	wait "$pid"
	rc=$?
	RFS_PID=
	check "SIGTERM: the daemon exits with 0 (got $rc)" [ $rc -eq 0 ]
	kill "$holder" 2>/dev/null
	bg_wait "$holder"
	mountpoint -q "$RFS_MNT" && umount -l "$RFS_MNT"
	check "SIGTERM: fsck -n is clean" rfs_fsck "$img"
	if rfs_mount "$img"; then
		check "SIGTERM: written data is there" cmp -s "$RFS_TMP/data" "$RFS_MNT/data"
		check "SIGTERM: names are there" [ -d "$RFS_MNT/d/e" -a "$(readlink "$RFS_MNT/d/link")" = data ]
		check "SIGTERM: the orphan was freed" [ ! -e "$RFS_MNT/orphan" ]
		umount_fsck "SIGTERM: after remount" "$img"
	fi
fi
sum=$(md5sum <"$img")
if rfs_mount "$img" -o ro; then
	check "read-only: data readable" cmp -s "$RFS_TMP/data" "$RFS_MNT/data"
	out=$(touch "$RFS_MNT/new" 2>&1)
	check "read-only: writing fails with EROFS" [ -n "$(echo "$out" | grep 'Read-only')" ]
	check "read-only: unmount" rfs_umount
	check "read-only: the image is unchanged" [ "$(md5sum <"$img")" = "$sum" ]
fi
rm -f "$img" "$RFS_TMP/data"
phase_done

# --- 6. 1 KiB blocks: long symlinks in fragmented free space --------------------------

phase "1 KiB blocks: long symlinks among fragmented free space"
img=$RFS_TMP/small1k.img
rfs_mkfs "$img" 16M -b 1024
if rfs_mount "$img" -o no_writeback_cache; then
	mkdir "$RFS_MNT/s"
	check "1 KiB blocks: symlinks of 100 to 4000 bytes" "$POSIX" symlinks "$RFS_MNT/s" 300 make
	umount_fsck "1 KiB blocks" "$img"
	if rfs_mount "$img"; then
		check "1 KiB blocks: symlinks after remount" "$POSIX" symlinks "$RFS_MNT/s" 300 check
		check "1 KiB blocks: remove everything" rm -rf "$RFS_MNT/s"
		umount_fsck "1 KiB blocks: after remount" "$img"
	fi
fi
rm -f "$img"
phase_done

# --- 6b. overlayfs on top: copy-up, whiteouts ----------------------------------------

# The upper layer of an overlay (a container's writable layer): copy-up
# chowns as root and must keep set-ID bits; a removed lower file becomes
# a RENAME_WHITEOUT whiteout.
phase "overlayfs with the mount as its upper layer"
if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
	echo "   skipped: this kernel has no overlayfs"
else
	img=$RFS_TMP/ovl.img
	lower=$RFS_TMP/ovl-lower
	merged=$RFS_TMP/ovl-merged
	rfs_mkfs "$img" 256M
	mkdir -p "$lower/dir" "$merged"
	echo data >"$lower/f"
	printf x >"$lower/dir/g"
	cp /bin/true "$lower/suid"
	chmod 4755 "$lower/suid"
	if rfs_mount "$img"; then
		mkdir "$RFS_MNT/upper" "$RFS_MNT/work"
		if mount -t overlay overlay -o "lowerdir=$lower,upperdir=$RFS_MNT/upper,workdir=$RFS_MNT/work" "$merged"; then
			RFS_STACKED=$merged
			touch "$merged/suid"
			check "overlay: copy-up keeps set-user-ID" [ "$(stat -c %a "$RFS_MNT/upper/suid")" = 4755 ]
			rm "$merged/f"
			check "overlay: a removed lower file is gone" [ ! -e "$merged/f" ]
			check "overlay: and is a whiteout (0:0) in the upper layer" \
				[ "$(stat -c %F:%t:%T "$RFS_MNT/upper/f")" = "character special file:0:0" ]
			mv "$merged/dir/g" "$merged/dir/g2"
			check "overlay: rename in a copied-up directory" [ "$(cat "$merged/dir/g2")" = x ]
			check "overlay: the old name is gone" [ ! -e "$merged/dir/g" ]
			check "overlay: unmounts" umount "$merged"
			RFS_STACKED=
		else
			bad "overlay: mount with the upper layer on reflinkfs"
		fi
		umount_fsck "overlay" "$img"
	fi
	rm -rf "$img" "$lower" "$merged"
fi
phase_done

# --- 7. kill -9 -----------------------------------------------------------------------

phase "kill -9 during fsync'ed writes ($RFS_CRASH_ROUNDS rounds)"
img=$RFS_TMP/crash.img
rfs_mkfs "$img" 1G
logs=
for ((round = 1; round <= RFS_CRASH_ROUNDS; round++)); do
	rfs_mount "$img" || break
	w1=$RFS_MNT/r$round-a
	w2=$RFS_MNT/r$round-b
	mkdir "$w1" "$w2"
	bg "$POSIX" crashwriter "$w1" "$RFS_TMP/log.$round.a"
	p1=$BG_PID
	bg "$POSIX" crashwriter "$w2" "$RFS_TMP/log.$round.b"
	p2=$BG_PID
	sleep "$(awk -v r="$round" 'BEGIN { print 0.7 * r + 0.5 }')"
	check "crash round $round: daemon killed, dead mount cleared" rfs_kill9
	bg_wait $p1
	bg_wait $p2
	logs="$logs $round"
	if rfs_mount "$img"; then
		grep -h "journal\|orphan" "$RFS_LOG" | sed 's/^/   /'
		for r in $logs; do
			check "crash round $round: round $r's fsync'ed data intact" \
				"$POSIX" crashcheck "$RFS_MNT/r$r-a" "$RFS_TMP/log.$r.a"
			check "crash round $round: round $r's fsync'ed data intact (2)" \
				"$POSIX" crashcheck "$RFS_MNT/r$r-b" "$RFS_TMP/log.$r.b"
		done
		umount_fsck "crash round $round: after replay" "$img"
	else
		bad "crash round $round: remount after kill -9"
	fi
done

# kill -9 in the middle of a long truncate (a file of many extents cut to
# 0, the size committed by an fsync elsewhere meanwhile): after the replay,
# no block may be left past the committed size, where growing the file
# again would bring old data back instead of zeros
if rfs_mount "$img"; then
	n=$((RFS_FRAG_N / 2))
	check "crash in truncate: a file of $n extents" "$POSIX" frag "$RFS_MNT/tr" $n write
	old_size=$(stat -c %s "$RFS_MNT/tr")
	touch "$RFS_MNT/tr-other"
	bg truncate -s 0 "$RFS_MNT/tr" 2>/dev/null
	tp=$BG_PID
	sleep 0.15
	sync "$RFS_MNT/tr-other" 2>/dev/null
	check "crash in truncate: daemon killed" rfs_kill9
	bg_wait $tp
	if rfs_mount "$img"; then
		size=$(stat -c %s "$RFS_MNT/tr")
		echo "   truncate interrupted: size $size of $old_size, $(stat -c %b "$RFS_MNT/tr") sectors"
		check "crash in truncate: the size is the old or the new one ($size)" \
			[ "$size" -eq 0 -o "$size" -eq "$old_size" ]
		truncate -s "$old_size" "$RFS_MNT/tr"
		check "crash in truncate: no data past the committed size" \
			[ -z "$("$POSIX" map "$RFS_MNT/tr" | awk -v s="$size" '$2 > s')" ]
		umount_fsck "crash in truncate: after replay" "$img"
	fi
fi
rm -f "$img"
phase_done

ms=$(($(now_ms) - T_START))
printf 'total: %d.%03d s\n' $((ms / 1000)) $((ms % 1000))
rfs_summary
