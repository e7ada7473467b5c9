/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_ioctl.h - the ioctls a reflinkfs mount answers (for reflinkctl).
 *
 * Linux handles FICLONE, FICLONERANGE, FIDEDUPERANGE and FIEMAP in the VFS
 * and never passes them to a FUSE server, so the mount answers ioctls of
 * its own. FUSE only passes "restricted" ioctls: fixed-size arguments,
 * copied in and out as _IOC_SIZE says, so every structure here has a fixed
 * size and no pointers. All offsets and lengths are in bytes.
 */
#ifndef RFS_IOCTL_H
#define RFS_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define RFS_IOC_MAGIC 0xbf

/* An extent of a file's data as the extent list reports it. */
struct rfs_ioc_extent {
	uint64_t logical;  /* file offset */
	uint64_t physical; /* byte offset in the image */
	uint64_t length;
	uint32_t flags; /* RFS_IOC_EXTENT_* */
	uint32_t pad;
};

enum {
	RFS_IOC_EXTENT_SHARED = 1u << 0,    /* other mappings share these blocks */
	RFS_IOC_EXTENT_UNWRITTEN = 1u << 1, /* preallocated, reads as zeros */
};

#define RFS_IOC_EXTENTS_MAX 32

/* In: START. Out: up to RFS_IOC_EXTENTS_MAX extents from START on (the
 * first may begin before it), NEXT where to ask again, DONE when there
 * are none after these. An extent ends where sharing changes. */
struct rfs_ioc_extents {
	uint64_t start;
	uint64_t next;
	uint32_t count;
	uint32_t done;
	uint32_t block_size;
	uint32_t pad;
	struct rfs_ioc_extent ext[RFS_IOC_EXTENTS_MAX];
};

/*
 * Issued on the source file (open for reading). Shares [SRC_OFF,
 * SRC_OFF+LEN) with DST_INO's range at DST_OFF if and only if their bytes
 * are equal (compared under both files' locks). The caller must own the
 * destination or be allowed to write it. Offsets must be block aligned;
 * LEN too unless the range ends at both files' ends. Out: STATUS 0 and
 * BYTES shared, or STATUS RFS_DEDUPE_DIFFERS and BYTES 0.
 */
struct rfs_ioc_dedupe {
	uint64_t dst_ino;
	uint64_t src_off;
	uint64_t dst_off;
	uint64_t len;
	uint64_t bytes;
	int32_t status;
	uint32_t pad;
};

#define RFS_DEDUPE_DIFFERS 1

#define RFS_IOC_GET_EXTENTS _IOWR(RFS_IOC_MAGIC, 1, struct rfs_ioc_extents)
#define RFS_IOC_DEDUPE	    _IOWR(RFS_IOC_MAGIC, 2, struct rfs_ioc_dedupe)

#endif
