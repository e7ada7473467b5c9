#!/bin/bash
# reflinkctl on a real mount: clones cost no space and share every block,
# a 4 KiB overwrite unshares exactly that block, ranges that cannot be
# shared are refused untouched, dedupe shares equal files and reports
# different ones, usage counts shared blocks once, and anything outside
# reflinkfs is refused clearly. Then fsck -fn of the image is clean.
#   usage: reflinkctl.sh REFLINKFS MKFS FSCK REFLINKCTL
# Needs root and /dev/fuse; exits 77 (skipped) without them.
set -u
if [ $# -ne 4 ]; then
	echo "usage: $0 REFLINKFS MKFS FSCK REFLINKCTL" >&2
	exit 2
fi
RFS_DAEMON=$1
RFS_MKFS=$2
RFS_FSCK=$3
CTL=$4
. "$(dirname "$0")/../integration/lib.sh"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "skipped: needs root and /dev/fuse"
	exit 77
fi
rfs_setup
img=$RFS_TMP/ctl.img
out=$RFS_TMP/out
m=$RFS_MNT
BS=4096
SLACK=8 # metadata blocks a clone or an overwrite may add (trees, refcounts)

# expect STATUS MSG CMD...: runs CMD (output in $out), checks its exit status
expect() {
	local want=$1 msg=$2 got
	shift 2
	"$@" >"$out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$msg"; else bad "$msg: exit $got, expected $want"; cat "$out" >&2; fi
}
# has REGEX MSG: the last command's output matches
has() {
	if grep -qE -- "$1" "$out"; then ok "$2"; else bad "$2: output lacks /$1/"; cat "$out" >&2; fi
}
free_blocks() { stat -f -c %f "$m"; }
# between LOW HIGH VALUE MSG
between() {
	if [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; then ok "$4"; else bad "$4: $3 not in [$1, $2]"; fi
}
# the total line of `extents FILE`: "SHARED EXCLUSIVE" bytes
ext_totals() {
	"$CTL" extents "$1" | sed -n 's/^total: .* \([0-9]*\) bytes shared, \([0-9]*\) bytes exclusive$/\1 \2/p'
}
# `usage --raw` row of NAME: "TOTAL EXCLUSIVE SET_SHARED"
usage_row() {
	awk -v n="$1" '$4 == n { print $1, $2, $3 }' "$out"
}
same() {
	if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', expected '$2'"; fi
}

# --- the command line ---------------------------------------------------------------

expect 0 "--help" "$CTL" --help
has "clone .*SRC DST" "--help lists the commands"
expect 0 "--version" "$CTL" --version
has "^reflinkctl \(reflinkfs\) [0-9]+\.[0-9]+" "--version names the version"
expect 16 "no command: usage error" "$CTL"
expect 16 "unknown command: usage error" "$CTL" frobnicate
expect 16 "unknown option: usage error" "$CTL" clone --bogus a b
expect 16 "wrong argument count: usage error" "$CTL" clone a
expect 16 "bad number: usage error" "$CTL" clone a b x 0 4096

# --- clones -----------------------------------------------------------------------------

rfs_mkfs "$img" 256M
rfs_mount "$img" -o allow_other || exit 1 # other users for the dedupe permission checks

size=$((8 * 1024 * 1024 + 1234))      # a partial last block too
alloc=$(((size + BS - 1) / BS * BS)) # what the blocks hold
head -c $size /dev/urandom >"$m/a"
sync "$m/a" # allocated now, not at writeback
f0=$(free_blocks)
expect 0 "clone a b" "$CTL" clone "$m/a" "$m/b"
sync "$m/b"
f1=$(free_blocks)
between 0 $SLACK $((f0 - f1)) "a clone of $size bytes costs no space (blocks used)"
check "the clone has the same contents" cmp -s "$m/a" "$m/b"
same "$(ext_totals "$m/a")" "$alloc 0" "extents: a is all shared"
same "$(ext_totals "$m/b")" "$alloc 0" "extents: b is all shared"
expect 0 "extents a b" "$CTL" extents "$m/a" "$m/b"
if grep -qE '^ +[0-9].*  exclusive' "$out"; then bad "extents lists an exclusive extent"; else ok "no exclusive extent"; fi
expect 0 "usage --raw a b" "$CTL" usage --raw "$m/a" "$m/b"
same "$(usage_row "$m/a")" "$alloc 0 $alloc" "usage of a: all shared"
same "$(usage_row total)" "$((2 * alloc)) 0 $alloc" "usage of a and b: shared blocks counted once"

# Overwriting 4 KiB of the clone unshares exactly that block in both files;
# CoW staging beyond it is freed when the writer closes.
dd if=/dev/urandom of="$m/b" bs=$BS count=1 seek=256 conv=notrunc,fsync status=none
f2=$(free_blocks)
between 1 $((1 + SLACK)) $((f1 - f2)) "a 4 KiB overwrite of the clone costs one block"
same "$(ext_totals "$m/b")" "$((alloc - BS)) $BS" "extents: b has one exclusive block"
same "$(ext_totals "$m/a")" "$((alloc - BS)) $BS" "extents: a has one exclusive block"
expect 0 "extents b" "$CTL" extents "$m/b"
has "^ +1048576 +[0-9]+ +4096  exclusive$" "the exclusive block is the one written"
expect 0 "usage --raw a b (after the overwrite)" "$CTL" usage --raw "$m/a" "$m/b"
same "$(usage_row total)" "$((2 * alloc)) $((2 * BS)) $((alloc - BS))" "usage after the overwrite"
expect 0 "extents -b" "$CTL" extents -b "$m/b"
has "total: [0-9]+ extents, $((alloc / BS - 1)) blocks shared, 1 block exclusive" "extents in blocks"

# cp clones by itself (copy_file_range), into a directory too
mkdir "$m/dir"
cp "$m/a" "$m/dir/x"
same "$(ext_totals "$m/dir/x")" "$alloc 0" "cp makes a clone"
expect 0 "clone into a directory" "$CTL" clone "$m/a" "$m/dir"
check "clone into a directory names the file after SRC" cmp -s "$m/a" "$m/dir/a"

# usage of a tree: hard links once, shared blocks once, no mount crossed
ln "$m/dir/x" "$m/dir/hard"
head -c 10000 /dev/urandom >"$m/dir/own"
mkdir "$m/dir/sub"
mount -t tmpfs -o size=1M rfs-ctl-tmpfs "$m/dir/sub" && submounted=1 || submounted=0
trap 'st=$?; umount -l "$m/dir/sub" 2>/dev/null; (exit $st); rfs_cleanup' EXIT
[ $submounted = 1 ] && echo data >"$m/dir/sub/elsewhere"
expect 0 "usage --raw dir a" "$CTL" usage --raw "$m/dir" "$m/a"
own=$(((10000 + BS - 1) / BS * BS))
# dir: x (= hard) and a clone of a, one own file; a shares all but its old block 256
same "$(usage_row "$m/dir")" "$((2 * alloc + own)) $own $alloc" "usage of a tree"
same "$(usage_row total)" "$((3 * alloc + own)) $own $alloc" "usage of several paths"
expect 0 "usage (human units)" "$CTL" usage "$m/dir"
has "MiB +[0-9.]+ KiB +[0-9.]+ MiB +$m/dir$" "usage prints human units"
[ $submounted = 1 ] && umount "$m/dir/sub"

# --- ranges -------------------------------------------------------------------------------

head -c $((3 * 1024 * 1024)) /dev/urandom >"$m/c"
sync "$m/c"
sum=$(md5sum <"$m/c")
expect 1 "unaligned SRC_OFF is refused" "$CTL" clone "$m/a" "$m/c" 1 0 $BS
has "SRC_OFF 1 is not a multiple of the block size \(4096\)" "the refusal says why"
expect 1 "unaligned DST_OFF is refused" "$CTL" clone "$m/a" "$m/c" 0 512 $BS
has "DST_OFF 512 is not a multiple" "DST_OFF: the refusal says why"
expect 1 "unaligned LEN inside both files is refused" "$CTL" clone "$m/a" "$m/c" 0 0 1000
has "LEN 1000 is not a multiple of the block size" "LEN: the refusal says why"
expect 1 "a range past SRC's end is refused" "$CTL" clone "$m/a" "$m/c" 0 0 100M
expect 1 "overlapping ranges of one file are refused" "$CTL" clone "$m/c" "$m/c" 0 $BS 8192
has "overlap" "overlap: the refusal says why"
same "$(md5sum <"$m/c")" "$sum" "refused ranges change nothing"
expect 0 "clone a range" "$CTL" clone "$m/a" "$m/c" 1M 4096 8K
check "the range has SRC's bytes" cmp -s -n 8192 -i 1048576:4096 "$m/a" "$m/c"
same "$(ext_totals "$m/c")" "8192 $((3 * 1024 * 1024 - 8192))" "the range is shared, nothing else"
: >"$m/tail"
expect 0 "a partial last block at both ends is shared" "$CTL" clone "$m/a" "$m/tail" 8M 0 0
same "$(stat -c %s "$m/tail")" 1234 "the tail clone has SRC's tail length"
same "$(ext_totals "$m/tail")" "$BS 0" "the partial block is shared"
expect 0 "clone within one file" "$CTL" clone "$m/c" "$m/c" 0 2M 64K
check "the in-file range has its bytes" cmp -s -n 65536 -i 0:2097152 "$m/c" "$m/c"

# --- dedupe ----------------------------------------------------------------------------------

head -c $((3 * 1024 * 1024)) /dev/urandom >"$m/e1"
cp --reflink=never "$m/e1" "$m/e2"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$m/e3"
sync "$m/e1" "$m/e2" "$m/e3"
same "$(ext_totals "$m/e2")" "0 $((3 * 1024 * 1024))" "a plain copy shares nothing"
f3=$(free_blocks)
expect 0 "dedupe of equal files" "$CTL" dedupe "$m/e1" "$m/e2"
has "$((3 * 1024 * 1024)) bytes deduplicated" "dedupe says how much"
same "$(ext_totals "$m/e2")" "$((3 * 1024 * 1024)) 0" "deduplicated files are shared"
f4=$(free_blocks)
between $((768 - SLACK)) $((768 + SLACK)) $((f4 - f3)) "dedupe frees the copy's blocks"
expect 2 "dedupe of different files exits 2" "$CTL" dedupe "$m/e1" "$m/e3"
has "contents differ" "dedupe says the contents differ"
same "$(ext_totals "$m/e3")" "0 $((3 * 1024 * 1024))" "different files stay unshared"
expect 2 "dedupe of different sizes exits 2" "$CTL" dedupe "$m/e1" "$m/a"
expect 1 "dedupe of an unaligned range is refused" "$CTL" dedupe "$m/e1" "$m/e3" 0 0 100

# Who may dedupe into a file (allow_file_dedupe: its owner or anyone allowed
# to write it; the tool opens the destination read-only): group write via a
# supplementary group, a named-user ACL entry, and neither.
as_user() { # UID GROUPS CMD...: runs CMD as UID, primary group 5000
	local uid=$1 groups=$2
	shift 2
	setpriv --reuid="$uid" --regid=5000 --groups="$groups" "$@"
}
perm_pair() { # NAME MODE: a copy of e1 in NAME (unshared), mode MODE, group 5001
	cp --reflink=never "$m/e1" "$m/$1" && chown 0:5001 "$m/$1" && chmod "$2" "$m/$1"
	chmod 644 "$m/e1"
}
perm_pair p1 664
expect 0 "dedupe into a file the caller's supplementary group may write" \
	as_user 6000 5001 "$CTL" dedupe "$m/e1" "$m/p1"
same "$(ext_totals "$m/p1")" "$((3 * 1024 * 1024)) 0" "the group-writable file is shared"
perm_pair p2 644
expect 1 "dedupe into a file the caller may not write is refused" \
	as_user 6000 5001 "$CTL" dedupe "$m/e1" "$m/p2"
same "$(ext_totals "$m/p2")" "0 $((3 * 1024 * 1024))" "the refused file stays unshared"
perm_pair p3 644
setfacl -m u:6000:rw "$m/p3" # setfacl: Debian's acl, from scripts/deps.sh
expect 0 "dedupe allowed by a named-user ACL entry" \
	as_user 6000 5002 "$CTL" dedupe "$m/e1" "$m/p3"
perm_pair p4 644
setfacl -m u:6000:rw,m::r "$m/p4"
expect 1 "an ACL mask without write refuses the dedupe" \
	as_user 6000 5002 "$CTL" dedupe "$m/e1" "$m/p4"

# --- outside reflinkfs -------------------------------------------------------------------------

outside=$RFS_TMP/outside
head -c 100000 /dev/urandom >"$outside.src"
expect 1 "clone to another filesystem is refused" "$CTL" clone "$m/a" "$outside"
has "not on the same reflinkfs mount" "the refusal names the cause"
check "nothing is created outside" test ! -e "$outside"
expect 1 "clone from another filesystem is refused" "$CTL" clone "$outside.src" "$m/in"
has "not on a reflinkfs mount" "clone: the refusal names the cause"
check "nothing is created inside" test ! -e "$m/in"
expect 1 "extents of a file elsewhere" "$CTL" extents "$outside.src"
has "not on a reflinkfs mount" "extents: the refusal names the cause"
expect 1 "usage of a directory elsewhere" "$CTL" usage "$RFS_TMP"
expect 1 "a missing file" "$CTL" extents "$m/missing"
has "$m/missing: No such file or directory" "errors name the file and the cause"

# --- unmount, fsck -------------------------------------------------------------------------------

check "unmount, the daemon exits cleanly" rfs_umount
if [ -x "$RFS_FSCK" ]; then
	expect 0 "fsck -fn is clean" "$RFS_FSCK" -fn "$img"
else
	echo "note: $RFS_FSCK is not built: fsck skipped"
fi
rfs_summary
