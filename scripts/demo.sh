#!/bin/sh
# The README's first command: installs what is missing, builds, makes a
# demo filesystem image (if there is none) and mounts it.
#
#   scripts/demo.sh [IMAGE] [MOUNTPOINT] [SIZE]
#       default: /tmp/reflinkfs-demo.img /mnt/reflinkfs 4G (sparse)
#
# Unmount with: umount MOUNTPOINT   (the daemon finishes writing, then exits)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
img=${1:-/tmp/reflinkfs-demo.img}
mnt=${2:-/mnt/reflinkfs}
size=${3:-4G}
"$top/scripts/deps.sh"
echo "building (build/)..."
"$top/scripts/build.sh" normal >/dev/null
bin=$top/build
if mountpoint -q "$mnt"; then
	echo "$mnt is already a mount point; unmount it first: umount $mnt" >&2
	exit 1
fi
if [ -e "$img" ]; then
	echo "using the existing image $img (checking it first)"
	"$bin/fsck/fsck.reflinkfs" -p "$img" || [ $? -eq 1 ]
else
	"$bin/mkfs/mkfs.reflinkfs" -s "$size" "$img"
fi
mkdir -p "$mnt"
"$bin/fs/reflinkfs" "$img" "$mnt"
echo "reflinkfs: $img is mounted at $mnt"
df -h "$mnt"
echo "unmount with: umount $mnt"
