/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - file data on top of the data fork.
 */
#include "file.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "bmap.h"
#include "util.h"

/* Per extent: two extent-record changes and one allocator operation. */
static uint32_t extent_credits(const struct rfs_fs *fs)
{
	return 2 * btree_record_credits(&fs->bmap) + alloc_credits(fs);
}

uint32_t file_step_credits(const struct rfs_fs *fs)
{
	return RFS_TRUNC_STEP * extent_credits(fs) + btree_record_credits(&fs->inodes) + 1;
}

uint32_t file_write_credits(const struct rfs_fs *fs, unsigned max)
{
	return max * extent_credits(fs) + btree_record_credits(&fs->inodes) + 1;
}

int file_plan_read(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, extlen_t len,
		   struct rfs_seg *segs, unsigned max, unsigned *n)
{
	fileoff_t end = off + len;
	int ret;

	for (*n = 0; off < end && *n < max; (*n)++) {
		struct rfs_seg *s = &segs[*n];
		struct rfs_extent e;

		ret = bmap_find(fs, ino, RFS_FORK_DATA, off, &e);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		s->off = off;
		s->fresh = 0;
		if (ret == 0) {
			s->len = RFS_MIN(end, e.off + e.len) - off;
			s->pblk = (e.flags & RFS_BMAP_UNWRITTEN) ? 0 : e.pblk + (off - e.off);
		} else {
			s->len = (ret == 1 ? RFS_MIN(end, e.off) : end) - off;
			s->pblk = 0;
		}
		off += s->len;
	}
	return 0;
}

/* Where the block before OFF lives, plus one: the goal for OFF. */
static fsblock_t alloc_goal(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off)
{
	struct rfs_extent e;

	if (off > 0 && bmap_find(fs, ino, RFS_FORK_DATA, off - 1, &e) == 0)
		return e.pblk + (off - e.off);
	return 0;
}

/* Converts the unwritten blocks [OFF, OFF+LEN) of extent E to written. */
static int convert_unwritten(struct rfs_fs *fs, rfs_ino_t ino, const struct rfs_extent *e,
			     fileoff_t off, extlen_t len, struct rfs_seg *s)
{
	struct rfs_extent w = {off, e->pblk + (off - e->off), len, 0, fs->cache->cur_tid};
	fileoff_t next;
	int ret = bmap_unmap(fs, ino, RFS_FORK_DATA, off, len, 2, NULL, NULL, &next);

	if (!ret)
		ret = bmap_map(fs, ino, RFS_FORK_DATA, &w);
	*s = (struct rfs_seg){off, len, w.pblk, 1};
	return ret;
}

uint64_t file_data_reserve(const struct rfs_fs *fs)
{
	uint64_t r = RFS_MIN(RFS_MAX(fs->sb.block_count / 50, 256), 4096);
	return RFS_MIN(r, fs->sb.block_count / 8);
}

static int fill_hole(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		     uint32_t flags, struct rfs_seg *s)
{
	struct rfs_extent e = {off, 0, 0, flags, fs->cache->cur_tid};
	uint64_t reserve = file_data_reserve(fs);
	int ret;

	if (fs->sb.free_blocks <= reserve)
		return -ENOSPC;
	len = RFS_MIN(len, fs->sb.free_blocks - reserve);
	ret = alloc_extent(fs, alloc_goal(fs, inode->ino, off), 1, RFS_MIN(len, RFS_MAX_EXTENT_LEN),
			   &e.pblk, &e.len);
	if (ret)
		return ret;
	ret = bmap_map(fs, inode->ino, RFS_FORK_DATA, &e);
	if (ret) {
		free_extent(fs, e.pblk, e.len);
		return ret;
	}
	inode->nblocks += e.len;
	*s = (struct rfs_seg){off, e.len, flags ? 0 : e.pblk, 1};
	return 0;
}

int file_plan_write(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    struct rfs_seg *segs, unsigned max, unsigned *n)
{
	fileoff_t end = off + len;
	int ret = 0;

	if (end > RFS_MAX_FILE_BLOCKS || end < off)
		return -EFBIG;
	for (*n = 0; off < end && *n < max; (*n)++) {
		struct rfs_seg *s = &segs[*n];
		struct rfs_extent e;

		ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e);
		if (ret < 0 && ret != -ENOENT)
			break;
		if (ret == 0 && !(e.flags & RFS_BMAP_UNWRITTEN)) {
			extlen_t l = RFS_MIN(end, e.off + e.len) - off;
			*s = (struct rfs_seg){off, l, e.pblk + (off - e.off), 0};
			ret = 0;
		} else if (ret == 0) {
			ret = convert_unwritten(fs, inode->ino, &e, off,
						RFS_MIN(end, e.off + e.len) - off, s);
		} else {
			ret = fill_hole(fs, inode, off,
					(ret == 1 ? RFS_MIN(end, e.off) : end) - off, 0, s);
		}
		if (ret)
			break;
		off += s->len;
	}
	if (ret == -ENOSPC && *n > 0)
		ret = 0; /* a shorter write */
	return ret;
}

struct free_ctx {
	struct rfs_fs *fs;
	struct rfs_inode *inode;
};

static int release_blocks(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct free_ctx *fc = arg;
	int ret = free_extent(fc->fs, pblk, len);

	(void)flags;
	if (!ret)
		fc->inode->nblocks -= RFS_MIN(len, fc->inode->nblocks);
	return ret;
}

int file_free_range(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next)
{
	struct free_ctx fc = {fs, inode};

	return bmap_unmap(fs, inode->ino, RFS_FORK_DATA, off, len, RFS_TRUNC_STEP, release_blocks,
			  &fc, next);
}

int file_prealloc(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		  fileoff_t *next)
{
	fileoff_t end = off + len;
	unsigned steps;
	int ret = 0;

	if (end > RFS_MAX_FILE_BLOCKS || end < off)
		return -EFBIG;
	for (steps = 0; off < end && steps < RFS_TRUNC_STEP; steps++) {
		struct rfs_extent e;
		struct rfs_seg s;

		ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e);
		if (ret < 0 && ret != -ENOENT)
			break;
		if (ret == 0) {
			off = e.off + e.len;
			ret = 0;
			continue;
		}
		ret = fill_hole(fs, inode, off, (ret == 1 ? RFS_MIN(end, e.off) : end) - off,
				RFS_BMAP_UNWRITTEN, &s);
		if (ret)
			break;
		off += s.len;
	}
	*next = off;
	return ret;
}

int file_zero_partial(struct rfs_fs *fs, const struct rfs_inode *inode, uint64_t from, uint64_t to)
{
	uint32_t bsize = fs->sb.bsize;
	fileoff_t blk = from >> fs->sb.block_log;
	struct rfs_extent e;
	uint8_t *zero;
	int ret;

	if (to <= from)
		return 0;
	ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, blk, &e);
	if (ret == -ENOENT || ret == 1 || (ret == 0 && (e.flags & RFS_BMAP_UNWRITTEN)))
		return 0;
	if (ret < 0)
		return ret;
	zero = calloc(1, bsize);
	if (!zero)
		return -ENOMEM;
	ret = dev_pwrite(fs->dev, zero, to - from,
			 ((e.pblk + (blk - e.off)) << fs->sb.block_log) + (from & (bsize - 1)));
	free(zero);
	return ret;
}

/* The first byte at or after POS that is not mapped (a hole), or SIZE. */
static int seek_hole(struct rfs_fs *fs, rfs_ino_t ino, uint64_t size, uint64_t pos, uint64_t *out)
{
	uint32_t log = fs->sb.block_log;
	fileoff_t off = pos >> log;
	struct rfs_extent e;
	int ret;

	for (;;) {
		ret = bmap_find(fs, ino, RFS_FORK_DATA, off, &e);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		if (ret != 0)
			break; /* OFF is in a hole */
		off = e.off + e.len;
		if ((off << log) >= size)
			break;
	}
	*out = RFS_MIN(RFS_MAX(off << log, pos), size);
	return 0;
}

int file_seek(struct rfs_fs *fs, rfs_ino_t ino, uint64_t size, uint64_t pos, int whence,
	      uint64_t *out)
{
	uint32_t log = fs->sb.block_log;
	struct rfs_extent e;
	int ret;

	if (pos >= size)
		return -ENXIO;
	if (whence == SEEK_HOLE)
		return seek_hole(fs, ino, size, pos, out);
	ret = bmap_find(fs, ino, RFS_FORK_DATA, pos >> log, &e);
	if (ret == -ENOENT)
		return -ENXIO;
	if (ret < 0)
		return ret;
	*out = ret == 0 ? pos : e.off << log;
	return *out >= size ? -ENXIO : 0;
}
