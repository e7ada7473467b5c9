/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * alloc.h - free space and the block allocator.
 *
 * Free space is kept twice, as in XFS: by start block (bno tree) for
 * near-goal and neighbour lookups, and by (length, start) (cnt tree) for
 * best-fit by size. Both must always hold the same set of extents, which
 * are maximal (never adjacent) and never overlap.
 *
 * Nodes of these two trees come from the free list, a block of reserved
 * block numbers (XFS's AGFL), so that a split of a free-space tree never
 * allocates from the free-space trees. alloc_fix_freelist() tops it up or
 * drains it before each allocator operation so that one operation always
 * has enough reserve for the worst case of splits.
 */
#ifndef RFS_ALLOC_H
#define RFS_ALLOC_H

#include <stdint.h>

#include "fs.h"

extern const struct rfs_btree_ops rfs_bno_ops, rfs_cnt_ops;
extern const struct rfs_buf_ops rfs_freelist_buf_ops;

/* Allocates a contiguous extent of between MINLEN and MAXLEN blocks, as
 * near GOAL as it cheaply can (at GOAL if free), preferring MAXLEN.
 * -ENOSPC if no free extent of MINLEN blocks exists. */
int alloc_extent(struct rfs_fs *fs, fsblock_t goal, extlen_t minlen, extlen_t maxlen,
		 fsblock_t *start, extlen_t *len);
/* Returns [START, START+LEN) to free space. -EUCLEAN if any of it is
 * already free or is a static block (a double free means corruption),
 * -EROFS on a read-only filesystem; a refused call changes nothing. */
int free_extent(struct rfs_fs *fs, fsblock_t start, extlen_t len);

/* Journal credits of one alloc_extent or free_extent call: the free list
 * top-up and the carve each change up to three records in both free-space
 * trees; plus the free list block and the superblock. */
uint32_t alloc_credits(const struct rfs_fs *fs);

/* Brings the free list between its low and high water marks. */
int alloc_fix_freelist(struct rfs_fs *fs);
/* Water marks for the current tree heights (exported for fsck/tests). */
uint32_t alloc_freelist_low(const struct rfs_fs *fs);
uint32_t alloc_freelist_high(const struct rfs_fs *fs);

/* mkfs: fills the free list with [START, START+LEN) and inserts the
 * initial free extents. */
int alloc_create(struct rfs_fs *fs, fsblock_t fl_start, uint32_t fl_len);
/* Inserts a free extent without merging (mkfs only). */
int alloc_add_free(struct rfs_fs *fs, fsblock_t start, extlen_t len);

/* A free extent, as alloc_rebuild() takes them. */
struct rfs_free_ext {
	fsblock_t start;
	extlen_t len;
};

/* fsck: replaces both free-space trees, the free list and the free count
 * with exactly the free space FREE[0..N) (sorted by start, disjoint, no
 * static block; adjacent extents are merged). The old trees are dropped
 * with btree_reset(), their nodes neither read nor freed: the caller's
 * FREE says whether those blocks are free. The new trees' nodes and the
 * free list's entries come out of FREE. -EINVAL for a bad FREE (nothing
 * changed then). When no extent of FREE has three blocks (a nearly full
 * disk) every free block goes on the free list and the trees stay empty;
 * -ENOSPC if they do not fit or are fewer than half the list's low mark
 * (the trees are empty then). */
int alloc_rebuild(struct rfs_fs *fs, const struct rfs_free_ext *free, size_t n);

/* Free list contents, for fsck. Copies at most CAP entries. */
int alloc_freelist_read(struct rfs_fs *fs, fsblock_t *blocks, uint32_t cap, uint32_t *count);

/* Node allocation for trees outside the allocator (inode, dir, ...). */
int alloc_tree_block(struct rfs_btree *t, fsblock_t hint, fsblock_t *out);
int free_tree_block(struct rfs_btree *t, fsblock_t blkno);

#endif
