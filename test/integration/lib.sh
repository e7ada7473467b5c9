# Shell helpers for the daemon's integration tests (sourced, bash).
#
# The caller sets RFS_DAEMON, RFS_MKFS, RFS_FSCK (paths of reflinkfs,
# mkfs.reflinkfs, fsck.reflinkfs), then calls rfs_setup once. Everything
# lives in one mktemp -d directory ($RFS_TMP) that an EXIT trap removes,
# after unmounting whatever is still mounted, however the script ends.
#
#   rfs_mkfs IMG SIZE [mkfs args]     make a filesystem (quiet)
#   rfs_mount IMG [-o OPTS]           start the daemon (-f, background) on
#                                     $RFS_MNT; waits until mounted; sets
#                                     RFS_PID; its stderr goes to $RFS_TMP/daemon.N.log
#   rfs_umount                        umount, wait for the daemon to exit
#                                     (timeout), lazy-unmount/kill as a last
#                                     resort; non-zero if it did not exit
#                                     cleanly (exit status, sanitizer report)
#   rfs_kill9                         kill -9 the daemon, clean the dead mount
#   rfs_fsck IMG [OPTS...]            fsck OPTS (default -n) must exit 0
#   ok MSG / bad MSG                  count a passed / failed check
#   rfs_summary                       prints "N passed, N failed"; status
#   bg CMD / bg_wait PID              a child that cleanup stops first
#
# Sanitizer builds: the daemon runs with ASAN_OPTIONS/UBSAN_OPTIONS that
# send reports to $RFS_TMP/san.* instead of the terminal; rfs_umount fails
# on a real report (memory error, undefined behaviour, leak) but not on
# LeakSanitizer being unable to run (ptrace refused in some containers).

RFS_PASS=0
RFS_FAIL=0
RFS_PID=
RFS_MOUNTS=0
: "${RFS_UMOUNT_TIMEOUT:=120}"
: "${RFS_MOUNT_TIMEOUT:=30}"

ok() {
	RFS_PASS=$((RFS_PASS + 1))
	[ -n "${RFS_VERBOSE:-}" ] && echo "ok: $*"
	return 0
}

bad() {
	RFS_FAIL=$((RFS_FAIL + 1))
	echo "FAIL: $*" >&2
	return 1
}

# check MSG CMD...: runs CMD, counts a pass if it exits 0.
check() {
	local msg=$1
	shift
	if "$@"; then ok "$msg"; else bad "$msg"; fi
}

now_ms() { date +%s%3N; }

rfs_setup() {
	RFS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rfs-it.XXXXXX") || exit 1
	# others must reach the mount point (allow_other tests)
	chmod 755 "$RFS_TMP"
	RFS_MNT=$RFS_TMP/mnt
	mkdir "$RFS_MNT"
	trap rfs_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	export RFS_TMP RFS_MNT
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0:log_path=$RFS_TMP/san"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$RFS_TMP/san"
}

# bg CMD...: starts CMD in the background in a process group of its own,
# remembered so that cleanup can stop it (and whatever it forked) before
# unmounting; sets BG_PID. bg_wait PID: waits for it (interruptibly).
RFS_CHILDREN=
bg() {
	setsid "$@" &
	BG_PID=$!
	RFS_CHILDREN="$RFS_CHILDREN $BG_PID"
}
bg_wait() {
	wait "$1"
	local rc=$?
	RFS_CHILDREN=$(echo "$RFS_CHILDREN" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
	return $rc
}

rfs_cleanup() {
	local st=$? c
	trap - EXIT
	for c in $RFS_CHILDREN; do
		kill -TERM -- "-$c" 2>/dev/null || kill -TERM "$c" 2>/dev/null
	done
	for c in $RFS_CHILDREN; do
		wait "$c" 2>/dev/null
	done
	# a mount stacked on the mount (an overlay using it as a layer)
	[ -n "${RFS_STACKED:-}" ] && umount -l "$RFS_STACKED" 2>/dev/null
	if [ -n "$RFS_PID" ] || mountpoint -q "$RFS_MNT" 2>/dev/null; then
		echo "cleanup: unmounting $RFS_MNT" >&2
		rfs_umount >/dev/null 2>&1 || true
	fi
	# a mount left by a test that failed half-way (lazy, so it cannot hang)
	if mountpoint -q "$RFS_MNT" 2>/dev/null; then
		umount -l "$RFS_MNT" 2>/dev/null || fusermount3 -uz "$RFS_MNT" 2>/dev/null
	fi
	if [ -n "${RFS_KEEP:-}" ]; then
		echo "kept $RFS_TMP" >&2
	else
		rm -rf "$RFS_TMP"
	fi
	exit $st
}

rfs_mkfs() {
	local img=$1 size=$2
	shift 2
	rm -f "$img"
	"$RFS_MKFS" -q -f -s "$size" "$@" "$img"
}

# Sanitizer reports written since the last call: returns 1 if one is real
# (memory error, undefined behaviour, leak); sets SAN_LSAN_FAILED=1 if
# LeakSanitizer could not run (which makes the process exit 1 too).
san_reports() {
	local f real=0
	SAN_LSAN_FAILED=0
	for f in "$RFS_TMP"/san.*; do
		[ -e "$f" ] || continue
		case $f in *.seen) continue ;; esac
		if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error:" "$f"; then
			cat "$f" >&2
			real=1
		elif grep -q "LeakSanitizer has encountered a fatal error" "$f"; then
			echo "note: LeakSanitizer could not run (ignored): $f" >&2
			SAN_LSAN_FAILED=1
		else
			cat "$f" >&2
		fi
		mv "$f" "$f.seen"
	done
	return $real
}

rfs_mount() {
	local img=$1 i
	shift
	if [ -n "$RFS_PID" ]; then
		bad "rfs_mount: already mounted"
		return 1
	fi
	RFS_MOUNTS=$((RFS_MOUNTS + 1))
	RFS_LOG=$RFS_TMP/daemon.$RFS_MOUNTS.log
	"$RFS_DAEMON" -f "$@" "$img" "$RFS_MNT" >"$RFS_LOG" 2>&1 &
	RFS_PID=$!
	for ((i = 0; i < RFS_MOUNT_TIMEOUT * 10; i++)); do
		if mountpoint -q "$RFS_MNT"; then
			return 0
		fi
		if ! kill -0 "$RFS_PID" 2>/dev/null; then
			wait "$RFS_PID"
			echo "daemon exited with status $? before mounting:" >&2
			cat "$RFS_LOG" >&2
			RFS_PID=
			return 1
		fi
		sleep 0.1
	done
	echo "timed out waiting for the mount" >&2
	cat "$RFS_LOG" >&2
	rfs_umount
	return 1
}

# Is the daemon process still there (not yet reaped or a zombie)?
daemon_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# daemon_dump PID: where a daemon that will not exit is stuck: each
# thread's kernel wait channel and stack, and its user stacks (gdb, if
# installed).
daemon_dump() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)): $(cat "$t/wchan" 2>/dev/null)"
		sed 's/^/    /' "$t/stack" 2>/dev/null
	done
	if command -v gdb >/dev/null; then
		timeout 20 gdb -p "$1" -batch -ex "thread apply all bt" 2>/dev/null | grep -E '^(Thread|#)'
	fi
}

rfs_umount() {
	local pid=$RFS_PID i st=0 tries
	if [ -z "$pid" ]; then
		mountpoint -q "$RFS_MNT" && umount "$RFS_MNT"
		return 0
	fi
	# umount fails with EBUSY while a test process still uses the mount
	for ((tries = 0; tries < 50; tries++)); do
		umount "$RFS_MNT" 2>/dev/null && break
		daemon_alive "$pid" || break
		sleep 0.2
	done
	# still busy after 10 s: say who holds it (the daemon cannot exit)
	if [ $tries -eq 50 ] && mountpoint -q "$RFS_MNT"; then
		echo "umount $RFS_MNT: still busy; processes using it:" >&2
		fuser -vm "$RFS_MNT" 2>&1 | head -20 >&2
	fi
	for ((i = 0; i < RFS_UMOUNT_TIMEOUT * 10; i++)); do
		daemon_alive "$pid" || break
		sleep 0.1
	done
	if daemon_alive "$pid"; then
		echo "daemon $pid did not exit ${RFS_UMOUNT_TIMEOUT}s after umount: killing it" >&2
		daemon_dump "$pid" >&2
		umount -l "$RFS_MNT" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
		sleep 2
		kill -KILL "$pid" 2>/dev/null
		st=1
	fi
	wait "$pid"
	local rc=$?
	san_reports || st=1
	# LeakSanitizer unable to run (ptrace refused) exits 1: not a failure
	[ $rc -eq 1 ] && [ "$SAN_LSAN_FAILED" = 1 ] && rc=0
	[ $st -eq 0 ] && st=$rc
	if [ $rc -ne 0 ]; then
		echo "daemon exited with status $rc; its log:" >&2
		cat "$RFS_LOG" >&2
	fi
	RFS_PID=
	if mountpoint -q "$RFS_MNT"; then
		umount -l "$RFS_MNT" 2>/dev/null
		st=1
	fi
	return $st
}

# kill -9 the daemon, then clear the dead mount ("transport endpoint is
# not connected") with a lazy unmount.
rfs_kill9() {
	local pid=$RFS_PID
	[ -n "$pid" ] || return 1
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	RFS_PID=
	umount -l "$RFS_MNT" 2>/dev/null || fusermount3 -uz "$RFS_MNT" 2>/dev/null
	! mountpoint -q "$RFS_MNT"
}

rfs_fsck() {
	local img=$1 out rc
	shift
	[ $# -eq 0 ] && set -- -n
	out=$("$RFS_FSCK" "$@" "$img" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "fsck $* $img exited $rc:" >&2
		echo "$out" >&2
	fi
	return $rc
}

rfs_summary() {
	echo "$RFS_PASS passed, $RFS_FAIL failed"
	[ "$RFS_FAIL" -eq 0 ]
}
