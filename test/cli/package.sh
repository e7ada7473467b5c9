#!/bin/bash
# The Debian package: `cpack -G DEB` makes reflinkfs_VERSION_ARCH.deb with
# the declared dependencies, the programs where mkfs(8), fsck(8) and
# mount.fuse3 look (/usr/sbin, /usr/bin), man pages gzipped, the copyright
# file; unpacked (dpkg -x), every program runs; apt would install it.
#
#   usage: package.sh BUILD_DIR
set -u
if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd)
if ! command -v dpkg-deb >/dev/null || ! command -v cpack >/dev/null; then
	echo "skipped: needs dpkg-deb and cpack (Debian)"
	exit 77
fi
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); }
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL: $*" >&2
}
check() {
	local msg=$1
	shift
	if "$@"; then ok; else bad "$msg"; fi
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rfs-package.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb=$TMP/reflinkfs_${version}_$arch.deb

if ! cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP" >"$TMP/cpack.log" 2>&1; then
	cat "$TMP/cpack.log" >&2
	echo "FAIL: cpack -G DEB"
	exit 1
fi
if [ ! -f "$deb" ]; then
	ls "$TMP" >&2
	echo "FAIL: no $deb"
	exit 1
fi

field() { dpkg-deb -f "$deb" "$1"; }
check "Package: reflinkfs" [ "$(field Package)" = reflinkfs ]
check "Version: $version" [ "$(field Version)" = "$version" ]
check "Architecture: $arch" [ "$(field Architecture)" = "$arch" ]
check "a Maintainer" [ -n "$(field Maintainer)" ]
check "a Description" [ -n "$(field Description)" ]
depends=$(field Depends)
for d in fuse3 libfuse3-3 libuuid1 zlib1g; do
	case ", $depends," in *", $d "* | *", $d,"*) ok ;; *) bad "Depends lacks $d: $depends" ;; esac
done
check "dpkg-deb --info" dpkg-deb --info "$deb" >/dev/null

dpkg-deb --contents "$deb" >"$TMP/contents"
# mode owner path, e.g. "-rwxr-xr-x root/root ./usr/sbin/mkfs.reflinkfs"
listed() { awk '{print $1, $2, $6}' "$TMP/contents" | grep -qx -- "$1"; }
for f in usr/sbin/mkfs.reflinkfs usr/sbin/fsck.reflinkfs usr/bin/reflinkfs usr/bin/reflinkctl; do
	check "$f (0755, root)" listed "-rwxr-xr-x root/root ./$f"
done
for f in man8/reflinkfs.8.gz man8/mkfs.reflinkfs.8.gz man8/fsck.reflinkfs.8.gz man1/reflinkctl.1.gz; do
	check "usr/share/man/$f" listed "-rw-r--r-- root/root ./usr/share/man/$f"
done
check "usr/share/doc/reflinkfs/copyright" \
	listed "-rw-r--r-- root/root ./usr/share/doc/reflinkfs/copyright"
check "nothing outside /usr" [ -z "$(awk '$6 !~ /^\.\/(usr\/.*)?$/' "$TMP/contents")" ]
check "no man page uncompressed" [ -z "$(awk '$6 ~ /\/man\/man.\/.*[^z]$/' "$TMP/contents")" ]

# Unpacked into a scratch root: the programs run, the pages are gzip.
X=$TMP/root
check "dpkg -x" dpkg -x "$deb" "$X"
for f in usr/sbin/mkfs.reflinkfs usr/sbin/fsck.reflinkfs usr/bin/reflinkfs usr/bin/reflinkctl; do
	name=${f##*/}
	check "$name --version from the package" \
		[ "$("$X/$f" --version 2>/dev/null | head -1)" = "$name (reflinkfs) $version" ]
done
for f in "$X"/usr/share/man/man*/*.gz; do
	check "$f is valid gzip" gzip -t "$f"
done
check "the copyright file is plain text" grep -q "^License: GPL-2.0-or-later" "$X/usr/share/doc/reflinkfs/copyright"

# apt resolves the dependencies (simulated: nothing is installed).
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	apt-get -s install "$deb" >"$TMP/apt.log" 2>&1
	if grep -q "^Inst reflinkfs " "$TMP/apt.log"; then ok; else
		bad "apt-get -s install ./reflinkfs_*.deb"
		cat "$TMP/apt.log" >&2
	fi
fi

echo "package: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
