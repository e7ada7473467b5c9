#!/bin/sh
# Installs the Debian packages reflinkfs needs to build, test and mount,
# if any is missing. Safe to run again; needs root (or sudo) to install.
set -eu

PKGS="build-essential cmake pkg-config libfuse3-dev fuse3 uuid-dev zlib1g-dev check
      e2fsprogs util-linux groff-base acl"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
