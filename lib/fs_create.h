/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs_create.h - lay out and write a new filesystem (the core of mkfs).
 *
 * Layout (blocks):
 *   0                superblock
 *   1                free list block
 *   2 .. 2+J-1       journal region (journal superblock first)
 *   2+J ..           free list reserve, then tree nodes and free space
 *   N/2              backup superblock 0
 *   N-1              backup superblock 1
 */
#ifndef RFS_FS_CREATE_H
#define RFS_FS_CREATE_H

#include <stddef.h>
#include <stdint.h>

#include "dev.h"
#include "super.h"

#define RFS_MIN_BLOCKS 512

struct rfs_mkfs_opts {
	uint32_t block_log;	/* 0 = default */
	uint64_t block_count;	/* 0 = the whole device */
	uint64_t journal_bytes; /* 0 = default: 1/64 of the fs, 4 MiB..1 GiB */
	int have_uuid;
	uint8_t uuid[16];
	char label[RFS_LABEL_MAX + 1];
	int no_inline_fork; /* leave RFS_FEAT_INCOMPAT_INLINE_FORK off */
};

/* Computes the geometry for DEV_SIZE bytes into SB. -EINVAL with WHY when
 * the options cannot make a valid filesystem. */
int fs_geometry(const struct rfs_mkfs_opts *opts, uint64_t dev_size, struct rfs_sb_info *sb,
		char *why, size_t whylen);
/* Formats DEV; on success SB holds what was written. */
int fs_create(struct rfs_dev *dev, const struct rfs_mkfs_opts *opts, struct rfs_sb_info *sb,
	      char *why, size_t whylen);
/* True if DEV holds a reflinkfs superblock (valid or not) at block 0. */
int fs_probe(struct rfs_dev *dev);

#endif
