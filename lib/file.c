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
#include "refcount.h"
#include "util.h"

/* Per extent: two extent-record changes and one allocator operation. */
static uint32_t extent_credits(const struct rfs_fs *fs)
{
	return 2 * btree_record_credits(&fs->bmap) + alloc_credits(fs);
}

uint32_t file_step_credits(const struct rfs_fs *fs)
{
	return RFS_TRUNC_STEP * extent_credits(fs) + bmap_inline_credits(fs) +
	       btree_record_credits(&fs->inodes) + 1;
}

/* Dropping one reference from a chunk of blocks (at most RFS_REFC_STEP
 * refcount pieces, each of which may be freed). */
static uint32_t unshare_credits(const struct rfs_fs *fs, unsigned pieces)
{
	return refc_credits(fs, pieces) + pieces * alloc_credits(fs);
}

/* One CoW segment: staging allocated (blocks, record, CoW fork), then
 * remapped (data fork unmapped and mapped, CoW fork unmapped, staging
 * record split, old blocks unshared). */
static uint32_t cow_segment_credits(const struct rfs_fs *fs)
{
	uint32_t bm = btree_record_credits(&fs->bmap), rc = btree_record_credits(&fs->refc);

	return alloc_credits(fs) + rc + 2 * bm + 6 * bm + 3 * rc +
	       unshare_credits(fs, RFS_REFC_STEP);
}

uint32_t file_write_credits(const struct rfs_fs *fs, const struct rfs_inode *inode, unsigned max)
{
	uint32_t per =
		(inode->flags & RFS_IFLAG_REFLINK) ? cow_segment_credits(fs) : extent_credits(fs);

	return max * per + bmap_inline_credits(fs) + btree_record_credits(&fs->inodes) + 1;
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

/*
 * Where block OFF of INO should go: where the nearest extent before it
 * would put it if the file were contiguous (or, with none before, the
 * nearest after). Writes of one file can arrive out of order (write-back
 * from several threads): aiming at the offset, not at the end of what is
 * mapped, leaves room for the blocks still to come.
 */
static fsblock_t alloc_goal(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off)
{
	struct rfs_extent e;
	int ret = off > 0 ? bmap_find_prev(fs, ino, RFS_FORK_DATA, off - 1, &e) : -ENOENT;

	if (ret == 0 && e.pblk + (off - e.off) < fs->sb.block_count)
		return e.pblk + (off - e.off);
	if (ret == -ENOENT && bmap_find(fs, ino, RFS_FORK_DATA, off, &e) == 1 &&
	    e.pblk > e.off - off)
		return e.pblk - (e.off - off);
	return 0;
}

/* Converts the unwritten blocks [OFF, OFF+LEN) of extent E to written. */
static int convert_unwritten(struct rfs_fs *fs, rfs_ino_t ino, const struct rfs_extent *e,
			     fileoff_t off, extlen_t len, struct rfs_seg *s)
{
	struct rfs_extent w = {off, e->pblk + (off - e->off), len, 0, fs->cache->cur_tid};
	struct rfs_extent back = w;
	fileoff_t next;
	int ret = bmap_unmap(fs, ino, RFS_FORK_DATA, off, len, 2, NULL, NULL, &next);

	if (!ret) {
		ret = bmap_map(fs, ino, RFS_FORK_DATA, &w);
		/* a failed map changed nothing: put the unwritten blocks back
		 * rather than leave them mapped by nobody and never freed */
		back.flags = RFS_BMAP_UNWRITTEN;
		if (ret && bmap_map(fs, ino, RFS_FORK_DATA, &back))
			rfs_log(RFS_LOG_ERR, "inode %llu: blocks %llu+%llu lost converting them",
				(unsigned long long)ino, (unsigned long long)w.pblk,
				(unsigned long long)len);
	}
	*s = (struct rfs_seg){off, len, w.pblk, 1, 0, 0};
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
	*s = (struct rfs_seg){off, e.len, flags ? 0 : e.pblk, 1, 0, 0};
	return 0;
}

/* The data-fork piece at OFF: the extent holding it (*E, returns 0) or the
 * hole up to the next one (returns 1); *PIECE_END: where the piece ends. */
static int data_piece(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, struct rfs_extent *e,
		      fileoff_t *piece_end)
{
	int ret = bmap_find(fs, ino, RFS_FORK_DATA, off, e);

	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0)
		*piece_end = e->off + e->len;
	else
		*piece_end = ret == 1 ? e->off : RFS_MAX_FILE_BLOCKS;
	return ret == 0 ? 0 : 1;
}

/* A write segment into the CoW staging extent C from OFF (before END):
 * stops where C, the data piece under it, or a run of refcount pieces the
 * remap may unshare in one go ends. */
static int plan_cow_segment(struct rfs_fs *fs, rfs_ino_t ino, const struct rfs_extent *c,
			    fileoff_t off, fileoff_t end, struct rfs_seg *s)
{
	struct rfs_extent e;
	fileoff_t piece_end;
	extlen_t len;
	int ret = data_piece(fs, ino, off, &e, &piece_end);

	if (ret < 0)
		return ret;
	len = RFS_MIN(RFS_MIN(end, c->off + c->len), piece_end) - off;
	*s = (struct rfs_seg){off, len, c->pblk + (off - c->off), 1, 0, 1};
	if (ret == 0 && !(e.flags & RFS_BMAP_UNWRITTEN)) {
		s->copy_from = e.pblk + (off - e.off);
		ret = refc_clip(fs, s->copy_from, len, RFS_REFC_STEP, &s->len);
	} else {
		ret = 0;
	}
	return ret;
}

/* Narrows [*A, *B) (which holds OFF, not staged) to the hole in INO's CoW
 * fork around OFF. */
static int cow_fork_hole(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, fileoff_t *a,
			 fileoff_t *b)
{
	struct rfs_extent c;
	int ret;

	while (*a < off) {
		ret = bmap_find(fs, ino, RFS_FORK_COW, *a, &c);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		if (ret == -ENOENT || c.off >= off)
			break;
		*a = c.off + c.len; /* a staged extent before OFF */
	}
	ret = bmap_find(fs, ino, RFS_FORK_COW, off, &c);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 1)
		*b = RFS_MIN(*b, c.off);
	return 0;
}

/*
 * Stages CoW blocks for a write from OFF (before END) into the shared
 * blocks of data extent E: the RFS_COW_EXTSIZE-aligned range around the
 * write within E and the CoW fork's hole, or failing that as much of the
 * write as one free extent holds. The staging is recorded in the refcount
 * tree in the same transaction.
 */
static int cow_allocate(struct rfs_fs *fs, rfs_ino_t ino, const struct rfs_extent *e, fileoff_t off,
			fileoff_t end)
{
	fileoff_t a = RFS_MAX(off / RFS_COW_EXTSIZE * RFS_COW_EXTSIZE, e->off);
	fileoff_t b = RFS_MIN((end + RFS_COW_EXTSIZE - 1) / RFS_COW_EXTSIZE * RFS_COW_EXTSIZE,
			      e->off + e->len);
	struct rfs_extent c = {0, 0, 0, 0, fs->cache->cur_tid};
	uint64_t reserve = file_data_reserve(fs);
	fsblock_t goal = alloc_goal(fs, ino, off);
	int ret = cow_fork_hole(fs, ino, off, &a, &b);

	if (ret)
		return ret;
	if (fs->sb.free_blocks <= reserve)
		return -ENOSPC;
	b = RFS_MIN(b, a + RFS_MIN(fs->sb.free_blocks - reserve, RFS_MAX_EXTENT_LEN));
	if (b <= off) { /* the reserve leaves less than the range before OFF */
		a = off;
		b = off + 1;
	}
	c.off = a;
	ret = alloc_extent(fs, goal, b - a, b - a, &c.pblk, &c.len);
	if (ret == -ENOSPC) { /* no aligned run free: what the write needs */
		c.off = off;
		ret = alloc_extent(fs, goal, 1, RFS_MIN(b, end) - off, &c.pblk, &c.len);
	}
	if (ret)
		return ret;
	ret = refc_cow_add(fs, c.pblk, c.len, ino);
	if (!ret)
		ret = bmap_map(fs, ino, RFS_FORK_COW, &c);
	if (ret) /* nothing refers to them yet */
		free_extent(fs, c.pblk, c.len);
	return ret;
}

/* Plans the segment at OFF of a file that may share blocks: the CoW fork
 * first (staged blocks take every write over them), then the data fork;
 * a written extent's shared blocks get staged, its unshared ones are
 * written in place. Returns 1 when it staged blocks (plan OFF again). */
static int plan_reflink_segment(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off,
				fileoff_t end, struct rfs_seg *s)
{
	struct rfs_extent c, e;
	fsblock_t p, shared;
	extlen_t l, slen;
	int ret = bmap_find(fs, inode->ino, RFS_FORK_COW, off, &c);

	if (ret == 0)
		return plan_cow_segment(fs, inode->ino, &c, off, end, s);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e);
	if (ret != 0 || (e.flags & RFS_BMAP_UNWRITTEN))
		return -EAGAIN; /* not a written extent: as for any file */
	l = RFS_MIN(end, e.off + e.len) - off;
	p = e.pblk + (off - e.off);
	ret = refc_find_shared(fs, p, l, &shared, &slen);
	if (ret == -ENOENT) {
		*s = (struct rfs_seg){off, l, p, 0, 0, 0};
		return 0;
	}
	if (ret)
		return ret;
	if (shared > p) { /* an unshared head: in place */
		*s = (struct rfs_seg){off, shared - p, p, 0, 0, 0};
		return 0;
	}
	ret = cow_allocate(fs, inode->ino, &e, off, end);
	return ret ? ret : 1;
}

int file_plan_write(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    struct rfs_seg *segs, unsigned max, unsigned *n)
{
	int reflink = !!(inode->flags & RFS_IFLAG_REFLINK);
	fileoff_t end = off + len;
	int ret = 0;

	if (end > RFS_MAX_FILE_BLOCKS || end < off)
		return -EFBIG;
	for (*n = 0; off < end && *n < max; (*n)++) {
		struct rfs_seg *s = &segs[*n];
		struct rfs_extent e;

		if (reflink) {
			ret = plan_reflink_segment(fs, inode, off, end, s);
			if (ret == 1) /* staged: now the CoW fork holds OFF */
				ret = plan_reflink_segment(fs, inode, off, end, s);
			if (ret == 0) {
				off += s->len;
				continue;
			}
			if (ret != -EAGAIN)
				break;
		}
		ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e);
		if (ret < 0 && ret != -ENOENT)
			break;
		if (ret == 0 && !(e.flags & RFS_BMAP_UNWRITTEN)) {
			extlen_t l = RFS_MIN(end, e.off + e.len) - off;
			*s = (struct rfs_seg){off, l, e.pblk + (off - e.off), 0, 0, 0};
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

static int free_unshared(void *arg, fsblock_t start, extlen_t len)
{
	struct free_ctx *fc = arg;

	return free_extent(fc->fs, start, len);
}

/* Blocks leaving the data fork: freed, or for a file that may share them
 * one reference dropped (unwritten extents are never shared: a clone
 * skips them). */
static int release_blocks(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct free_ctx *fc = arg;
	int ret;

	if ((fc->inode->flags & RFS_IFLAG_REFLINK) && !(flags & RFS_BMAP_UNWRITTEN))
		ret = refc_decrement(fc->fs, pblk, len, free_unshared, fc);
	else
		ret = free_extent(fc->fs, pblk, len);
	if (!ret)
		fc->inode->nblocks -= RFS_MIN(len, fc->inode->nblocks);
	return ret;
}

/* Staging blocks leaving the CoW fork unused. */
int file_free_staging(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	int ret = refc_cow_remove(fs, start, len);

	return ret ? ret : free_extent(fs, start, len);
}

static int release_staging(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct free_ctx *fc = arg;

	(void)flags;
	return file_free_staging(fc->fs, pblk, len);
}

int file_cancel_cow(struct rfs_fs *fs, const struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next)
{
	struct free_ctx fc = {fs, (struct rfs_inode *)inode};

	return bmap_unmap(fs, inode->ino, RFS_FORK_COW, off, len, RFS_TRUNC_STEP, release_staging,
			  &fc, next);
}

/*
 * The next chunk of data-fork blocks at or after OFF (before END) that one
 * unmap may release: an extent, cut where a shared one crosses
 * RFS_REFC_STEP refcount pieces. *PIECES: how many it may take (1 for an
 * unshared chunk). -ENOENT if nothing is mapped in [OFF, END).
 */
static int next_chunk(struct rfs_fs *fs, const struct rfs_inode *inode, fileoff_t off,
		      fileoff_t end, fileoff_t *a, extlen_t *len, unsigned *pieces)
{
	struct rfs_extent e;
	fsblock_t found;
	extlen_t flen;
	int ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e);

	if (ret == -ENOENT || (ret >= 0 && e.off >= end))
		return -ENOENT;
	if (ret < 0)
		return ret;
	*a = RFS_MAX(off, e.off);
	*len = RFS_MIN(end, e.off + e.len) - *a;
	*pieces = 1;
	if (!(inode->flags & RFS_IFLAG_REFLINK) || (e.flags & RFS_BMAP_UNWRITTEN))
		return 0;
	ret = refc_find_shared(fs, e.pblk + (*a - e.off), *len, &found, &flen);
	if (ret == -ENOENT)
		return 0;
	*pieces = RFS_REFC_STEP;
	return ret ? ret : refc_clip(fs, e.pblk + (*a - e.off), *len, RFS_REFC_STEP, len);
}

/* Frees the data fork's chunks from OFF, at most RFS_TRUNC_STEP of them. */
static int free_data_chunks(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off,
			    fileoff_t end, fileoff_t *next)
{
	struct free_ctx fc = {fs, inode};
	unsigned steps, pieces;
	int ret = 0;

	for (steps = 0; off < end && steps < RFS_TRUNC_STEP; steps++) {
		fileoff_t a, reached;
		extlen_t len;

		ret = next_chunk(fs, inode, off, end, &a, &len, &pieces);
		if (ret == -ENOENT) {
			off = end;
			ret = 0;
			break;
		}
		if (!ret)
			ret = bmap_unmap(fs, inode->ino, RFS_FORK_DATA, a, len, 1, release_blocks,
					 &fc, &reached);
		if (ret)
			break;
		off = a + len;
	}
	*next = off;
	return ret;
}

int file_free_range(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next)
{
	struct free_ctx fc = {fs, inode};
	fileoff_t end = bmap_clip_end(off, len);
	int ret;

	if (!(inode->flags & RFS_IFLAG_REFLINK)) {
		ret = bmap_unmap(fs, inode->ino, RFS_FORK_DATA, off, len, RFS_TRUNC_STEP,
				 release_blocks, &fc, next);
	} else {
		/* staging first: a step that does not get through it stops
		 * there, and the next one starts at OFF again (its data is not
		 * freed yet) */
		ret = file_cancel_cow(fs, inode, off, len, next);
		if (ret || *next < end) {
			*next = off;
			return ret;
		}
		ret = free_data_chunks(fs, inode, off, end, next);
		if (!ret && *next >= end)
			*next = bmap_range_end(off, len);
	}
	/* freed to the end of the file: if nothing is left, the fork goes
	 * back into the inode */
	if (!ret && *next >= end && end == RFS_MAX_FILE_BLOCKS)
		ret = bmap_data_inline(fs, inode->ino);
	return ret;
}

uint32_t file_cancel_credits(const struct rfs_fs *fs)
{
	/* up to RFS_TRUNC_STEP staging extents: each unmapped from the CoW
	 * fork, its record removed, its blocks freed */
	return RFS_TRUNC_STEP * (2 * btree_record_credits(&fs->bmap) +
				 3 * btree_record_credits(&fs->refc) + alloc_credits(fs));
}

int file_free_credits(struct rfs_fs *fs, const struct rfs_inode *inode, fileoff_t from,
		      uint32_t *credits)
{
	uint32_t bm = btree_record_credits(&fs->bmap);
	unsigned steps;
	fileoff_t off = from;
	int ret = 0;

	*credits = 0;
	if (inode->flags & RFS_IFLAG_REFLINK) {
		int staged = bmap_any(fs, inode->ino, RFS_FORK_COW, from, RFS_MAX_FILE_BLOCKS);
		if (staged < 0)
			return staged;
		if (staged)
			*credits += file_cancel_credits(fs);
	}
	for (steps = 0; off < RFS_MAX_FILE_BLOCKS && steps < RFS_TRUNC_STEP; steps++) {
		fileoff_t a;
		extlen_t len;
		unsigned pieces;

		ret = next_chunk(fs, inode, off, RFS_MAX_FILE_BLOCKS, &a, &len, &pieces);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret)
			return ret;
		/* one more for splitting the chunk at FROM */
		*credits += (steps == 0 ? 2 : 1) * (2 * bm) +
			    (pieces > 1 ? unshare_credits(fs, pieces) : alloc_credits(fs));
		off = a + len;
	}
	if (*credits)
		*credits += bmap_inline_credits(fs) + btree_record_credits(&fs->inodes) + 1;
	return 0;
}

int file_cow_remap(struct rfs_fs *fs, struct rfs_inode *inode, const struct rfs_seg *s)
{
	struct rfs_extent m = {s->off, s->pblk, s->len, 0, fs->cache->cur_tid};
	struct free_ctx fc = {fs, inode};
	fileoff_t reached;
	int ret;

	/* the segment lies in one data piece: one extent to cut, if any */
	ret = bmap_unmap(fs, inode->ino, RFS_FORK_DATA, s->off, s->len, 1, release_blocks, &fc,
			 &reached);
	if (!ret && reached < s->off + s->len)
		ret = -EUCLEAN;
	if (!ret)
		ret = bmap_unmap(fs, inode->ino, RFS_FORK_COW, s->off, s->len, 1, NULL, NULL,
				 &reached);
	if (!ret && reached < s->off + s->len)
		ret = -EUCLEAN;
	if (!ret)
		ret = refc_cow_remove(fs, s->pblk, s->len);
	if (!ret)
		ret = bmap_map(fs, inode->ino, RFS_FORK_DATA, &m);
	if (!ret)
		inode->nblocks += s->len;
	return ret;
}

uint32_t file_clone_credits(const struct rfs_fs *fs, int dst_empty)
{
	uint32_t bm = btree_record_credits(&fs->bmap);
	uint32_t clear = dst_empty ? 0 : 4 * bm + unshare_credits(fs, RFS_REFC_STEP);

	/* per step: the source chunk shared and mapped, the destination's
	 * chunk there cut out and unshared */
	return RFS_CLONE_STEP * (refc_credits(fs, RFS_REFC_STEP) + 2 * bm + clear) +
	       bmap_inline_credits(fs) + 2 * btree_record_credits(&fs->inodes) + 1;
}

/* The source piece at OFF (before END): a written chunk whose blocks one
 * increment may take (*WRITTEN, *E), or a hole or unwritten run. */
static int clone_src_piece(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, fileoff_t end,
			   struct rfs_extent *e, int *written, extlen_t *len)
{
	int ret = bmap_find(fs, ino, RFS_FORK_DATA, off, e);

	*written = 0;
	if (ret == -ENOENT || (ret == 1 && e->off >= end)) {
		*len = end - off;
		return 0;
	}
	if (ret < 0)
		return ret;
	if (ret == 1) {
		*len = e->off - off;
		return 0;
	}
	*len = RFS_MIN(end, e->off + e->len) - off;
	if (e->flags & RFS_BMAP_UNWRITTEN)
		return 0;
	*written = 1;
	return refc_clip(fs, e->pblk + (off - e->off), *len, RFS_REFC_STEP, len);
}

/* Empties DST's [D, D+*LEN), cutting *LEN down so that this is at most
 * one data-fork chunk (or nothing, when the range starts in a hole). */
static int clone_clear_dst(struct rfs_fs *fs, struct rfs_inode *dst, fileoff_t d, extlen_t *len)
{
	struct free_ctx fc = {fs, dst};
	fileoff_t a, reached;
	extlen_t clen;
	unsigned pieces;
	int ret = next_chunk(fs, dst, d, d + *len, &a, &clen, &pieces);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (a > d) {
		*len = a - d; /* a hole up to the chunk: nothing to clear */
		return 0;
	}
	*len = clen;
	return bmap_unmap(fs, dst->ino, RFS_FORK_DATA, d, clen, 1, release_blocks, &fc, &reached);
}

int file_clone_range(struct rfs_fs *fs, struct rfs_inode *src, fileoff_t soff,
		     struct rfs_inode *dst, fileoff_t doff, extlen_t len, fileoff_t *next)
{
	fileoff_t off = soff, end = bmap_clip_end(soff, len);
	unsigned steps;
	int ret = 0;

	*next = soff;
	if (doff + (end - soff) > RFS_MAX_FILE_BLOCKS || doff + (end - soff) < doff)
		return -EFBIG;
	src->flags |= RFS_IFLAG_REFLINK;
	dst->flags |= RFS_IFLAG_REFLINK;
	for (steps = 0; off < end && steps < RFS_CLONE_STEP && !ret; steps++) {
		struct rfs_extent e, m;
		int written;
		extlen_t l;

		ret = clone_src_piece(fs, src->ino, off, end, &e, &written, &l);
		if (!ret)
			ret = clone_clear_dst(fs, dst, doff + (off - soff), &l);
		if (!ret && written) {
			m = (struct rfs_extent){doff + (off - soff), e.pblk + (off - e.off), l, 0,
						fs->cache->cur_tid};
			ret = refc_increment(fs, m.pblk, m.len);
			if (!ret)
				ret = bmap_map(fs, dst->ino, RFS_FORK_DATA, &m);
			if (!ret)
				dst->nblocks += m.len;
		}
		if (!ret)
			off += l;
	}
	*next = off;
	return ret;
}

int file_extent_shared(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, struct rfs_extent *e,
		       int *shared)
{
	fileoff_t from;
	uint32_t count;
	extlen_t run;
	int ret = bmap_find(fs, ino, RFS_FORK_DATA, off, e);

	if (ret < 0)
		return ret;
	from = RFS_MAX(off, e->off);
	e->pblk += from - e->off;
	e->len -= from - e->off;
	e->off = from;
	*shared = 0;
	if (e->flags & RFS_BMAP_UNWRITTEN)
		return 0;
	ret = refc_get(fs, e->pblk, e->len, &count, &run);
	if (ret)
		return ret;
	*shared = count >= 2;
	e->len = run;
	return 0;
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
