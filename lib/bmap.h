/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bmap.h - file forks: file offset -> physical extent, per inode and fork.
 *
 * One global B+tree (RFS_TREE_BMAP) keyed by (inode, fork, file offset).
 * Extents of one fork never overlap; neighbours that are contiguous on
 * disk with equal flags are merged when mapped. Nothing here allocates or
 * frees blocks: the caller does, so that reflink can decide between
 * freeing a block and dropping a reference.
 *
 * Inline data forks: the data fork of a regular file whose inode says
 * RFS_INLINE_EXTENTS lives in the inode record (at most RFS_INLINE_EXTS
 * extents, none in the tree). Every function below behaves the same for
 * both; the one that would need more extents moves the fork to the tree
 * in the same call (only bmap_data_inline moves an empty one back). These functions read and write
 * the STORED inode record themselves: they take no struct rfs_inode, and the inline area of a
 * regular file belongs to them (inode_write keeps it, so a caller's stale copy written afterwards
 * cannot clobber it). An inode number with no inode record has its forks in the tree.
 */
#ifndef RFS_BMAP_H
#define RFS_BMAP_H

#include <stdint.h>

#include "fs.h"

struct rfs_extent {
	fileoff_t off;
	fsblock_t pblk;
	extlen_t len;
	uint32_t flags; /* enum rfs_bmap_flags */
	rfs_tid_t tid;
};

#define RFS_MAX_FILE_BLOCKS (1ull << RFS_BMAP_OFF_BITS)

/* OFF + LEN, saturated: where "all done" leaves a caller's loop. */
static inline fileoff_t bmap_range_end(fileoff_t off, extlen_t len)
{
	return len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

/* The end of [OFF, OFF+LEN) clipped to the largest file (OFF if beyond). */
static inline fileoff_t bmap_clip_end(fileoff_t off, extlen_t len)
{
	if (off >= RFS_MAX_FILE_BLOCKS)
		return off;
	return len > RFS_MAX_FILE_BLOCKS - off ? RFS_MAX_FILE_BLOCKS : off + len;
}
#define RFS_MAX_EXTENT_LEN 0xffffffffull

extern const struct rfs_btree_ops rfs_bmap_ops;

/* Journal credits to add, once per inode whose data fork a transaction
 * maps or unmaps, to the credits of its record changes: the inline fork
 * is stored in the inode record, and may move to the tree (all its
 * extents inserted), which happens at most once per inode. */
uint32_t bmap_inline_credits(const struct rfs_fs *fs);

/* Finds the extent of (INO, FORK) that contains OFF (returns 0), or else
 * the first one after OFF (returns 1). -ENOENT when no extent ends after
 * OFF. */
int bmap_find(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
	      struct rfs_extent *ext);

/* The last extent of (INO, FORK) starting at or before OFF (0), or
 * -ENOENT. */
int bmap_find_prev(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
		   struct rfs_extent *ext);

/* Maps E (its range must be unmapped: -EUCLEAN otherwise), merging with
 * contiguous neighbours. Dirties at most 3 leaves' worth of records. */
int bmap_map(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e);

/* Called for every physical range bmap_unmap removes. */
typedef int (*rfs_release_fn)(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags);

/*
 * Unmaps [OFF, OFF+LEN) of (INO, FORK), splitting extents at the edges and
 * calling RELEASE for each physical range removed. Works on at most
 * MAX_RECS extents (each costing up to two record changes: cutting the
 * middle of one updates it and inserts its tail), so that one call fits a
 * bounded transaction; *NEXT receives the offset reached: OFF+LEN (capped
 * at UINT64_MAX) when all is done. -EINVAL for MAX_RECS 0 or a bad fork.
 */
int bmap_unmap(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len,
	       unsigned max_recs, rfs_release_fn release, void *arg, fileoff_t *next);

/* If regular file INO's data fork is in the tree and maps nothing, makes
 * it an empty inline fork again (with the feature; else, or if anything is
 * mapped, or if INO has no inode record, changes nothing): after a
 * truncate to 0, a file written small again costs no extent record.
 * Credits: bmap_inline_credits. */
int bmap_data_inline(struct rfs_fs *fs, rfs_ino_t ino);

/* 1 if anything of (INO, FORK) is mapped in [OFF, OFF+LEN), else 0: one
 * lookup, whatever the range holds. */
int bmap_any(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len);

/* Counts blocks mapped in [OFF, OFF+LEN) (fsck, tests, statistics). */
int bmap_count(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len,
	       uint64_t *blocks);

#endif
