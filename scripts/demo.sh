#!/bin/sh
# The README's first command: installs what is missing, builds, and makes a
# demo filesystem image, then checks it with fsck.
#
# The FUSE daemon is not written yet (issue: "The FUSE daemon"); once it
# is, this script will mount the image at the mount point too.
#
#   scripts/demo.sh [IMAGE] [SIZE]     default: /tmp/reflinkfs-demo.img 1G
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
img=${1:-/tmp/reflinkfs-demo.img}
size=${2:-1G}
"$top/scripts/deps.sh"
"$top/scripts/build.sh" normal
"$top/build/mkfs/mkfs.reflinkfs" -f -s "$size" "$img"
"$top/build/fsck/fsck.reflinkfs" -n -v "$img"
echo "demo image ready: $img (no daemon yet: nothing is mounted)"
